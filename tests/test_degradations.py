"""The real-photo degradations (upscaler/degradations.py) and network blending."""
import io

import numpy as np
import pytest
import torch
from conftest import CATS_VAL
from PIL import Image

from upscaler import data, resize
from upscaler.conditions import CONDITIONS, degraded_input
from upscaler.degradations import PHOTO, Degradations, degrade, jpeg
from upscaler.metrics import psnr_y
from upscaler.models import ResidualUpsampler, blend_networks
from upscaler.protocol import GROUND_TRUTH_SIZE, centre_square
from upscaler.stages import STAGES


def _psnr_rgb(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255 ** 2 / mse)


@pytest.fixture(scope="module")
def crops():
    """24 cats/val crops of 121 x 101 px (odd sizes: the encoder pads to whole 16 px blocks)."""
    out = []
    for f in sorted(CATS_VAL.glob("*.jpg"))[:24]:
        img = Image.open(f).convert("RGB")
        w, h = img.size
        out.append(np.asarray(img.crop((w // 2 - 60, h // 2 - 50, w // 2 + 61, h // 2 + 51))))
    return out


@pytest.mark.parametrize("quality", [30, 50, 75, 95])
def test_torch_jpeg_is_as_harsh_as_pils(crops, quality):
    """Training's JPEG (torch) loses as much as PIL's libjpeg at the same quality: the mean
    PSNR against the original is within 0.2 dB of PIL's."""
    ours, pils = [], []
    for a in crops:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "JPEG", quality=quality)
        pil = np.asarray(Image.open(buf).convert("RGB"))
        x = torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float()
        mine = jpeg(x, torch.tensor([quality]))[0].permute(1, 2, 0).numpy()
        assert mine.shape == a.shape and mine.min() >= 0 and mine.max() <= 255 and np.all(mine == mine.round())
        ours.append(_psnr_rgb(a, mine))
        pils.append(_psnr_rgb(a, pil))
    assert abs(np.mean(ours) - np.mean(pils)) < 0.2, (np.mean(ours), np.mean(pils))


def test_per_sample_qualities_in_one_batch(crops):
    x = torch.stack([torch.from_numpy(a.copy()).permute(2, 0, 1).float() for a in crops[:2]])
    both = jpeg(torch.cat([x[:1], x[:1]]), torch.tensor([30, 95]))
    assert _psnr_rgb(x[0].numpy(), both[0].numpy()) < _psnr_rgb(x[0].numpy(), both[1].numpy()) - 5


def _hr(n=8, size=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    # smooth random images with some edges, 0..255 integers
    x = torch.rand(n, 3, size // 8, size // 8, generator=g) * 255
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic").clamp(0, 255).round()


def test_degrade_is_seeded_sized_and_8_bit():
    hr = _hr()
    a = degrade(hr, 2, torch.Generator().manual_seed(5))
    b = degrade(hr, 2, torch.Generator().manual_seed(5))
    c = degrade(hr, 2, torch.Generator().manual_seed(6))
    assert a.shape == (8, 3, 64, 64) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 255 and torch.equal(a, a.round())
    assert degrade(_hr(size=256), 8, torch.Generator().manual_seed(5)).shape == (8, 3, 32, 32)


def test_clean_samples_are_exactly_the_bicubic_pairs():
    hr = _hr()
    all_clean = Degradations(clean_fraction=1.0)
    out = degrade(hr, 2, torch.Generator().manual_seed(1), all_clean)
    assert torch.equal(out, resize.pil_bicubic(hr.clone(), (64, 64)))
    # in the photo mix, about 30% stay clean and the rest differ
    hr = _hr(n=64)
    out = degrade(hr, 2, torch.Generator().manual_seed(2), PHOTO)
    same = [(torch.equal(o, r)) for o, r in zip(out, resize.pil_bicubic(hr.clone(), (64, 64)))]
    assert 0.1 < np.mean(same) < 0.5, np.mean(same)


def test_pairs_with_degradations_keep_the_same_targets_and_resume_exactly(decoded_photos):
    stage = STAGES["64to128"]
    clean = data.PairMaker(decoded_photos, stage, 128, 4, "cpu", seed=3)
    photo = data.PairMaker(decoded_photos, stage, 128, 4, "cpu", seed=3, degradations=PHOTO)
    lr_c, hr_c = clean.batch(7)
    lr_p, hr_p = photo.batch(7)
    assert torch.equal(hr_c, hr_p) and lr_c.shape == lr_p.shape and not torch.equal(lr_c, lr_p)
    again = data.PairMaker(decoded_photos, stage, 128, 4, "cpu", seed=3, degradations=PHOTO).batch(7)
    assert torch.equal(again[0], lr_p)  # keyed by the step: a resumed run sees the same inputs


@pytest.fixture(scope="module")
def decoded_photos(tiny_dataset, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return data.DecodedImages.build(data.load_images(data_dir=tiny_dataset, cache_dir=cache), cache)


def test_the_benchmark_conditions_get_harsher_in_order():
    """The real-photo benchmark's inputs: seeded, 64 px, and each harsher condition further
    from the clean photo than a milder one."""
    photos = [Image.open(f).convert("RGB") for f in sorted(CATS_VAL.glob("*.jpg"))[:6]]
    truths = [centre_square(p).resize((GROUND_TRUTH_SIZE,) * 2, Image.BICUBIC) for p in photos]
    score = {}
    for cond in CONDITIONS:
        inputs = [degraded_input(t, 64, cond, seed=i) for i, t in enumerate(truths)]
        assert all(i.size == (64, 64) for i in inputs)
        assert degraded_input(truths[0], 64, cond, seed=0).tobytes() == inputs[0].tobytes()
        clean = [t.resize((64, 64), Image.BICUBIC) for t in truths]
        score[cond] = np.mean([psnr_y(i, c) for i, c in zip(inputs, clean)])
    assert score["clean"] > 60  # PIL's bicubic and ours agree
    assert score["jpeg90"] > score["jpeg75"] > score["jpeg50"] > score["jpeg30"]
    assert score["blur1+jpeg75"] < score["jpeg75"] and score["noise10+jpeg75"] < score["jpeg75"]
    with pytest.raises(ValueError, match="unknown condition"):
        degraded_input(truths[0], 64, "jpeg12")


def test_blending_two_networks():
    torch.manual_seed(0)
    a, b = ResidualUpsampler(num_features=8, num_convs=1), ResidualUpsampler(num_features=8, num_convs=1)
    for p in b.parameters():
        p.data.normal_()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(blend_networks(a, b, 0.0)(x), a(x))
        assert torch.allclose(blend_networks(a, b, 1.0)(x), b(x))
        half = blend_networks(a, b, 0.5)
        for pa, pb, ph in zip(a.parameters(), b.parameters(), half.parameters()):
            assert torch.allclose(ph, (pa + pb) / 2)
    assert next(a.parameters()) is not next(half.parameters())  # a copy: the inputs are untouched
    with pytest.raises(ValueError, match="different layouts"):
        blend_networks(a, ResidualUpsampler(num_features=8, num_convs=2), 0.5)
    with pytest.raises(ValueError, match="from 0 to 1"):
        blend_networks(a, b, 1.5)
