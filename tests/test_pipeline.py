"""The Python API: one call from photos to captions, one to a split's scores, one to a data root's features."""
import subprocess
import sys

import numpy as np
import pytest

import caption_generator
from caption_generator import (CaptionError, CaptionPipeline, caption_photos, compute_features, evaluate_split,
                               load_captioner)
from caption_generator.features import load_features
from caption_generator.layouts import open_layout
from conftest import FLICKR, PHOTOS, ROOT, TINY_INPUT


def tiny(tiny_model) -> dict:
    """The tiny model and the random-weight encoder at TINY_INPUT, as the API's keywords."""
    return {"model": tiny_model / "model.keras", "tokenizer": tiny_model / "tokenizer.p", "encoder_weights": "none",
            "input_size": TINY_INPUT}


def test_importing_the_package_does_not_import_tensorflow():
    found = subprocess.run([sys.executable, "-c", "import sys, caption_generator, caption_generator.__main__; "
                            "print(sorted({'tensorflow', 'keras', 'matplotlib', 'gradio'} & set(sys.modules)))"],
                           cwd=ROOT, capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
    assert {"caption_photos", "evaluate_split", "CaptionError"} <= set(caption_generator.__all__)


def test_caption_photos_from_files_and_folders_in_order(tiny_model, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in PHOTOS[1:3]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    results = list(caption_photos([PHOTOS[0], folder, tmp_path / "missing.jpg"], beam=2, **tiny(tiny_model)))
    assert [r.path.name for r in results] == ["missing.jpg", *(p.name for p in PHOTOS[:3])]
    assert results[0].error == f"{tmp_path / 'missing.jpg'}: no such file or folder" and results[0].caption is None
    captioned = results[1:]
    assert all(r.error is None and r.features.shape == (2048,) for r in captioned)
    captioner, _ = load_captioner(tiny_model / "model.keras", tiny_model / "tokenizer.p")
    assert [r.caption for r in captioned] == captioner.beam_search(np.stack([r.features for r in captioned]), 2)
    one = list(caption_photos(PHOTOS[0], **tiny(tiny_model)))
    assert len(one) == 1 and one[0].path == PHOTOS[0] and isinstance(one[0].caption, str)


def test_a_vocabulary_needs_its_model():
    with pytest.raises(CaptionError, match="--tokenizer without --model"):
        load_captioner(None, "tokenizer.p")


def test_evaluate_a_split_of_a_data_root_with_photos_in_sub_folders(coco_root, tiny_model):
    report = evaluate_split(coco_root, "dev", beam=2, features=tiny_model / "features.p", **tiny(tiny_model))
    assert report["split"] == "dev" and report["beam"] == 2 and report["photos"] == 4
    assert sorted(report["captions"]) == sorted(open_layout(FLICKR).split("dev"))
    assert set(report["coco"]) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"}


def test_compute_features_of_the_first_photos_of_each_split(coco_root, tmp_path):
    features, written = compute_features(coco_root, tmp_path / "features.p", limit=1, encoder_weights="none",
                                         input_size=TINY_INPUT)
    layout = open_layout(coco_root)
    assert written == tmp_path / "features.p" and sorted(load_features(written)) == sorted(features)
    assert sorted(features) == sorted(layout.split(s)[0] for s in ("train", "dev", "test"))


def test_a_pipeline_loads_once_and_captions_again_and_again(tiny_model):
    captioner = CaptionPipeline(**tiny(tiny_model))
    first = [r.caption for r in captioner(PHOTOS[:2], beam=2)]
    again = [r.caption for r in captioner(PHOTOS[:2], beam=2)]
    assert first == again == [r.caption for r in caption_photos(PHOTOS[:2], beam=2, **tiny(tiny_model))]
    assert all(isinstance(c, str) and c for c in first)
