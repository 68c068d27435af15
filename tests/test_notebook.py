"""The research notebook as a user meets it: executed top to bottom with small parameters in a copy of
the repository, with its default OUT_DIR; then what the reader sees, and the command line afterwards."""
import json
import shutil
import subprocess
import sys

import papermill
import pytest

from conftest import FLICKR, HAS_DOT, ROOT, TINY_INPUT

pytestmark = pytest.mark.slow

FIGURE_CALLS = ("show.photo_grid", "caption_statistics", "similar_figure", "loss.png", "plot(model")
NOISE = ("absl", "oneDNN", "cuInit", "cuda", "IProgress not found", "PTBTokenizer", "retracing")


def git(repo, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout


def caption(repo, *args: str) -> str:
    """The script's output for the first example photo (exit status 0 required)."""
    done = subprocess.run([sys.executable, "testing_caption_generator.py", "-i", "examples/1077546505_a4f6c4daa9.jpg",
                           "--encoder-weights", "none", "--input-size", str(TINY_INPUT), *args],
                          cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # nothing but the caption: no start-up noise
    return done.stdout.strip()


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    """A copy of the repository's tracked files as a git repository of its own, and the executed notebook
    run in it with the default OUT_DIR, as a user runs it after cloning."""
    repo = tmp_path_factory.mktemp("clone")
    for name in git(ROOT, "ls-files").splitlines():
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "clone")
    out = repo / "executed.ipynb"
    papermill.execute_notebook(
        repo / "Training_caption_generator.ipynb", out, cwd=repo, kernel_name="python3", progress_bar=False,
        parameters={"DATA_ROOT": str(FLICKR), "EPOCHS": 2, "ENCODER_WEIGHTS": "none", "INPUT_SIZE": TINY_INPUT,
                    "BEAM": 2})
    cells = [c for c in json.loads(out.read_text())["cells"] if c["cell_type"] == "code"]
    out.unlink()
    return repo, cells


def output_text(cell: dict) -> str:
    return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   for o in cell["outputs"])


def test_every_figure_shows_as_a_picture(user_run):
    _, cells = user_run
    figure_cells = [c for c in cells if any(call in "".join(c["source"]) for call in FIGURE_CALLS)
                    and "parameters" not in c["metadata"].get("tags", [])]
    assert len(figure_cells) == 6
    for cell in figure_cells:
        if "plot(model" in "".join(cell["source"]) and not HAS_DOT:
            assert "apt-get install graphviz" in output_text(cell)  # one line on installing it, and on
            continue
        assert any("image/png" in o.get("data", {}) for o in cell["outputs"]), "".join(cell["source"])
    for cell in cells:
        for output in cell["outputs"]:  # a figure's text stands only beside its picture, never instead of it
            text = "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
            assert "<Figure size" not in text or "image/png" in output.get("data", {}), text


def test_outputs_are_clean_and_scores_printed(user_run):
    _, cells = user_run
    text = "".join(output_text(c) for c in cells)
    for noise in NOISE:
        assert noise not in text, noise
    assert "beam 2: BLEU-1" in text
    features_cell = next(c for c in cells if "extract_features" in "".join(c["source"]))
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in features_cell["outputs"])


def test_run_writes_the_tutorial_files_and_leaves_what_we_ship_alone(user_run):
    repo, _ = user_run
    for name in ("descriptions.txt", "features.p", "tokenizer.p", "models/best.keras", "models/tokenizer.p",
                 "models/loss.png"):
        assert (repo / name).is_file(), name
    assert (repo / "model.png").is_file() == HAS_DOT
    assert git(repo, "status", "--porcelain") == ""  # no tracked file changed, nothing new that is not ignored
    shipped = caption(repo)
    assert len(shipped.split()) >= 3 and shipped.replace(" ", "").isalpha(), shipped
    caption(repo, "--model", "models/")  # the user's own two-epoch model captions too
