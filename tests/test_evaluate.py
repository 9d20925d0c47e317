"""The cats/val table machinery, on tiny weights and a few photos."""
import json

from conftest import CATS_VAL

from upscaler.evaluate import evaluate, save
from upscaler.protocol import format_table


def test_evaluate_rows_and_table(tiny_weights, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for f in sorted(CATS_VAL.glob("*.jpg"))[:2]:
        (photos / f.name).write_bytes(f.read_bytes())
    result = evaluate(photos, weights=tiny_weights, stages=("64to128", "64to512"), progress=False, dtype="float32")
    assert result["images"] == 2
    rows = result["stages"]["64to512"]
    assert {"bilinear", "bicubic", "lanczos", "default", "seed",
            "default (2x stages chained, no fine-tuning)"} <= set(rows)
    assert rows["bicubic"]["psnr"] > rows["bilinear"]["psnr"] > 15  # interpolation's usual order
    table = format_table(result)
    assert "| default (2x stages chained, no fine-tuning) |  | " in table  # no such row at 64to128
    save(result, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == result


def test_models_without_weights_are_left_out(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(sorted(CATS_VAL.glob("*.jpg"))[0].read_bytes())
    result = evaluate(photos, weights=tmp_path / "no-weights", stages=("64to128",), progress=False)
    assert set(result["stages"]["64to128"]) == {"bilinear", "bicubic", "lanczos"}
