"""The table of every setting tried on the dev split, from the runs' reports (issue 11).

    python scripts/dev_table.py runs            # runs/dev_*/dev_beam*.json and runs/*/config.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

METRICS = ["BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"]


def main(folder: str) -> None:
    print("| run | settings | epochs | decoding | " + " | ".join(METRICS) + " |")
    print("|---" * (len(METRICS) + 4) + "|")
    for report_path in sorted(Path(folder).glob("*/dev_*.json")):
        run = report_path.parent
        report = json.loads(report_path.read_text())
        config = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
        history = json.loads((run / "history.json").read_text()) if (run / "history.json").is_file() else []
        settings = ", ".join(f"{k} {v}" for k, v in config.items() if k not in ("limit", "epochs", "patience"))
        decoding = f"beam {report['beam']}" + (f", penalty {report['length_penalty']}" if report["beam"] > 1 else "")
        scores = " | ".join(f"{report['coco'][m]:.1f}" for m in METRICS)
        print(f"| {run.name} | {settings} | {len(history)} | {decoding} | {scores} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs")
