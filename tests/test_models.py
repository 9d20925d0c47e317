import json

import pytest
from helpers import ONE_PER_ARCHITECTURE
import torch
from torch.nn.utils import parametrize
from conftest import perturbed

from upscaler.models import (
    FAMILIES,
    ResidualUpsampler,
    ResidualUpsampler8x,
    Upsampler,
    Upsampler8x,
    model_class,
)
from upscaler.stages import STAGES, TWO_X_STAGES
from upscaler.weights import WeightsError, load_model, save_model


@pytest.mark.parametrize("model", ONE_PER_ARCHITECTURE)
@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_upscales_its_training_size(model, stage):
    st = STAGES[stage]
    net = model_class(model, stage)().eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, st.input_size, st.input_size))
    assert y.shape == (2, 3, st.output_size, st.output_size)
    assert net.factor == st.factor


def test_seed_is_the_reference_layer_for_layer():
    layers = [type(m).__name__ for m in Upsampler().fw]
    assert layers == ["Conv2d", "BatchNorm2d", "ReLU"] * 3 + ["ConvTranspose2d", "BatchNorm2d", "ReLU"] * 2 + [
        "ConvTranspose2d", "Tanh"]
    convs = [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0]) for m in Upsampler().fw
             if hasattr(m, "in_channels")]
    assert convs == [(3, 16, 5, 2), (16, 64, 5, 2), (64, 256, 5, 1), (256, 64, 4, 2), (64, 16, 4, 2), (16, 3, 4, 2)]
    assert set(dict(Upsampler8x().named_children())) == {"upsample_64", "upsample_128", "upsample_256"}


def test_default_starts_as_bilinear():
    x = torch.rand(1, 3, 20, 30)
    y = ResidualUpsampler()(x)
    ref = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(y, ref)


@pytest.mark.parametrize("model", ONE_PER_ARCHITECTURE)
@pytest.mark.parametrize("stage", ["64to128", "64to512"])
def test_save_load_round_trip_through_the_mixin(tmp_path, model, stage):
    net = perturbed(model_class(model, stage)())
    folder = save_model(net, tmp_path, model, stage)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model"] == model and cfg["stage"] == stage
    loaded, source = load_model(model, stage, weights=tmp_path)
    assert source.startswith("local:")
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))


def test_default_config_round_trips_its_size(tmp_path):
    save_model(perturbed(ResidualUpsampler(num_features=16, num_convs=2)), tmp_path, "default", "64to128")
    net, _ = load_model("default", "64to128", weights=tmp_path)
    assert net.body[0].out_channels == 16 and len(net.body) == 2 + 2 * 2 + 1


def test_8x_stack_is_built_from_the_three_stages():
    parts = [perturbed(ResidualUpsampler(), seed=i) for i in range(3)]
    stack = FAMILIES["default"].eight_x.from_stages(*parts)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(stack(x), parts[2](parts[1](parts[0](x))))


def test_8x_stages_may_differ_and_the_stack_keeps_its_layout(tmp_path):
    """A stack of unlike stages (a bigger first one) keeps each stage's size through
    from_stages, save and load."""
    sizes = [(16, 3), (8, 2), (8, 1)]
    parts = [perturbed(ResidualUpsampler(num_features=f, num_convs=n), seed=i) for i, (f, n) in enumerate(sizes)]
    stack = ResidualUpsampler8x.from_stages(*parts)
    assert stack._hub_mixin_config == {"num_features": [16, 8, 8], "num_convs": [3, 2, 1]}
    save_model(stack, tmp_path, "default", "64to512")
    loaded, _ = load_model("default", "64to512", weights=tmp_path)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(loaded(x), parts[2](parts[1](parts[0](x))))
    # the reach of a pixel: rf + rf/2 + rf/4 of these stages (7, 6, 5), rounded up
    assert loaded.receptive_field == -(-(4 * 7 + 2 * 6 + 5) // 4)
    # alike stages are stored as one value, as before
    alike = ResidualUpsampler8x.from_stages(*[ResidualUpsampler(num_features=8, num_convs=2)] * 3)
    assert alike._hub_mixin_config == {"num_features": 8, "num_convs": 2}


def test_each_2x_stage_trains_as_its_part_of_the_8x_layout():
    family = FAMILIES["default"]
    layouts = [family.two_x_layout(s) for s in TWO_X_STAGES]
    stack = family.eight_x()
    for layout, stage in zip(layouts, (stack.upsample_64, stack.upsample_128, stack.upsample_256)):
        assert stage.state_dict().keys() == ResidualUpsampler(**layout).state_dict().keys()
        assert stage.body[0].out_channels == layout["num_features"]
    # Family.build, which the training script and benchmarks/train_speed.py call, follows it
    for layout, name in zip(layouts, TWO_X_STAGES):
        built = family.build(name)
        assert (built.body[0].out_channels, len(built.convs()) - 2) == (layout["num_features"], layout["num_convs"])
    assert family.build("64to128", num_features=8).body[0].out_channels == 8
    assert type(family.build("64to512")) is family.eight_x
    assert layouts[0]["num_features"] > layouts[2]["num_features"]  # capacity where pixels are few
    assert FAMILIES["seed"].two_x_layout("64to128") == {}


def test_strict_loading_rejects_mismatched_weights(tmp_path):
    # default weights saved where the seed model is expected: keys do not match
    save_model(ResidualUpsampler(), tmp_path, "seed", "64to128")
    (tmp_path / "seed" / "64to128" / "config.json").write_text("{}")
    with pytest.raises(WeightsError, match="do not load"):
        load_model("seed", "64to128", weights=tmp_path)
    # same keys, other shapes
    save_model(ResidualUpsampler(num_features=16), tmp_path, "default", "64to128")
    cfg = tmp_path / "default" / "64to128" / "config.json"
    cfg.write_text(json.dumps({"num_features": 32, "num_convs": 4}))
    with pytest.raises(WeightsError, match="do not load"):
        load_model("default", "64to128", weights=tmp_path)


def test_missing_and_pickled_weights_are_refused(tmp_path):
    with pytest.raises(WeightsError, match="no model.safetensors"):
        load_model("default", "64to128", weights=tmp_path)
    folder = tmp_path / "default" / "64to128"
    folder.mkdir(parents=True)
    torch.save(ResidualUpsampler().state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(WeightsError, match="never loaded"):
        load_model("default", "64to128", weights=tmp_path)


def test_unknown_names_are_clear():
    with pytest.raises(ValueError, match="unknown stage"):
        model_class("default", "32to64")
    with pytest.raises(ValueError, match="unknown model"):
        model_class("esrgan", "64to128")


DEEP = {"num_features": 8, "num_convs": 12}  # deeper than any shipped stage: rf is per instance


@pytest.mark.parametrize("model, kwargs", [*[(m, {}) for m in FAMILIES], ("default", DEEP)])
@pytest.mark.parametrize("eight", [False, True])
def test_receptive_field_covers_the_real_reach(model, kwargs, eight):
    """The overlap tiles get (``receptive_field``) is at least how far an output pixel
    really looks: the input pixels with a non-zero gradient."""
    family = FAMILIES[model]
    torch.manual_seed(0)  # the layers' own init and the inputs: the same on every run and order
    net = perturbed((family.eight_x if eight else family.two_x)(**kwargs), scale=0.1).eval()
    # Several inputs, and the union of their reaches: with random weights a ReLU network can
    # be dead at one pixel for one input (the gradient there is all zero, as CI once saw).
    x = torch.rand(8, 3, 80, 80, requires_grad=True)
    f = net.factor
    for c in (40 * f, 40 * f + f - 1):  # the first and the last output pixel of input pixel 40
        x.grad = None
        y = net(x)
        y[:, :, c, c].sum().backward()
        rows = (x.grad.abs().sum((0, 1, 3)) > 0).nonzero()[:, 0]
        assert len(rows) > 0, "no input pixel reaches this output: the random net is dead here"
        assert y.shape[2] == 80 * f and 0 < rows.min() and rows.max() < 79  # the reach fits inside
        assert 40 - rows.min() <= net.receptive_field and rows.max() - 40 <= net.receptive_field


def test_every_family_describes_itself():
    for family in FAMILIES.values():
        for cls in (family.two_x, family.eight_x):
            assert cls.factor in (2, 8) and cls.size_multiple >= 1 and cls.receptive_field > 0
            assert cls.receptive_field == cls().receptive_field  # the class value is its defaults'
            assert cls.default_tile > 0 and cls.loss in ("l1", "mse")
            assert set(cls.reduced_dtypes) <= {"bfloat16", "float16"}
            assert len(cls.value_range) == 2
        assert family.eight_x.stage_class is family.two_x
        assert family.label and family.description
        assert 0 <= family.page_strength <= 1 and (family.blend_base or family.page_strength == 1)


def test_a_page_strength_the_page_could_not_run_is_refused():
    from upscaler.models import Family, ResidualUpsampler, ResidualUpsampler8x

    def family(**kw):
        return Family("t", ResidualUpsampler, ResidualUpsampler8x, "t", "t", **kw)

    assert family(blend_base="photo", page_strength=0.9).page_strength == 0.9
    for bad in (dict(blend_base="photo", page_strength=1.5), dict(blend_base="photo", page_strength=0.333),
                dict(page_strength=0.9)):  # the last: no twin to blend with
        with pytest.raises(ValueError, match="page_strength"):
            family(**bad)


def test_stage_table():
    assert list(STAGES) == ["64to128", "128to256", "256to512", "64to512"]
    assert [STAGES[s].factor for s in STAGES] == [2, 2, 2, 8]
    assert TWO_X_STAGES == ("64to128", "128to256", "256to512")


def test_branches_train_and_fold_into_the_plain_network():
    """``train_branches``: 3x3 + 1x1 + identity during training; ``folded()`` is the plain
    ResidualUpsampler that computes the same function, with the plain layout of weights."""
    torch.manual_seed(0)
    net = ResidualUpsampler(num_features=8, num_convs=2, train_branches=True)
    x = torch.rand(2, 3, 12, 10)
    net(x).abs().mean().backward()
    one_by_ones = [c.parametrizations.weight[0].one_by_one for c in net.convs()]
    assert all(p.grad is not None for p in one_by_ones[:-1])  # the branches are trained
    with torch.no_grad():  # give every branch a value, as training would
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    plain = net.folded()
    assert type(plain) is ResidualUpsampler and not parametrize.is_parametrized(plain.body[0])
    assert set(plain.state_dict()) == set(ResidualUpsampler(num_features=8, num_convs=2).state_dict())
    assert torch.allclose(plain(x), net(x), atol=1e-5)
    # the identity branch really is one: with zero kernels a hidden conv passes its input on
    conv = ResidualUpsampler(num_features=4, num_convs=1, train_branches=True).body[2]
    with torch.no_grad():
        conv.parametrizations.weight.original.zero_()
        conv.bias.zero_()
    h = torch.rand(1, 4, 5, 5)
    assert torch.allclose(conv(h), h)
