"""Browser mode, server side: the plan a page gets (upscaler/browser.py), without a browser."""
import numpy as np
import pytest
import torch

from upscaler import browser
from upscaler.models import blend_networks
from upscaler.weights import load_model


def nets_for(models, stages):
    return {(m, s): load_model(m, s)[0].float().eval() for m in models for s in stages}


@pytest.mark.parametrize("model, twin", [("photo", "default"), ("sharp", "photo")])
def test_a_blend_is_exported_once_and_runs_as_the_blend(model, twin, tmp_path):
    """photo's denoise strength and sharp's invented detail: one ONNX file per strength."""
    import onnxruntime as ort

    nets = nets_for([model, twin], ["64to128", "128to256"])
    folder = browser.OnnxFolder(tmp_path)
    specs = browser.stage_specs(folder, nets, model, ["64to128", "128to256"], 0.5, twin)
    assert [s["stage"] for s in specs] == ["64to128", "128to256"]
    assert all(s["factor"] == 2 and s["url"].startswith("gradio_api/file=") and s["bytes"] > 0 for s in specs)
    assert all(s["tile"] >= browser.BROWSER_MIN_TILE and s["tile_pad"] >= nets[model, s["stage"]].receptive_field
               for s in specs)
    path = tmp_path / f"{model}-64to128-d0.5.onnx"  # the strength as every file name carries it
    first = path.stat().st_mtime_ns
    browser.stage_specs(folder, nets, model, ["64to128"], 0.5, twin)
    assert path.stat().st_mtime_ns == first  # kept, not exported again
    # the file is the blend, not either network
    x = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(0))
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        want = blend_networks(nets[twin, "64to128"], nets[model, "64to128"], 0.5)(x).numpy()
        plain = nets[model, "64to128"](x).numpy()
    assert np.abs(got - want).max() <= 1e-4 < np.abs(got - plain).max()
    # strength 1 is the network itself, under its own name
    alone = browser.stage_specs(folder, nets, model, ["64to128"])
    assert alone[0]["url"].endswith(f"{model}-64to128.onnx")


def test_the_plan_names_the_runtime_and_the_bytes(monkeypatch, tmp_path):
    nets = nets_for(["default"], ["64to512"])
    specs = browser.stage_specs(browser.OnnxFolder(tmp_path), nets, "default", ["64to512"])
    plan = browser.plan(specs, "cat-x8-default.png")
    assert plan["bytes"] == specs[0]["bytes"] < 2e6  # the 8x network crosses the network in under 2 MB
    assert plan["runtime"]["version"] == browser.RUNTIME_VERSION
    monkeypatch.setattr(browser, "LOCAL_DIST", tmp_path / "absent")
    cdn = browser.runtime()
    assert cdn["source"] == "cdn" and cdn["integrity"] == browser.RUNTIME_INTEGRITY
    assert cdn["script"] == f"{browser.CDN_DIST}{browser.RUNTIME_FILE}" and browser.RUNTIME_VERSION in cdn["script"]
    monkeypatch.setenv("UPSCALER_ORT_URL", "https://mirror.example/ort/dist")
    assert browser.runtime()["wasm_paths"] == "https://mirror.example/ort/dist/"
