"""The graph runtimes (upscaler/runtimes.py): every backend ``auto`` can pick gives torch's
image (8-bit PSNR >= 50 dB against torch fp32), tiles, alpha, 16-bit and blends the same
way, and the ONNX files are exported once and shared with browser mode."""
import copy
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import ONE_PER_ARCHITECTURE
import torch
from PIL import Image

from upscaler import load_upscaler, runtimes
from upscaler.inference import Upscaler
from upscaler.metrics import psnr_rgb as psnr8  # 8-bit PSNR over every channel (a size mismatch raises)
from upscaler.models import FAMILIES, ResidualUpsampler
from upscaler.weights import load_model

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cat.4093.jpg"
GRAPH_BACKENDS = [b for b in runtimes.GRAPH_RUNTIMES if runtimes.installed(b)]
# what auto picks on a CPU must be tested here: CI installs requirements.txt (openvino)
assert runtimes.pick_backend("auto", torch.device("cpu")) in ["torch", *GRAPH_BACKENDS]


@pytest.fixture(scope="module")
def photo():
    return Image.open(EXAMPLE).convert("RGB").crop((60, 40, 180, 140))  # 120x100, the face


def test_auto_is_openvino_on_a_cpu_where_installed_and_torch_on_a_gpu():
    want = "openvino" if runtimes.installed("openvino") else "torch"
    assert runtimes.pick_backend("auto", torch.device("cpu")) == want
    assert runtimes.pick_backend("auto", torch.device("cuda")) == "torch"
    assert load_upscaler("64to128").backend == want
    assert load_upscaler("64to128", backend="torch").backend == "torch"


def test_bad_backend_choices_are_clear_errors():
    with pytest.raises(ValueError, match="use auto, torch, openvino, onnxruntime"):
        runtimes.pick_backend("tensorrt", torch.device("cpu"))
    with pytest.raises(ValueError, match="runs on the CPU only"):
        runtimes.pick_backend("openvino", torch.device("cuda"))
    with pytest.raises(ValueError, match="float32 only"):
        runtimes.runtime_dtype("onnxruntime", ResidualUpsampler(), "bfloat16")


def test_graph_runtimes_take_bf16_only_where_the_cpu_has_amx(monkeypatch):
    net = ResidualUpsampler()  # lists bfloat16 as safe
    monkeypatch.setattr(runtimes, "cpu_has_amx", lambda: False)
    assert runtimes.runtime_dtype("openvino", net) == torch.float32
    monkeypatch.setattr(runtimes, "cpu_has_amx", lambda: True)
    assert runtimes.runtime_dtype("openvino", net) == torch.bfloat16
    assert runtimes.runtime_dtype("openvino", net, "float32") == torch.float32  # explicit wins
    assert runtimes.runtime_dtype("onnxruntime", net) == torch.float32


@pytest.mark.parametrize("backend", GRAPH_BACKENDS)
@pytest.mark.parametrize("model", ONE_PER_ARCHITECTURE)
@pytest.mark.parametrize("stage", ["64to128", "64to512"])
def test_same_image_as_torch_fp32(photo, backend, model, stage):
    """The shipped weights, at the precision auto would choose on this CPU."""
    want = load_upscaler(stage, model=model, backend="torch", dtype="float32")(photo)
    got = load_upscaler(stage, model=model, backend=backend)(photo)
    assert psnr8(got, want) >= 50


@pytest.mark.parametrize("backend", GRAPH_BACKENDS)
def test_tiles_alpha_16_bit_and_blends_as_in_torch(photo, backend):
    net, _ = load_model("photo", "64to128")
    tiled = Upscaler(net, "64to128", tile=32, backend=backend)
    whole = Upscaler(net, "64to128", tile=0, backend=backend)
    reference = Upscaler(net, "64to128", tile=0, dtype="float32")
    assert psnr8(tiled(photo), whole(photo)) >= 50  # the tiles overlap by the receptive field

    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    out = tiled(rgba)
    assert out.mode == "RGBA" and out.size == (240, 200)
    assert psnr8(out, reference(rgba)) >= 50

    gray16 = Image.fromarray((np.asarray(photo.convert("L"), np.uint16) * 257))
    out16 = tiled(gray16)
    assert out16.mode == "I;16" and out16.size == (240, 200)
    diff = np.abs(np.asarray(out16, np.int64) - np.asarray(reference(gray16), np.int64))
    assert diff.max() <= 257 * 2  # within 2 steps of 8 bits, on 16-bit values

    blended = load_upscaler("64to128", model="photo", denoise_strength=0.4, backend=backend)(photo)
    torch_blend = load_upscaler("64to128", model="photo", denoise_strength=0.4, backend="torch",
                                dtype="float32")(photo)
    assert psnr8(blended, torch_blend) >= 50
    assert psnr8(blended, whole(photo)) < 50  # and the blend is not the photo network itself


@pytest.mark.parametrize("backend", GRAPH_BACKENDS)
def test_one_network_runs_on_several_threads_at_once(photo, backend):
    up = Upscaler(load_model("default", "64to128")[0], "64to128", backend=backend)
    want = np.asarray(up(photo))
    results = [None] * 3

    def work(i):
        results[i] = np.asarray(up(photo))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None and np.array_equal(r, want) for r in results)


@pytest.mark.skipif(not GRAPH_BACKENDS, reason="no graph runtime installed")
def test_each_network_is_exported_once_and_shared_with_browser_mode(tmp_path, monkeypatch, photo):
    from upscaler import browser, export

    monkeypatch.setenv("UPSCALER_CACHE", str(tmp_path / "cache"))
    calls, write = [], export.write_onnx
    monkeypatch.setattr(export, "write_onnx", lambda net, path, facts=None: (calls.append(path), write(net, path))[1])
    net, _ = load_model("default", "64to128")
    for _ in range(2):  # two loads, as two processes would: one export
        Upscaler(net, "64to128", backend=GRAPH_BACKENDS[0])(photo)
    assert len(calls) == 1 and calls[0].parent == tmp_path / "cache" / "onnx"

    served = browser.OnnxFolder(tmp_path / "served").path("default-64to128", lambda: net)
    assert len(calls) == 1  # browser mode found the same export
    assert served.read_bytes() == calls[0].read_bytes()

    other = ResidualUpsampler()
    assert runtimes.network_digest(other) != runtimes.network_digest(net)
    assert runtimes.network_digest(copy.deepcopy(net).to(torch.bfloat16)) != runtimes.network_digest(net)


def test_the_cache_keeps_the_newest_files(tmp_path, monkeypatch):
    monkeypatch.setattr(runtimes, "CACHE_FILES", 2)
    paths = []
    for seed in range(3):
        torch.manual_seed(seed)
        paths.append(runtimes.cached_onnx(ResidualUpsampler(num_features=4, num_convs=1), tmp_path))
    assert [p.is_file() for p in paths] == [False, True, True]
