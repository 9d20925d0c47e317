"""The benchmarks run and print their tables (on tiny inputs; no timing is asserted)."""
import subprocess
import sys

import pytest
import torch
from conftest import ROOT
from PIL import Image


@pytest.mark.slow
def test_quality_benchmark_runs(tiny_weights):
    p = subprocess.run([sys.executable, "benchmarks/quality.py", "--weights", str(tiny_weights), "--limit", "1",
                        "--datasets", "Set5", "--scales", "2", "8"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    for row in ("| bicubic |", "| seed |", "| default |", "| default+ensemble |", "| *RCAN* |"):
        assert row in p.stdout
    assert "Set5 x2 | Set5 x8" in p.stdout


@pytest.mark.slow
def test_speed_benchmark_runs(tiny_weights):
    p = subprocess.run([sys.executable, "benchmarks/speed.py", "--quick", "--no-runtimes", "--weights",
                        str(tiny_weights)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    for text in ("channels_last bf16", "onnxruntime fp32", "SRVGGNetCompact", "EDSR-baseline", "PIL lanczos",
                 "peak RSS, MB", "| 64to512 | 64x64 | eager fp32 |"):
        assert text in p.stdout, text


@pytest.mark.slow
def test_runtime_benchmark_runs(tiny_weights):
    from upscaler import runtimes

    p = subprocess.run([sys.executable, "benchmarks/runtime_speed.py", "--quick", "--weights", str(tiny_weights)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    auto = runtimes.pick_backend("auto", torch.device("cpu"))
    for text in ("| default | torch eager fp32 |", "| default | torch jit.freeze fp32 |", f"auto picks **{auto} (",
                 "## A fresh process per runtime", "- **ONNX file (as exported)**: Conv 22", "| 64->512 of 64x64 |",
                 *(f"| default | {b} fp32 |" for b in runtimes.GRAPH_RUNTIMES if runtimes.installed(b))):
        assert text in p.stdout, text


@pytest.mark.slow
def test_realworld_benchmark_runs(tiny_weights, tmp_path):
    p = subprocess.run([sys.executable, "benchmarks/realworld.py", "--weights", str(tiny_weights), "--limit", "2",
                        "--conditions", "clean", "jpeg50", "--scales", "x2", "x8"], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    for text in ("**x2**", "**x8**", "| input | bicubic | default | photo | seed |", "| clean |", "| jpeg50 |"):
        assert text in p.stdout, text
    figure = tmp_path / "faces.png"
    p = subprocess.run([sys.executable, "benchmarks/realworld.py", "--weights", str(tiny_weights), "--figure-only",
                        str(figure), "--figure-models", "default", "photo", "--no-anchor"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0 and figure.is_file(), p.stderr[-2000:]
    # bicubic and the two models, side by side: one 320 px column each
    assert Image.open(figure).width == 3 * 320


@pytest.mark.slow
def test_motion_benchmark_prints_its_tables():
    p = subprocess.run([sys.executable, "benchmarks/motion.py", "--quick"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    for heading in ("**Speed**", "**Memory**", "**Timing**", "**GIF**", "**Flicker**"):
        assert heading in p.stdout
    assert "out 30 at 750/23" in p.stdout and "within 0 ms" in p.stdout


@pytest.mark.slow
def test_perceptual_benchmark_prints_its_table(tiny_weights):
    p = subprocess.run([sys.executable, "benchmarks/perceptual.py", "--weights", str(tiny_weights), "--limit", "2",
                        "--no-anchor"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "| clean | bicubic |" in p.stdout and "| JPEG 75 | photo |" in p.stdout and "**x8**" in p.stdout
    assert "| crispness | grid |" in p.stdout
    assert "Real-ESRGAN x4plus: left out" in p.stdout


@pytest.mark.slow
def test_faces_benchmark_runs(tmp_path):
    p = subprocess.run([sys.executable, "benchmarks/faces.py", "--limit", "3"], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "**(shipped)**" in p.stdout and "cat.4093.jpg: face" in p.stdout
    figure = tmp_path / "faces.png"
    p = subprocess.run([sys.executable, "benchmarks/faces.py", "--limit", "4", "--figure", str(figure)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0 and figure.is_file(), p.stderr[-2000:]
