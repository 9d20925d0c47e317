import numpy as np
import pytest
from conftest import SHARED_DATA
from PIL import Image

from upscaler.metrics import checkerboard, crispness, grid_energy, psnr_ssim, psnr_y, rgb_to_y, ssim_y


def test_y_is_bt601_studio_range():
    assert rgb_to_y(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16)
    assert rgb_to_y(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235)


def test_identical_images():
    img = Image.effect_noise((64, 64), 40).convert("RGB")
    assert psnr_y(img, img) == float("inf")
    assert ssim_y(img, img) == pytest.approx(1.0)


def test_known_psnr():
    a = np.full((32, 32, 3), 100, np.uint8)
    b = a.copy()
    b[..., :] = 110  # every Y differs by 10 * 219/255
    expected = 10 * np.log10(255 ** 2 / (10 * 219 / 255) ** 2)
    assert psnr_y(a, b) == pytest.approx(expected)


def test_border_crop_ignores_the_edges():
    a = np.full((40, 40, 3), 128, np.uint8)
    b = a.copy()
    b[:2] = 0
    assert psnr_y(a, b, border=2) == float("inf")
    assert psnr_y(a, b, border=1) < 40


def test_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match="size mismatch"):
        psnr_y(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))


@pytest.mark.parametrize("scale,published", [(2, 33.66), (4, 28.42), (8, 24.40)])
def test_bicubic_on_set5_reproduces_the_published_row(scale, published):
    scores = []
    for f in sorted((SHARED_DATA / "benchmarks" / "Set5").glob("*.png")):
        hr = Image.open(f).convert("RGB")
        hr = hr.crop((0, 0, hr.width - hr.width % scale, hr.height - hr.height % scale))
        lr = hr.resize((hr.width // scale, hr.height // scale), Image.BICUBIC)
        scores.append(psnr_ssim(lr.resize(hr.size, Image.BICUBIC), hr, scale)[0])
    assert np.mean(scores) == pytest.approx(published, abs=0.05)


def test_crispness_is_fine_detail_against_the_truths():
    from PIL import ImageFilter


    rng = np.random.default_rng(0)
    truth = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert crispness(truth, truth) == pytest.approx(1.0)
    blurred = truth.filter(ImageFilter.GaussianBlur(1.5))
    assert crispness(blurred, truth) < 0.2
    flat = Image.new("RGB", (64, 64), (90, 90, 90))
    assert crispness(flat, truth) == 0 and crispness(truth, flat) > 1  # no division by zero either way


def test_checkerboard_finds_a_grid_the_photo_does_not_have():
    x = np.arange(64)
    smooth = (128 + 40 * np.sin(x / 5))[None, :, None] * np.ones((64, 1, 3))
    truth = Image.fromarray(smooth.astype(np.uint8))
    assert checkerboard(truth, truth) == pytest.approx(1.0)
    grid = smooth + 8 * ((-1.0) ** (x[:, None] + x[None, :]))[..., None]  # a faint 1-px checkerboard
    assert checkerboard(Image.fromarray(np.clip(grid, 0, 255).astype(np.uint8)), truth) > 10
    stripes = smooth + 8 * ((-1.0) ** x)[None, :, None]  # every other column
    assert checkerboard(Image.fromarray(np.clip(stripes, 0, 255).astype(np.uint8)), truth) > 10
    # the same grid after a second 2x stage: 2x2 blocks, period 4
    blocks = smooth + 8 * ((-1.0) ** (x[:, None] // 2 + x[None, :] // 2))[..., None]
    assert checkerboard(Image.fromarray(np.clip(blocks, 0, 255).astype(np.uint8)), truth) > 10
    # detail that is no grid keeps it near 1: the same fine texture, moved by 3 pixels
    from PIL import ImageFilter

    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    texture = Image.fromarray(noise).filter(ImageFilter.GaussianBlur(0.8))
    assert 0.7 < checkerboard(texture.crop((3, 3, 67, 67)), texture.crop((0, 0, 64, 64))) < 1.4
    with pytest.raises(ValueError, match="at least 16x16"):
        grid_energy(Image.new("RGB", (8, 8)), 2)
