"""The table of everything tried on the dev split (issue 11): each run alone, greedy, and the ensembles.

    python -m scripts.dev_table runs models/shipped/eval
reads runs/*/dev_beam1.json (with each run's config.json or scst.json and history.json) and the
ensembles' rows in models/shipped/eval/dev_tuning*.json.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from caption_generator.config import TrainConfig

METRICS = ["BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"]
SHOWN = ("photo_dropout", "normalize_photo", "units", "label_smoothing", "tie_embeddings", "lr_schedule", "seed")


def settings(run: Path) -> str:
    """What the run was: its settings that matter here, or what its self-critical training started from."""
    if (run / "scst.json").is_file():
        scst = json.loads((run / "scst.json").read_text())
        history = json.loads((run / "history.json").read_text())
        best = max(history, key=lambda h: h["dev_cider"])["epoch"]
        return f"SCST of {Path(scst['from']).name}, lr {scst['learning_rate']}, best epoch {best} of {len(history) - 1}"
    if not (run / "config.json").is_file():
        return ""
    config = {**asdict(TrainConfig()), **json.loads((run / "config.json").read_text())}
    history = json.loads((run / "history.json").read_text()) if (run / "history.json").is_file() else []
    epochs = f", {len(history)} epochs" if history else ""
    return ", ".join(f"{k} {config[k]}" for k in SHOWN) + epochs


def row(label: str, what: str, decoding: str, scores: dict) -> str:
    return f"| {label} | {what} | {decoding} | " + " | ".join(f"{scores[m]:.1f}" for m in METRICS) + " |"


def main(runs: str, eval_dir: str) -> None:
    print("| run | settings | decoding | " + " | ".join(METRICS) + " |")
    print("|---" * (len(METRICS) + 3) + "|")
    for report_path in sorted(Path(runs).glob("*/dev_beam1.json")):
        report = json.loads(report_path.read_text())
        print(row(report_path.parent.name, settings(report_path.parent), "greedy", report["coco"]))
    for tuning in sorted(Path(eval_dir).glob("dev_tuning*.json")):
        for result in json.loads(tuning.read_text()):
            members = result["model"].removeprefix("ensemble of ").replace("runs/", "")
            decoding = "greedy" if result["beam"] == 1 else f"beam {result['beam']}, penalty {result['length_penalty']}"
            print(row(f"ensemble ({tuning.stem})", members, decoding, result))


if __name__ == "__main__":
    main(*(sys.argv[1:] or ["runs", "models/shipped/eval"]))
