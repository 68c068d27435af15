"""The results tables of README.md and models/shipped/README.md, from the evaluation reports (JSON) in a folder.

    python scripts/quality_table.py models/shipped/eval
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

METRICS = ["BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"]


def row(label: str, reports: list[dict]) -> str:
    """One markdown row: the mean (and the spread, if several reports) of each metric."""
    cells = []
    for metric in METRICS:
        values = [r["coco"][metric] for r in reports]
        spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
        cells.append(f"{statistics.mean(values):.1f}{spread}")
    return f"| {label} | " + " | ".join(cells) + " |"


def main(folder: str) -> None:
    reports = {p.stem: json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json")) if p.stem != "dev_tuning"}
    print("| Flickr8k test split, MS-COCO toolkit | " + " | ".join(METRICS) + " |")
    print("|---" * (len(METRICS) + 1) + "|")
    for beam in sorted({r["beam"] for name, r in reports.items() if name.startswith("test_")}):
        seeds = [r for name, r in reports.items() if name.startswith("test_seed") and r["beam"] == beam]
        if seeds:
            print(row(f"one model, beam {beam} (mean ± sd of {len(seeds)} seeds)", seeds))
        shipped = reports.get(f"test_shipped_beam{beam}")
        if shipped:
            print(row(f"shipped ensemble, beam {beam}", [shipped]))
    print()
    print("| 120 dev photos | " + " | ".join(METRICS) + " |")
    print("|---" * (len(METRICS) + 1) + "|")
    for name, label in [("copies_dev", "224x224 copies (as trained)"), ("originals_dev", "original photos")]:
        for stem, report in reports.items():
            if stem.startswith(name):
                print(row(f"{label}, beam {report['beam']}", [report]))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "models/shipped/eval")
