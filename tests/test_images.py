"""Opening untrusted files, the output limit, and keeping the user's file facts."""
import io

import numpy as np
import pytest
from PIL import Image

from upscaler import images


def test_open_checked_refuses_with_readable_messages(tmp_path):
    (tmp_path / "t.png").write_text("hello")
    with pytest.raises(images.ImageRejected, match="not an image format"):
        images.open_checked(tmp_path / "t.png")
    with pytest.raises(images.ImageRejected, match="does not exist"):
        images.open_checked(tmp_path / "missing.png")
    Image.new("RGB", (100, 100)).save(tmp_path / "ok.png")
    with pytest.raises(images.ImageRejected, match="the limit is 0.0 megapixels"):
        images.open_checked(tmp_path / "ok.png", max_pixels=10)
    assert images.open_checked(tmp_path / "ok.png").size == (100, 100)


def test_output_limit_and_fit():
    images.check_output_size((100, 100), 8, 640_000)  # exactly at the limit: fine
    with pytest.raises(images.ImageRejected, match="800x808; results are limited to 0.6 megapixels"):
        images.check_output_size((100, 101), 8, 640_000)
    assert images.fit_size((800, 600), 8, 4096 * 4096) == (591, 443)
    assert images.fit_size((100, 100), 2, 10**6) == (100, 100)
    img = Image.new("RGB", (800, 600))
    fitted = images.fit_to_output(img, 8, 4096 * 4096)
    assert fitted.size == (591, 443) and fitted.size[0] * fitted.size[1] * 64 <= 4096 * 4096
    assert images.fit_to_output(fitted, 8, 4096 * 4096) is fitted


def test_tensor_round_trip():
    img = Image.effect_noise((13, 7), 50).convert("RGB")
    t = images.to_tensor(img)
    assert t.shape == (3, 7, 13) and t.dtype.is_floating_point and 0 <= t.min() and t.max() <= 1
    assert images.tensor_to_pil(t[None]).tobytes() == img.tobytes()


@pytest.mark.parametrize("fmt,suffix", [("png", ".png"), ("webp", ".webp"), ("jpeg", ".jpg")])
def test_save_image_keeps_icc_dpi_exif_and_resets_orientation(tmp_path, fmt, suffix):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 8
    exif[0x010F] = "TestCam"
    buf = io.BytesIO()
    Image.new("RGB", (20, 10), (200, 50, 50)).save(buf, "JPEG", exif=exif.tobytes(), dpi=(240, 240), icc_profile=icc)
    src = Image.open(buf)
    facts = images.file_facts(src)
    assert images.oriented(src).size == (10, 20)  # reading the facts did not change the orientation
    out_path = images.save_image(images.oriented(src), tmp_path / f"out{suffix}", facts=facts, fmt=fmt)
    out = Image.open(out_path)
    assert out.format == {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}[fmt] and out.size == (10, 20)
    assert out.info.get("icc_profile") == icc
    assert out.getexif()[0x0112] == 1 and out.getexif()[0x010F] == "TestCam"
    if fmt != "webp":  # WebP has no DPI field
        assert round(out.info["dpi"][0]) == 240
    assert not list(tmp_path.glob("*.part"))


def test_sixteen_bit_stays_sixteen_bit_in_png(tmp_path):
    a = (np.arange(64, dtype=np.uint16) * 1000).reshape(8, 8)
    path = images.save_image(Image.fromarray(a), tmp_path / "deep.png")
    assert np.array_equal(np.asarray(Image.open(path)), a)


def test_display_mode():
    assert images.display_mode(Image.new("I;16", (2, 2), 65535)).getpixel((0, 0)) == (255, 255, 255)
    assert images.display_mode(Image.new("CMYK", (2, 2))).mode == "RGB"
    assert images.display_mode(Image.new("LA", (2, 2))).mode == "RGBA"


def test_an_empty_file_is_called_empty(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(images.ImageRejected, match="the file is empty"):
        images.open_checked(tmp_path / "empty.png")


def test_the_way_out_of_the_output_limit_fits_the_scale():
    with pytest.raises(images.ImageRejected, match=r"\(shrink it first\)$"):
        images.check_output_size((3000, 2000), 2, 4096 ** 2)
    with pytest.raises(images.ImageRejected, match="shrink it first, or use a smaller scale"):
        images.check_output_size((1000, 1000), 8, 4096 ** 2)
