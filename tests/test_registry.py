"""Adding a model family is one class pair plus one ``register`` line: nothing else."""
import pytest
import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from PIL import Image
from torch import nn

from upscaler.cli import build_parser
from upscaler.inference import load_upscaler
from upscaler.models import FAMILIES, Describes, Family, Stack8x, register
from upscaler.weights import save_model


class TinyUpsampler(Describes, nn.Module, PyTorchModelHubMixin):
    """A throwaway family: one 3x3 convolution on top of nearest-neighbour 2x."""

    receptive_field = 2

    def __init__(self, channels: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TinyUpsampler8x(Stack8x, PyTorchModelHubMixin):
    stage_class = TinyUpsampler

    def __init__(self, channels: int = 3):
        super().__init__(channels=channels)


@pytest.fixture()
def tiny_family():
    register(Family("tiny", TinyUpsampler, TinyUpsampler8x, "tiny", "A family made up by a test."))
    yield FAMILIES["tiny"]
    del FAMILIES["tiny"]


def test_a_new_family_reaches_the_cli_and_load_upscaler(tiny_family, tmp_path):
    parser = build_parser()
    args = parser.parse_args(["upscale", "x.png", "--stage", "64to512", "--output-dir", "o", "--model", "tiny"])
    assert args.model == "tiny"
    for stage, net in (("64to128", TinyUpsampler()), ("64to512", TinyUpsampler8x())):
        save_model(net, tmp_path, "tiny", stage)
        up = load_upscaler(stage, model="tiny", weights=tmp_path)
        out = up(Image.new("RGB", (9, 5), (10, 200, 30)))
        assert out.size == (9 * net.factor, 5 * net.factor)
        assert up.tile_pad == net.receptive_field  # read from the class, no name compared
    assert TinyUpsampler8x.receptive_field == 4 and TinyUpsampler8x.factor == 8


def test_the_model_names_live_only_in_the_registry():
    """`grep '"seed"\\|"default"'` over the package, app and training script finds the
    names only in the registry (models.py) and in docstrings."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    files = [*sorted((root / "upscaler").glob("*.py")), root / "app.py", root / "train_accelerate.py"]
    found = []
    for f in files:
        if f.name == "models.py":
            continue
        tree = ast.parse(f.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in ("seed", "default") and id(node) not in docstrings:
                found.append(f"{f.name}:{node.lineno}")
    assert not found, found


def test_stage_travels_as_a_stage():
    from upscaler.stages import STAGES, get_stage

    st = get_stage("64to512")
    assert get_stage(st) is st is STAGES["64to512"]
    with pytest.raises(ValueError, match="unknown stage"):
        get_stage("64to1024")
    with pytest.raises(ValueError, match="unknown stage"):
        get_stage(None)


def test_tiny_family_is_trainable_through_the_registry(tiny_family):
    net = tiny_family.architecture("64to128")()
    loss = F.l1_loss(net(torch.rand(2, 3, 8, 8)), torch.rand(2, 3, 16, 16))
    loss.backward()
    assert net.conv.weight.grad is not None and net.loss == "l1"
