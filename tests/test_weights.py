"""The weights that ship in weights/: all eight load, offline, and the default model
really upscales better than bicubic on validation cats (never trained on)."""
import json

import pytest
from conftest import CATS_VAL
from PIL import Image

from upscaler.inference import load_upscaler
from upscaler.metrics import psnr_y
from upscaler.protocol import eval_pair
from upscaler.stages import STAGES
from upscaler.weights import BUNDLED_WEIGHTS, training_runs, whole_curve


@pytest.mark.parametrize("model", ["default", "seed"])
@pytest.mark.parametrize("stage", list(STAGES))
def test_shipped_weights_load_offline(model, stage):
    folder = BUNDLED_WEIGHTS / model / stage
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert (folder / "model.safetensors").stat().st_size < 10e6  # small enough to commit
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model"] == model and cfg["stage"] == stage
    assert "train_accelerate.py" in cfg["training"]["command"]  # made by the committed script
    up = load_upscaler(stage, model=model)  # no weights argument: the bundled ones
    assert up.source == "bundled"
    assert up(Image.new("RGB", (8, 8))).size == (8 * STAGES[stage].factor,) * 2


@pytest.mark.parametrize("stage,margin", [("64to128", 1.0), ("64to512", 0.5)])
def test_default_beats_bicubic_on_validation_cats(stage, margin):
    st = STAGES[stage]
    up = load_upscaler(stage)
    gains = []
    for f in sorted(CATS_VAL.glob("*.jpg"))[:12]:
        lr, hr = eval_pair(Image.open(f).convert("RGB"), st)
        gains.append(psnr_y(up(lr), hr, st.factor) - psnr_y(lr.resize(hr.size, Image.BICUBIC), hr, st.factor))
    assert sum(gains) / len(gains) > margin, gains


def test_a_continued_network_keeps_its_whole_training_record():
    """A run that continued from earlier weights nests their ``training`` block under
    ``continues``; the curve then runs on from the samples the earlier run had seen."""
    first = {"command": "train_accelerate.py --max-steps 2", "samples_seen": 32,
             "curve": [{"step": 1, "samples": 16, "psnr_ema": 30.0}, {"step": 2, "samples": 32, "psnr_ema": 31.0}]}
    second = {"command": "train_accelerate.py --init-weights w", "samples_seen": 16, "continues": first,
              "curve": [{"step": 1, "samples": 16, "psnr_ema": 31.5}]}
    assert [r["command"] for r in training_runs(second)] == [first["command"], second["command"]]
    assert [(p["samples"], p["psnr_ema"]) for p in whole_curve(second)] == [(16, 30.0), (32, 31.0), (48, 31.5)]
    assert training_runs(None) == [] and whole_curve(first) == first["curve"]


def test_only_network_failures_count_as_an_unreachable_hub(monkeypatch):
    """A dropped connection is "unreachable" (the app falls back to the bundled weights);
    a bug is raised as it is, instead of silently switching the Hub off for every network."""
    import huggingface_hub

    from upscaler import weights

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # other test modules set it when collected

    def dropped(*args, **kwargs):
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", dropped)
    with pytest.raises(weights.HubUnreachable, match="ConnectionResetError"):
        weights.fetch_from_hub("me/repo", "default", "64to128", "v1")

    def buggy(*args, **kwargs):
        raise KeyError("a bug, not the network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", buggy)
    with pytest.raises(KeyError):
        weights.fetch_from_hub("me/repo", "default", "64to128", "v1")
    with pytest.raises(KeyError):  # and the app's policy does not turn it into a fallback either
        weights.load_serving(["default"], ["64to128"], "me/repo", "v1")
