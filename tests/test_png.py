"""The fast PNG writer must be lossless and keep what Pillow's writer keeps."""
import io
import zlib

import numpy as np
import pytest
from PIL import Image

from upscaler import png
from upscaler.images import save_image


def noisy(mode, size=(300, 260), seed=0):
    """Smooth rows plus noise: like a photo, and every byte value appears."""
    rng = np.random.default_rng(seed)
    bands = len(mode)
    ramp = np.linspace(0, 255, size[0])[None, :, None] + np.linspace(0, 60, size[1])[:, None, None]
    a = (ramp + rng.normal(0, 20, (size[1], size[0], bands))) % 256
    a = a.astype(np.uint8)
    return Image.fromarray(a[..., 0] if bands == 1 else a, mode)


def roundtrip(img, **params):
    buf = io.BytesIO()
    png.write_png(img, buf, **params)
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out, buf.getvalue()


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize("library", ["default", "stdlib"])
def test_pixels_are_exact(mode, library, monkeypatch):
    if library == "stdlib":
        monkeypatch.setattr(png, "deflate_lib", zlib)
    img = noisy(mode)
    assert img.width * img.height >= png.MIN_PIXELS  # the fast path, not Pillow's
    out, data = roundtrip(img)
    assert out.mode == mode and out.size == img.size
    assert np.array_equal(np.asarray(out), np.asarray(img))
    assert data.count(b"IDAT") >= 1 and data.endswith(b"IEND\xaeB`\x82")


def test_metadata_is_kept():
    img = noisy("RGB")
    exif = Image.Exif()
    exif[0x010F] = "a camera maker"  # Make
    icc = b"\x00" * 128 + b"not a real profile but bytes to carry"
    out, _ = roundtrip(img, icc_profile=icc, dpi=(300, 300), exif=exif.tobytes(), compress_level=1)
    assert out.info["icc_profile"] == icc
    assert tuple(round(d) for d in out.info["dpi"]) == (300, 300)
    assert out.getexif()[0x010F] == "a camera maker"
    assert np.array_equal(np.asarray(out), np.asarray(img))


def test_many_strips_and_one_strip_join_into_one_stream():
    data = np.random.default_rng(1).integers(0, 256, 100_003, dtype=np.uint8).tobytes()
    for strips in (1, 3, 7):
        assert zlib.decompress(png.deflate_parallel(memoryview(data), strips)) == data


@pytest.mark.parametrize("mode", ["I;16", "P", "1"])
def test_other_modes_and_small_images_go_to_pillow(mode, monkeypatch):
    calls = []
    monkeypatch.setattr(png, "deflate_parallel", lambda *a, **k: calls.append(1))
    gray = noisy("L")
    img = gray.convert(mode) if mode != "I;16" else Image.fromarray(np.asarray(gray, dtype=np.uint16) * 257)
    out, _ = roundtrip(img)
    assert np.array_equal(np.asarray(out), np.asarray(img))
    roundtrip(noisy("RGB", size=(40, 30)))
    assert not calls


def test_save_image_uses_it_atomically(tmp_path):
    img = noisy("RGBA")
    path = save_image(img, tmp_path / "result.png", {"dpi": (96, 96)})
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]  # no .part left behind
    out = Image.open(path)
    assert np.array_equal(np.asarray(out), np.asarray(img)) and round(out.info["dpi"][0]) == 96
