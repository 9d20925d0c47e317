"""Opening untrusted image files, and the classical resizes shown beside the network.

``open_checked`` is the gate every user-supplied file passes (app and CLI): it reads the
header first, refuses oversized images before a pixel is decoded (decompression bombs),
decodes fully so truncated files fail here, and turns every failure into
``ImageRejected`` with a message meant for the person who sent the file.
"""
import os
import warnings

from PIL import ExifTags, Image, ImageOps

from .atomic import written_whole
from .png import write_png

# Refuse images past this many input pixels before decoding them.
DEFAULT_MAX_PIXELS = 40_000_000


class ImageRejected(ValueError):
    """An input the upscaler will not process, with a message meant for the user."""


def open_checked(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open and fully decode an image file, or raise ImageRejected saying why not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if os.path.getsize(path) == 0:
                raise ImageRejected("the file is empty (0 bytes)")
            img = Image.open(path)
            w, h = img.size  # from the header, before any pixel is decoded
            if w * h > max_pixels:
                raise ImageRejected(f"the image is {w}x{h} ({w * h / 1e6:.1f} megapixels); "
                                    f"the limit is {max_pixels / 1e6:.1f} megapixels")
            img.load()
            getattr(img, "n_frames", 1)  # an animation's frames are counted here: a damaged one fails now
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("refused: the file declares more pixels than it can plausibly hold "
                            "(a decompression bomb)") from None
    except Image.UnidentifiedImageError:
        raise ImageRejected("this file is not an image format that can be read (PNG, JPEG, WebP, GIF, BMP, TIFF...)") from None
    except FileNotFoundError:
        raise ImageRejected("the file does not exist") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as e:  # truncated or corrupt data
        raise ImageRejected(f"the image data is damaged or truncated ({e})") from None
    return img


def check_output_size(size, factor: int, max_output_pixels: int, hint: str = "") -> None:
    """Raise ImageRejected when ``size`` (w, h) upscaled by ``factor`` would pass the limit.
    ``hint``: the way out; by default, shrinking it (and, above 2x, a smaller scale)."""
    w, h = size
    if w * h * factor ** 2 > max_output_pixels:
        hint = hint or ("shrink it first" if factor <= 2 else "shrink it first, or use a smaller scale")
        raise ImageRejected(f"{w}x{h} upscaled x{factor} would be {w * factor}x{h * factor}; results are limited to "
                            f"{max_output_pixels / 1e6:.1f} megapixels ({hint})")


def oriented(img: Image.Image) -> Image.Image:
    """EXIF orientation applied, first frame of an animation; never fails on bad EXIF."""
    if getattr(img, "is_animated", False):
        img.seek(0)
    try:
        if img.getexif().get(ExifTags.Base.Orientation, 1) in (0, 1):
            return img  # nothing to undo: the image itself, not a copy (callers never mutate it)
        return ImageOps.exif_transpose(img)
    except Exception:
        return img


def display_mode(img: Image.Image) -> Image.Image:
    """8-bit RGB or RGBA for showing in a browser (16-bit, CMYK, palette... converted)."""
    if img.mode in ("RGB", "RGBA"):
        return img
    has_alpha = img.mode in ("LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if img.mode.startswith("I"):  # 16/32-bit gray: scale to 8 bits
        import numpy as np

        a = np.asarray(img, dtype=np.float32)
        scale = 257.0 if a.max(initial=0) > 255 else 1.0
        return Image.fromarray((a / scale).clip(0, 255).round().astype("uint8")).convert("RGB")
    return img.convert("RGBA" if has_alpha else "RGB")


def classical_upscale(img: Image.Image, size, method=Image.BILINEAR) -> Image.Image:
    """The baseline beside the network: the same oriented image, resized classically."""
    return display_mode(oriented(img)).resize(size, method)


def to_tensor(img: Image.Image):
    """RGB PIL image -> 3xHxW float32 tensor in [0, 1]."""
    import numpy as np
    import torch

    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


def tensor_to_pil(x) -> Image.Image:
    """1x3xHxW (or 3xHxW) tensor in [0, 1] -> RGB PIL image (rounded, clipped)."""
    x = x[0] if x.dim() == 4 else x
    return Image.fromarray((x.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy())


# ------------------------------------------------------------ the user's file facts
def file_facts(img: Image.Image) -> dict:
    """What an output should keep of the user's file: ICC profile, DPI and EXIF (with the
    orientation reset to 1, because the pixels are written already rotated)."""
    facts = {}
    if img.info.get("icc_profile"):
        facts["icc_profile"] = img.info["icc_profile"]
    if img.info.get("dpi"):
        facts["dpi"] = tuple(float(v) for v in img.info["dpi"])
    try:
        exif = Image.Exif()
        exif.load(img.getexif().tobytes())  # a copy: img's own EXIF still says how to orient it
        if len(exif):
            if ExifTags.Base.Orientation in exif:
                exif[ExifTags.Base.Orientation] = 1
            facts["exif"] = exif.tobytes()
    except Exception:  # unreadable EXIF is dropped, never fatal
        pass
    return facts


# PNG's zlib level: 1 writes a 6.6 MP result ~4x faster than the default 6 for a file
# ~10-15% larger (benchmarks/app_latency.py). Lossless either way.
PNG_COMPRESS_LEVEL = 1
FORMATS = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}


def save_image(img: Image.Image, path, facts: dict | None = None, fmt: str | None = None, quality: int = 95):
    """Write ``img`` to ``path`` (format from ``fmt`` or the suffix; PNG by default) with the
    user's ICC / DPI / EXIF, through a temporary name and a rename (``atomic.written_whole``):
    a reader never sees a half-written file, and a failed write leaves none. Returns the path."""
    from pathlib import Path

    path = Path(path)
    fmt = FORMATS.get((fmt or path.suffix.lstrip(".") or "png").lower().replace("jpg", "jpeg"), "PNG")
    params = dict(facts or {})
    if fmt == "PNG":
        params["compress_level"] = PNG_COMPRESS_LEVEL
    else:
        params["quality"] = quality
        if fmt == "JPEG":
            img = img.convert("RGB") if img.mode not in ("RGB", "L", "CMYK") else img
        elif img.mode not in ("RGB", "RGBA"):
            img = display_mode(img)  # WebP: 8-bit RGB(A) only
        if fmt == "WEBP":
            params.pop("dpi", None)  # not a WebP field
    with written_whole(path) as tmp:
        if fmt == "PNG":
            write_png(img, tmp, **params)  # Pillow's encoder for small or unusual images, a faster one for big ones
        else:
            img.save(tmp, format=fmt, **params)
    return path


def fit_size(size, factor: int, max_output_pixels: int) -> tuple:
    """The largest (w, h) with the aspect of ``size`` whose ``factor`` times fits
    ``max_output_pixels`` (``size`` itself when it fits already)."""
    w, h = size
    if w * h * factor ** 2 <= max_output_pixels:
        return w, h
    s = (max_output_pixels / (w * h * factor ** 2)) ** 0.5
    nw, nh = max(int(w * s), 1), max(int(h * s), 1)
    while nw * nh * factor ** 2 > max_output_pixels and (nw > 1 or nh > 1):  # rounding guard
        nw, nh = max(nw - 1, 1), max(nh - 1, 1)
    return nw, nh


def fit_to_output(img: Image.Image, factor: int, max_output_pixels: int) -> Image.Image:
    """``img`` shrunk (PIL bicubic, aspect kept) just enough that ``factor`` times it fits
    ``max_output_pixels``; the image itself when it fits already."""
    size = fit_size(img.size, factor, max_output_pixels)
    return img if size == img.size else img.resize(size, Image.BICUBIC)
