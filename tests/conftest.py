"""Shared fixtures: tiny weights for all eight networks, a tiny image folder."""
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

# No test may touch the network: no telemetry from gradio_client or huggingface_hub, here
# or in the processes the tests start (they inherit this environment).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

# Everything the tests and the servers they start write to the temp dir (Gradio's cache,
# gradio_client's downloads, the app's output PNGs) goes in one folder, removed when the
# run passes and kept for a look when it fails. pytest's own tmp_path stays where it was.
os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())
TEST_TMP = tempfile.mkdtemp(prefix="upscaler-tests-")
tempfile.tempdir = os.environ["TMPDIR"] = TEST_TMP
os.environ["GRADIO_TEMP_DIR"] = os.path.join(TEST_TMP, "gradio")
os.environ["UPSCALER_CACHE"] = os.path.join(TEST_TMP, "cache")  # the graph runtimes' ONNX files


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == 0:
        shutil.rmtree(TEST_TMP, ignore_errors=True)
    else:
        print(f"\ntemporary files of this run (servers' logs among them): {TEST_TMP}")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED_DATA = ROOT.parent / "shared" / "data"
CATS_TRAIN = SHARED_DATA / "cats" / "train"
CATS_VAL = SHARED_DATA / "cats" / "val"

from upscaler.models import FAMILIES  # noqa: E402
from upscaler.stages import TWO_X_STAGES  # noqa: E402
from upscaler.weights import save_model  # noqa: E402


def perturbed(net, scale=0.02, seed=0):
    """Random small weights everywhere (untrained nets are exactly bilinear otherwise)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "weight" in name and p.dim() > 1:
                p.add_(torch.randn(p.shape, generator=g) * scale)
    return net.eval()


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A weights root with every network of every family, randomly perturbed, in the shipped layout."""
    root = tmp_path_factory.mktemp("weights")
    for model, family in FAMILIES.items():
        for i, stage in enumerate(TWO_X_STAGES):
            save_model(perturbed(family.two_x(), seed=i), root, model, stage)
        save_model(perturbed(family.eight_x(), seed=9), root, model, "64to512")
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """16 real cat photos from the training split in an image folder."""
    root = tmp_path_factory.mktemp("cats")
    for f in sorted(CATS_TRAIN.glob("*.jpg"))[:16]:
        shutil.copy(f, root / f.name)
    return root


@pytest.fixture(scope="session")
def live_app():
    """One `python app.py` (offline, bundled weights) shared by every test that talks to a
    running server. -> (url, process, log file)."""
    from helpers import running_app

    with running_app({"HF_HUB_OFFLINE": "1"}) as handle:
        yield handle
