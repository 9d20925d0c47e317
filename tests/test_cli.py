"""python -m upscaler ..., as a user runs it."""
import json
import shutil

import pytest
from conftest import CATS_VAL
from helpers import cli
from PIL import Image


@pytest.mark.slow
def test_upscale_a_folder(tiny_weights, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for f in sorted(CATS_VAL.glob("*.jpg"))[:3]:
        shutil.copy(f, photos / f.name)
    p = cli("upscale", photos, "--stage", "64to128", "--weights", tiny_weights, "--output-dir", tmp_path / "out")
    assert p.returncode == 0, p.stderr
    for f in photos.iterdir():
        out = Image.open(tmp_path / "out" / f"{f.stem}.png")
        assert out.size == tuple(2 * v for v in Image.open(f).size)
    assert "wrote 3 image(s)" in p.stdout


@pytest.mark.slow
def test_upscale_one_file_x8_with_the_seed_model(tiny_weights, tmp_path):
    src = sorted(CATS_VAL.glob("*.jpg"))[0]
    p = cli("upscale", src, "--stage", "64to512", "--model", "seed", "--weights", tiny_weights,
            "--output-dir", tmp_path)
    assert p.returncode == 0, p.stderr
    assert Image.open(tmp_path / f"{src.stem}.png").size == tuple(8 * v for v in Image.open(src).size)


@pytest.mark.slow
def test_clear_errors(tiny_weights, tmp_path):
    p = cli("upscale", tmp_path / "missing.jpg", "--stage", "64to128", "--output-dir", tmp_path)
    assert p.returncode == 2 and "does not exist" in p.stderr
    p = cli("upscale", tmp_path, "--stage", "64to128", "--output-dir", tmp_path / "o")
    assert p.returncode == 2 and "no images" in p.stderr
    p = cli("upscale", CATS_VAL, "--stage", "32to64", "--output-dir", tmp_path)
    assert p.returncode == 2 and "invalid choice" in p.stderr
    p = cli("upscale", CATS_VAL, "--stage", "64to128", "--output-dir", tmp_path, "--weights", tmp_path)
    assert p.returncode == 2 and "no model.safetensors" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow
def test_evaluate_and_card(tiny_weights, tmp_path):
    root = tmp_path / "w"
    shutil.copytree(tiny_weights, root)
    p = cli("evaluate", "--data", CATS_VAL, "--weights", root, "--limit", "2", "--stages", "64to128", "64to512",
            "--update-card")
    assert p.returncode == 0, p.stderr
    result = json.loads((root / "evaluation.json").read_text())
    rows = result["stages"]["64to512"]
    assert {"bilinear", "bicubic", "lanczos", "seed", "default",
            "default (2x stages chained, no fine-tuning)"} <= set(rows)
    assert "| bicubic |" in p.stdout
    assert "Evaluation on cats/val" in (root / "README.md").read_text()


@pytest.mark.slow
def test_figures(tiny_weights, tmp_path):
    p = cli("figures", "--data", CATS_VAL, "--weights", tiny_weights, "--output-dir", tmp_path, "--count", "2",
            "--stages", "64to128", "--cell", "64")
    assert p.returncode == 0, p.stderr
    assert Image.open(tmp_path / "default-64to128.png").size == (2 * 64, 3 * (64 + 14))
