"""ONNX export (upscaler/export.py, `upscaler export`): onnxruntime matches torch."""
import subprocess
import sys

import numpy as np
import onnx
import pytest
from conftest import ROOT

from upscaler.export import check_onnx, export_onnx
from upscaler.hub import files_to_upload
from upscaler.models import FAMILIES
from upscaler.stages import STAGES


@pytest.mark.parametrize("model", ["default", "seed"])
def test_an_export_matches_torch_on_odd_and_padded_sizes(model, tmp_path):
    path = export_onnx(model, "64to128", tmp_path)
    assert path == tmp_path / model / "64to128" / "model.onnx"
    # beside the weights, so the folder is a complete weights root to push
    assert (path.parent / "model.safetensors").is_file() and (path.parent / "config.json").is_file()
    # odd sizes for the default network; for the seed's (multiples of 4) padded as Upscaler pads
    assert check_onnx(path, model, "64to128", weights=tmp_path, sizes=((1, 37, 45), (2, 64, 64), (1, 30, 101))) <= 1e-4
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["factor"] == "2" and meta["model"] == model and meta["stage"] == "64to128"
    assert meta["size_multiple"] == str(FAMILIES[model].two_x.size_multiple)
    assert f"{model}/64to128/model.onnx" in files_to_upload(tmp_path)  # pushed with the weights


def test_the_onnx_runs_any_batch_and_size(tmp_path):
    import onnxruntime as ort

    path = export_onnx("default", "64to512", tmp_path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n, h, w in ((1, 9, 13), (3, 20, 16)):
        out = session.run(None, {"image": np.random.rand(n, 3, h, w).astype(np.float32)})[0]
        assert out.shape == (n, 3, 8 * h, 8 * w)


@pytest.mark.slow  # every model and stage, as a user runs it
def test_export_all_from_the_command_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "upscaler", "export", "--all", "--output-dir", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert p.stdout.count("wrote ") == len(FAMILIES) * len(STAGES)
    assert p.stdout.count("onnxruntime vs torch: max |diff|") == len(FAMILIES) * len(STAGES)
    for model in FAMILIES:
        for stage in STAGES:
            assert (tmp_path / model / stage / "model.onnx").is_file()
