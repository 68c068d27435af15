"""The captions of several evaluation reports for the same photos, side by side, to read what a change did.

    python -m scripts.side_by_side runs/scst_s0/dev_beam1.json runs/scst_more_s0/dev_beam1.json --photos 30

Each report is the JSON that `python -m caption_generator evaluate --out` writes; the photos are the first
N that all reports captioned, in the first report's order, printed as a markdown table.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", help="evaluation reports (JSON with a 'captions' map)")
    parser.add_argument("--photos", type=int, default=30, help="how many photos (default: 30)")
    args = parser.parse_args()

    captions = [json.loads(Path(p).read_text())["captions"] for p in args.reports]
    shared = [name for name in captions[0] if all(name in c for c in captions[1:])][:args.photos]
    print("| photo | " + " | ".join(Path(p).parent.name + "/" + Path(p).stem for p in args.reports) + " |")
    print("|---" * (len(args.reports) + 1) + "|")
    for name in shared:
        print(f"| {name} | " + " | ".join(c[name] for c in captions) + " |")


if __name__ == "__main__":
    main()
