import io

import numpy as np
import pytest
from helpers import ONE_PER_ARCHITECTURE
import torch
from conftest import CATS_VAL, ROOT, perturbed
from PIL import Image

from upscaler.inference import Upscaler, load_upscaler
from upscaler.models import FAMILIES
from upscaler.stages import STAGES
from upscaler.weights import WeightsError


@pytest.fixture(scope="module")
def photo():
    return Image.open(sorted(CATS_VAL.glob("*.jpg"))[0]).convert("RGB")


@pytest.mark.parametrize("model", ONE_PER_ARCHITECTURE)
@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize("size", [(1, 1), (3, 2), (37, 21), (64, 64)])
def test_any_size_any_stage(tiny_weights, model, stage, size):
    up = load_upscaler(stage, model=model, weights=tiny_weights)
    out = up(Image.new("RGB", size, (120, 60, 30)))
    f = STAGES[stage].factor
    assert out.size == (size[0] * f, size[1] * f) and out.mode == "RGB"


def test_loaded_once(tiny_weights):
    assert load_upscaler("64to128", weights=tiny_weights) is load_upscaler("64to128", weights=str(tiny_weights))


def test_rgba_keeps_alpha(tiny_weights):
    img = Image.new("RGBA", (20, 10), (200, 100, 50, 255))
    img.paste((0, 0, 0, 0), (0, 0, 10, 10))  # left half transparent
    out = load_upscaler("64to128", weights=tiny_weights)(img)
    assert out.mode == "RGBA" and out.size == (40, 20)
    a = np.asarray(out.getchannel("A"))
    assert a[:, :16].max() == 0 and a[:, 24:].min() == 255


def test_grayscale_stays_grayscale(tiny_weights):
    out = load_upscaler("64to128", weights=tiny_weights)(Image.new("L", (9, 7), 90))
    assert out.mode == "L" and out.size == (18, 14)
    out = load_upscaler("64to128", weights=tiny_weights)(Image.new("LA", (9, 7), (90, 128)))
    assert out.mode == "LA"


def test_palette_with_transparency(tiny_weights):
    img = Image.new("P", (10, 10), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.info["transparency"] = 0
    img.paste(0, (0, 0, 5, 10))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    out = load_upscaler("64to128", weights=tiny_weights)(Image.open(buf))
    assert out.mode == "RGBA" and out.size == (20, 20)
    assert np.asarray(out.getchannel("A"))[:, 14:].min() == 255


def test_16_bit_grayscale_keeps_its_depth(tiny_weights):
    a = (np.linspace(0, 65535, 12 * 8).reshape(8, 12)).astype(np.uint16)
    out = load_upscaler("64to128", weights=tiny_weights)(Image.fromarray(a))
    assert out.mode == "I;16" and out.size == (24, 16)
    assert np.asarray(out).max() > 60000  # not squashed into 8 bits


def test_cmyk_becomes_rgb(tiny_weights):
    out = load_upscaler("64to128", weights=tiny_weights)(Image.new("CMYK", (8, 8), (0, 255, 255, 0)))
    assert out.mode == "RGB"
    r, g, b = out.getpixel((8, 8))
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied(tiny_weights):
    img = Image.new("RGB", (30, 10), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    out = load_upscaler("64to128", weights=tiny_weights)(Image.open(buf))
    assert out.size == (20, 60)


def test_animated_gif_uses_the_first_frame(tiny_weights):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    out = load_upscaler("64to128", weights=tiny_weights)(Image.open(buf))
    r, g, _ = out.convert("RGB").getpixel((8, 8))
    assert out.size == (16, 16) and r > 200 and g < 60


@pytest.mark.parametrize("model", ONE_PER_ARCHITECTURE)
@pytest.mark.parametrize("eight", [False, True])
def test_tiled_equals_untiled(model, eight, photo):
    torch.manual_seed(0)  # the initial weights, whatever ran before (perturbed() seeds its own noise)
    net = perturbed(FAMILIES[model].eight_x() if eight else FAMILIES[model].two_x())
    stage = "64to512" if eight else "64to128"
    x = torch.from_numpy(np.asarray(photo.resize((75, 61)), np.float32) / 255).permute(2, 0, 1)[None]
    whole = Upscaler(net, stage, tile=0, dtype="float32").upscale_tensor(x)
    tiled = Upscaler(net, stage, tile=24, dtype="float32").upscale_tensor(x)
    assert tiled.shape == whole.shape == (1, 3, 61 * net.factor, 75 * net.factor)
    assert (tiled - whole).abs().max() < 2e-3
    assert whole.std() > 0.01, whole.std()  # an output that varies with the image, not a constant


def test_tiles_report_progress():
    seen = []
    up = Upscaler(perturbed(FAMILIES["default"].two_x()), "64to128", tile=16)
    up(Image.new("RGB", (40, 20)), progress=lambda i, n: seen.append((i, n)))
    assert seen[-1] == (6, 6) and len(seen) == 6


def test_self_ensemble_is_close_to_the_plain_output(photo):
    net = perturbed(FAMILIES["default"].two_x(), scale=0.005)
    x = torch.from_numpy(np.asarray(photo.resize((40, 30)), np.float32) / 255).permute(2, 0, 1)[None]
    plain = Upscaler(net, "64to128", dtype="float32").upscale_tensor(x)
    ens = Upscaler(net, "64to128", self_ensemble=True, dtype="float32").upscale_tensor(x)
    assert ens.shape == plain.shape
    assert 0 < (ens - plain).abs().mean() < 0.02


def test_bf16_on_cpu_runs(tiny_weights, photo):
    up = load_upscaler("64to128", weights=tiny_weights, dtype="bfloat16")
    assert up.dtype == torch.bfloat16
    ref = load_upscaler("64to128", weights=tiny_weights, dtype="float32")
    small = photo.resize((48, 40))
    diff = np.abs(np.asarray(up(small), np.float32) - np.asarray(ref(small), np.float32))
    assert diff.mean() < 2


@pytest.mark.parametrize("model", ONE_PER_ARCHITECTURE)
def test_reduced_precision_casts_a_copy_and_matches_autocast(model):
    """bf16 runs on a copy of the network with its weights cast once (the caller's network
    keeps float32), and gives what autocast gives on the float32 network. The default
    network keeps its image path in float32: its stages add bf16 detail to a float32 image."""
    net = perturbed(FAMILIES[model].eight_x())
    up = Upscaler(net, "64to512", device="cpu", dtype="bfloat16", tile=0)  # the reference below is CPU autocast
    assert next(net.parameters()).dtype == torch.float32
    assert next(up.net.parameters()).dtype == torch.bfloat16
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        lo, hi = net.value_range
        autocast = (net(x * (hi - lo) + lo).float() - lo) / (hi - lo)
    diff = (up.upscale_tensor(x) - autocast.clamp(0, 1)).abs()
    if model == "default":
        with torch.no_grad():
            assert up.net(x).dtype == torch.float32
        assert diff.max() < 0.5 / 255  # a different conv layout rounds bf16 a little differently
    else:  # the seed's BatchNorm and Tanh run in bf16 too, where autocast keeps some in float32
        assert diff.mean() < 2 / 255

@pytest.mark.parametrize("model", list(FAMILIES))
def test_default_dtype_follows_the_device_and_the_network(tiny_weights, model):
    """Reduced precision only where the network lists it as measured-safe and the device
    runs it fast (CPU: AMX; CUDA: bf16 where supported, else fp16), in eager torch (the
    graph runtimes' rule: tests/test_runtimes.py)."""
    from upscaler.runtimes import cpu_has_amx

    up = load_upscaler("64to128", model=model, weights=tiny_weights, backend="torch")
    safe = FAMILIES[model].two_x.reduced_dtypes
    if up.device.type == "cuda":
        bf16 = "bfloat16" in safe and torch.cuda.is_bf16_supported()
        want = torch.bfloat16 if bf16 else torch.float16 if "float16" in safe else torch.float32
    else:
        want = torch.bfloat16 if "bfloat16" in safe and cpu_has_amx() else torch.float32
    assert up.dtype == want
    assert load_upscaler("64to128", model=model, weights=tiny_weights, dtype="float32",
                         backend="torch").dtype == torch.float32


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match="no model.safetensors"):
        load_upscaler("64to128", weights=tmp_path)


def test_unknown_stage():
    with pytest.raises(ValueError, match="unknown stage"):
        load_upscaler("64to1024")


EXAMPLE = ROOT / "examples" / "cat.4093.jpg"


def test_denoise_strength_blends_the_photo_model_with_the_clean_one():
    img = Image.open(EXAMPLE).crop((0, 0, 64, 48))
    clean = np.asarray(load_upscaler("64to128", model="default", dtype="float32")(img)).astype(int)
    blend0 = np.asarray(load_upscaler("64to128", model="photo", dtype="float32", denoise_strength=0)(img)).astype(int)
    photo = np.asarray(load_upscaler("64to128", model="photo", dtype="float32")(img)).astype(int)
    assert np.abs(blend0 - clean).max() <= 1 and np.abs(photo - clean).mean() > 0.1
    with pytest.raises(ValueError, match="clean twin"):
        load_upscaler("64to128", model="default", denoise_strength=0.5)


def test_out_of_memory_halves_the_tile_and_retries(monkeypatch):
    """A device out of memory for tiles over 64 px (injected: this runs on the CPU) gets the
    same result in smaller tiles; one that never has memory gives a clear MemoryError."""
    up = Upscaler(FAMILIES["default"].build("64to128"), "64to128", device="cpu", dtype="float32", tile=256)
    torch.manual_seed(0)
    for p in up.net.parameters():
        p.data.normal_(0, 0.05)
    x = torch.rand(1, 3, 150, 200)
    want = up.upscale_tensor(x)
    real = up._forward_ensemble
    sizes = []

    def tight(t):
        sizes.append(max(t.shape[2:]))
        if max(t.shape[2:]) > 64 + 2 * up.tile_pad:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real(t)

    monkeypatch.setattr(up, "_forward_ensemble", tight)
    with pytest.warns(RuntimeWarning, match="retrying with"):
        got = up.upscale_tensor(x)
    assert torch.allclose(got, want, atol=1e-5) and max(sizes) > 64 + 2 * up.tile_pad
    monkeypatch.setattr(up, "_forward_ensemble", lambda t: (_ for _ in ()).throw(torch.OutOfMemoryError("oom")))
    with pytest.raises(MemoryError, match="out of memory on cpu even in tiles of"), pytest.warns(RuntimeWarning):
        up.upscale_tensor(x)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_callers_network_is_left_alone(dtype):
    """Upscaler works on a copy: eval(), the dtype, the device and channels-last never reach
    the module it was given, even when the dtype already matches."""
    net = perturbed(FAMILIES["default"].two_x(), seed=3).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    up = Upscaler(net, "64to128", dtype=dtype, channels_last=True)
    assert up.net is not net
    assert net.training  # still in the mode the caller left it
    for name, p in net.named_parameters():
        assert p.dtype == torch.float32 and p.device.type == "cpu", name
        assert p.is_contiguous(), name  # not channels-last
        assert torch.equal(p, before[name])
    up(Image.new("RGB", (9, 7)))
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_a_32_bit_integer_image_is_read_as_16_bit():
    """Mode "I" is how PIL opens many 16-bit files: a flat image of 200 stays 200 (out of
    65535), whatever its values; the scale is never guessed from the data."""
    up = load_upscaler("64to128", dtype="float32")  # the shipped network keeps a flat image flat
    dark = Image.fromarray(np.full((8, 12), 200, np.int32), mode="I")
    out = up(dark)
    assert out.mode == "I;16" and out.size == (24, 16)
    assert abs(np.asarray(out).astype(float).mean() - 200) < 20  # the old guess gave about 51400
    bright = Image.fromarray(np.full((8, 12), 50000, np.int32), mode="I")
    assert abs(np.asarray(up(bright)).astype(float).mean() - 50000) < 500


def test_one_rule_for_blend_strengths():
    """0.37 runs as 0.37 everywhere (it was 0.35 in the app); what runs is what is reported."""
    from upscaler.models import blend_strength, strength_tag

    assert blend_strength(0.37) == 0.37 and blend_strength("0.374") == 0.37 and blend_strength(1) == 1.0
    assert strength_tag(0.3) == "d0.3" and strength_tag(0) == "d0"
    for bad in (-0.1, 1.01, float("nan"), "x", None):
        with pytest.raises(ValueError, match="denoise strength"):
            blend_strength(bad)
    up = load_upscaler("64to128", model="photo", denoise_strength=0.374)
    assert up.model == "photo (denoise strength 0.37)"
    assert up is load_upscaler("64to128", model="photo", denoise_strength=0.37)  # one cached blend
