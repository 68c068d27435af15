"""The research notebook, executed top to bottom with small parameters."""

import papermill

from conftest import FLICKR, HAS_DOT, ROOT


def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    out = tmp_path / "executed.ipynb"
    papermill.execute_notebook(
        ROOT / "Training_caption_generator.ipynb", out, cwd=tmp_path, kernel_name="python3", progress_bar=False,
        parameters={"DATA_ROOT": str(FLICKR), "EPOCHS": 2, "ENCODER_WEIGHTS": "none", "INPUT_SIZE": 71,
                    "OUT_DIR": str(tmp_path / "models"), "BEAM": 2})
    for name in ("descriptions.txt", "features.p", "tokenizer.p", "models/best.keras", "models/loss.png"):
        assert (tmp_path / name).is_file(), name
    text = out.read_text()
    assert "beam 2: BLEU-1" in text and "image/png" in text
    assert (tmp_path / "model.png").is_file() == HAS_DOT  # without Graphviz: one line on installing it
    assert HAS_DOT or "model.png not drawn" in text and "apt-get install graphviz" in text
