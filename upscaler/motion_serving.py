"""What one demo request for an animation or a video does, without any UI (the stills'
counterpart is ``serving.py``): the file through ``motion.upscale_motion``, its first frame
bilinear | learned for the page, and the download named after the upload.

``Cancels`` lets a page's Cancel button reach a job that runs on the server's torch thread:
the job asks between frames whether its session cancelled it.
"""
import os
import threading
from pathlib import Path

from PIL import Image

from .images import ImageRejected, classical_upscale, open_checked, save_image
from .motion import MotionLimits, kind_of, output_suffix, upscale_motion
from .serving import download_name

ACCEPTED = [".gif", ".webp", ".png", ".apng", ".mp4", ".webm", ".mov", ".m4v"]


def limits_from_env(max_frame_output_pixels: int) -> MotionLimits:
    """The demo's limits: a job on a free 2-core Space stays under about a minute
    (docs/motion.md measures the speed they come from); each can be set by a variable."""
    return MotionLimits(max_frames=int(os.environ.get("UPSCALER_MAX_FRAMES", 600)),
                        max_seconds=float(os.environ.get("UPSCALER_MAX_SECONDS", 30)),
                        max_frame_output_pixels=max_frame_output_pixels,
                        max_output_pixels=int(os.environ.get("UPSCALER_MAX_MOTION_OUTPUT_PIXELS", 200_000_000)))


class Cancels:
    """Cancel flags by session: ``start(key)`` before a job, ``cancel(key)`` from another
    request, ``cancelled(key)`` between frames."""

    def __init__(self):
        self._flags, self._lock = {}, threading.Lock()

    def start(self, key) -> threading.Event:
        with self._lock:
            self._flags[key] = flag = threading.Event()
        return flag

    def cancel(self, key) -> bool:
        with self._lock:
            flag = self._flags.get(key)
        if flag is not None:
            flag.set()
        return flag is not None

    def finish(self, key):
        with self._lock:
            self._flags.pop(key, None)


def upscale_motion_upload(path, upscalers, scale: int, model: str, out_dir, limits: MotionLimits,
                          strength: float | None = None, video_format: str = "mp4", first_seconds=None,
                          max_input_pixels: int | None = None, progress=None, cancel=None):
    """-> (download path, first frame bilinear path, first frame learned path, MotionResult).
    Raises ImageRejected (a refusal for the person) or MotionCancelled."""
    out_dir = Path(out_dir)
    kind = kind_of(path)
    if kind == "still":
        open_checked(path, max_input_pixels or 10 ** 9)  # an unreadable file is refused with its own reason
        raise ImageRejected("this is a still image: use the Upscale tab for it")
    suffix = output_suffix(path, kind, None, video_format)
    target = out_dir / download_name(path, scale, model, strength, suffix=suffix)
    result = upscale_motion(path, upscalers, target, limits=limits, first_seconds=first_seconds,
                            max_input_pixels=max_input_pixels, progress=progress, cancel=cancel)
    first_in, first_out = result.first_frame
    bilinear = save_image(classical_upscale(first_in.convert("RGB"), first_out.size, Image.BILINEAR),
                          out_dir / "first-frame-bilinear.png")
    learned = save_image(first_out.convert("RGB"), out_dir / "first-frame-learned.png")
    return str(result.path), str(bilinear), str(learned), result
