"""One pipeline: which networks make a scale, how they are chained, and how a file is upscaled.

* ``Pipeline``: a scale (2, 4, 8) as the stages that make it. 2x is one 2x stage, 4x
  chains two, 8x is the fine-tuned 8x stack. The app, the command line, the benchmarks and
  the tests all ask this table; nobody writes it out again.
* ``chain``: methods (``PIL image -> PIL image``) applied one after another.
* ``upscale_file``: the one way a file is upscaled, for the command line and the demo's
  server: open it through the gate for untrusted files (``images.open_checked``), read
  its ICC profile, DPI and EXIF, apply its orientation, shrink it to the output limit if
  asked (or refuse it), run the networks, and write the result whole (``atomic``).
"""
import dataclasses
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from .images import ImageRejected, check_output_size, file_facts, fit_to_output, open_checked, oriented, save_image
from .stages import STACK_STAGE, TWO_X_STAGES, get_stage

SCALES = (2, 4, 8)
# Which 2x stage serves 2x, and which two chain for 4x: the best by measurement on
# Set5/Set14/BSD100 (benchmarks/quality.py, README "Quality").
DEFAULT_X2_STAGE = "64to128"
X4_STAGES = ("64to128", "128to256")


def parse_scale(scale) -> int:
    """2, "2", "2x" or "2X" -> 2; anything else is refused with a message for the person."""
    try:
        value = int(str(scale).strip().lower().removesuffix("x"))
    except ValueError:
        value = None
    if value not in SCALES:
        raise ImageRejected(f"scale must be 2, 4 or 8 (got {scale!r})")
    return value


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """The stages a scale runs through, in order (stage names)."""

    scale: int
    stages: tuple

    @classmethod
    def for_scale(cls, scale, x2_stage: str = DEFAULT_X2_STAGE) -> "Pipeline":
        scale = parse_scale(scale)
        if get_stage(x2_stage).name not in TWO_X_STAGES:
            raise ImageRejected(f"the 2x network must be one of {', '.join(TWO_X_STAGES)}")
        return cls(scale, {2: (x2_stage,), 4: X4_STAGES, 8: (STACK_STAGE,)}[scale])

    @classmethod
    def for_stage(cls, stage) -> "Pipeline":
        st = get_stage(stage)
        return cls(st.factor, (st.name,))


def chain(*methods, progress=None):
    """Methods (``img -> img``, or ``img, progress=... -> img`` such as an ``Upscaler``)
    applied one after another, as one method. ``progress(fraction)``, when given, hears
    the whole chain's progress from 0 to 1; each method then gets its part as
    ``progress(done, total)``."""
    def run(img):
        for i, method in enumerate(methods):
            if progress is None:
                img = method(img)
            else:
                img = method(img, progress=lambda k, n, i=i: progress((i + k / n) / len(methods)))
        return img
    return run


def factor_of(upscalers) -> int:
    """The scale of networks applied one after another."""
    return math.prod(up.factor for up in upscalers)


@dataclasses.dataclass
class Upscaled:
    """What ``upscale_file`` did: the input as it was upscaled (oriented, perhaps shrunk),
    the result, where it was written, and the time the networks took."""

    image: Image.Image
    result: Image.Image
    path: Path
    network_seconds: float
    shrunk_from: tuple | None = None
    beside: object = None  # what the ``beside`` callback returned
    frames: int = 1  # an animation's frame count: only its first frame was upscaled here


def upscale_file(path, upscalers, out_path, *, max_input_pixels: int, max_output_pixels: int,
                 shrink_to_fit: bool = False, fmt: str | None = None, quality: int = 95, progress=None,
                 limit_hint: str = "", beside=None) -> Upscaled:
    """Upscale the image file ``path`` through ``upscalers`` (applied in order) into
    ``out_path``, keeping the file's ICC profile, DPI and EXIF. Raises ``ImageRejected``
    with a message for the person (unreadable, too large, over the output limit).

    ``beside(image, result)``, when given, runs on a second thread while the result is
    written (the server writes its bilinear image then; both encoders release the GIL)."""
    original = open_checked(path, max_input_pixels)
    frames = getattr(original, "n_frames", 1)  # an animation: its first frame (motion.py does every frame)
    facts = file_facts(original)  # ICC, DPI, EXIF: read before orientation is applied
    img = oriented(original)
    factor, shrunk_from = factor_of(upscalers), None
    if shrink_to_fit:
        fitted = fit_to_output(img, factor, max_output_pixels)
        if fitted is not img:
            shrunk_from, img = img.size, fitted
    check_output_size(img.size, factor, max_output_pixels, hint=limit_hint)
    started = time.perf_counter()
    result = chain(*upscalers, progress=progress)(img)
    network_seconds = time.perf_counter() - started
    with ThreadPoolExecutor(1) as pool:
        extra = pool.submit(beside, img, result) if beside else None
        written = save_image(result, out_path, facts, fmt=fmt, quality=quality)
        extra = extra.result() if extra else None
    return Upscaled(img, result, Path(written), network_seconds, shrunk_from, extra, frames)
