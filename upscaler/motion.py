"""One streaming engine for motion: animated images (GIF, WebP, APNG) and videos (MP4, WebM,
MOV), frame by frame through the same ``Upscaler`` chain a still goes through.

    from upscaler import load_upscaler
    from upscaler.motion import upscale_motion
    ups = [load_upscaler("64to128", model="photo")]
    result = upscale_motion("clip.mp4", ups, "clip-x2.mp4")     # or "anim.gif" -> "anim-x2.gif"

Frames are decoded, upscaled in small batches (tiles where a frame is large, as for a
still) and encoded as they come, so a video's memory is a few frames whatever its length
(an animation's frames are kept until Pillow writes them: ``animation.py``). Progress is
reported per frame; ``cancel()`` is asked between batches, and a cancelled or failed job
leaves no file under the final name (``atomic.written_whole``).

``upscaled_frames`` is the engine alone, for people who bring their own frames: PIL images
in, upscaled PIL images out, in order.
"""
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import animation, video
from .atomic import written_whole
from .images import ImageRejected, open_checked
from .pipeline import chain, factor_of

BATCH = 4  # frames per network call: a batch amortises the per-call cost without holding many frames


class MotionCancelled(Exception):
    """The job was cancelled between frames; nothing was written under the final name."""


@dataclasses.dataclass
class MotionLimits:
    """What one job may take. Over a limit, the message says the way out (fewer seconds,
    a smaller frame); ``None`` is no limit."""

    max_frames: int | None = None
    max_seconds: float | None = None
    max_frame_output_pixels: int | None = None
    max_output_pixels: int | None = None  # all frames together


@dataclasses.dataclass
class MotionResult:
    path: Path
    kind: str                 # "animation" or "video"
    frames: int
    input_size: tuple
    output_size: tuple
    seconds: float            # the clip's length
    network_seconds: float    # the networks alone
    total_seconds: float
    first_frame: tuple = None  # (input frame, upscaled frame) as PIL images: what the demo shows
    notes: list = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        (w, h), (W, H) = self.input_size, self.output_size
        text = (f"Done: {self.frames} frames, {w}x{h} -> {W}x{H} ({self.seconds:.2f} s of {self.kind}), "
                f"network {self.network_seconds:.1f} s, total {self.total_seconds:.1f} s.")
        return " ".join([text, *self.notes])


def kind_of(path) -> str:
    """"video", "animation" or "still", by looking at the file (a .png may be an APNG)."""
    path = Path(path)
    if path.suffix.lower() in video.VIDEO_SUFFIXES:
        return "video"
    try:
        with Image.open(path) as img:
            return "animation" if animation.is_animated(img) else "still"
    except Exception:
        return "still"  # the still path refuses it with the usual message


def output_suffix(path, kind: str, fmt: str | None = None, video_format: str = "mp4") -> str:
    """The output's suffix: a video's format; an animation's own format unless ``fmt``
    names another animated one (gif, webp, png = APNG)."""
    if kind == "video":
        return f".{video_format}"
    if fmt in ("gif", "webp", "png"):
        return f".{fmt}"
    own = Path(path).suffix.lower()
    return own if own in animation.FORMATS and own != ".apng" else ".png"


# ------------------------------------------------------------------------- the engine
class Stopwatch:
    """Seconds spent in the networks alone (not decoding or encoding), added up."""

    def __init__(self):
        self.seconds = 0.0


def upscaled_frames(frames, upscalers, batch: int = BATCH, cancel=None, stopwatch: Stopwatch | None = None):
    """PIL frames in, upscaled PIL frames out, in order. RGB frames of one size go through
    the networks ``batch`` at a time, rounded to 8 bits between stages exactly as a still
    is (so a frame's result equals the still path's); others one by one. ``stopwatch``
    hears the time the networks take."""
    stopwatch = stopwatch or Stopwatch()
    pending = []
    for frame in frames:
        if cancel is not None and cancel():
            raise MotionCancelled()
        pending.append(frame)
        if len(pending) == batch:
            yield from _timed_batch(pending, upscalers, stopwatch)
            pending = []
    if pending:
        yield from _timed_batch(pending, upscalers, stopwatch)


def _timed_batch(images, upscalers, stopwatch: Stopwatch):
    started = time.perf_counter()
    out = _upscale_batch(images, upscalers)
    stopwatch.seconds += time.perf_counter() - started
    return out


def _upscale_batch(images, upscalers):
    if any(i.mode != "RGB" or i.size != images[0].size for i in images):
        one = chain(*upscalers)
        return [one(i) for i in images]
    x = torch.from_numpy(np.stack([np.asarray(i) for i in images])).permute(0, 3, 1, 2)
    for up in upscalers:
        x = up.upscale_tensor(x.float().div_(255), quantize=255)
    return [Image.fromarray(a, "RGB") for a in x.permute(0, 2, 3, 1).numpy()]


def _check(limits: MotionLimits, frames, seconds, size, factor, first_seconds):
    """Refuse a job over a limit before any frame is decoded, saying the way out."""
    w, h = size
    per_frame = w * h * factor ** 2
    if limits.max_frame_output_pixels and per_frame > limits.max_frame_output_pixels:
        s = (limits.max_frame_output_pixels / per_frame) ** 0.5
        raise ImageRejected(f"{w}x{h} upscaled x{factor} is {w * factor}x{h * factor} a frame, over the limit of "
                            f"{limits.max_frame_output_pixels / 1e6:.1f} megapixels: shrink it to "
                            f"{int(w * s) // 2 * 2}x{int(h * s) // 2 * 2} first, or use a smaller scale")
    if seconds and first_seconds:
        frames = frames and int(frames * min(1.0, first_seconds / seconds))
        seconds = min(seconds, first_seconds)
    if limits.max_seconds and seconds and seconds > limits.max_seconds:
        raise ImageRejected(f"the clip is {seconds:.1f} s long; the limit is {limits.max_seconds:g} s: "
                            f"upscale its first {limits.max_seconds:g} seconds")
    if limits.max_frames and frames and frames > limits.max_frames:
        raise ImageRejected(f"the clip has {frames} frames; the limit is {limits.max_frames}: upscale its first "
                            f"{limits.max_frames} frames (" + (f"{limits.max_frames * seconds / frames:.1f} s)"
                                                               if seconds else "fewer seconds)"))
    if limits.max_output_pixels and frames and frames * per_frame > limits.max_output_pixels:
        fit = max(1, int(limits.max_output_pixels // per_frame))
        raise ImageRejected(f"{frames} frames of {w * factor}x{h * factor} are {frames * per_frame / 1e6:.0f} "
                            f"megapixels in all, over the limit of {limits.max_output_pixels / 1e6:.0f}: upscale "
                            f"its first {fit} frames" + (f" ({fit * seconds / frames:.1f} s)" if seconds else "")
                            + ", or use a smaller scale")


def _counted(frames, limits: MotionLimits, per_frame: int):
    """The frames, refusing the job mid-stream when a clip holds more than it declared."""
    for n, frame in enumerate(frames, 1):
        if limits.max_frames and n > limits.max_frames:
            raise ImageRejected(f"the clip has more than {limits.max_frames} frames (more than its header "
                                f"declares): upscale fewer seconds of it")
        if limits.max_output_pixels and n * per_frame > limits.max_output_pixels:
            raise ImageRejected(f"the clip makes more than {limits.max_output_pixels / 1e6:.0f} megapixels in all: "
                                f"upscale fewer seconds of it, or use a smaller scale")
        yield frame


def upscale_motion(path, upscalers, out_path, *, fmt: str | None = None, crf: int | None = None,
                   limits: MotionLimits = MotionLimits(), first_seconds: float | None = None,
                   max_input_pixels: int | None = None, progress=None, cancel=None) -> MotionResult:
    """Upscale the animated image or video at ``path`` into ``out_path`` (whose suffix says
    the format: .gif/.webp/.png for an animation, .mp4/.webm for a video; ``fmt`` overrides
    it). ``progress(done, total_or_None)`` hears each frame; ``cancel()`` is asked between
    batches. Raises ``ImageRejected`` (a refusal, with a message for the person) or
    ``MotionCancelled``."""
    started = time.perf_counter()
    kind = kind_of(path)
    out_path = Path(out_path)
    if kind == "video":
        return _video(path, upscalers, out_path, fmt or out_path.suffix.lstrip(".").lower(), crf, limits,
                      first_seconds, progress, cancel, started)
    if kind == "animation":
        return _animation(path, upscalers, out_path, fmt, limits, first_seconds, max_input_pixels, progress, cancel,
                          started)
    open_checked(path, max_input_pixels or 10 ** 9)  # an unreadable file is refused with its own reason
    raise ImageRejected("this file is a still image, not an animation or a video")


def _reporting(frames, progress, total):
    for n, frame in enumerate(frames, 1):
        yield frame
        if progress:
            progress(n, total)


def _animation(path, upscalers, out_path, fmt, limits, first_seconds, max_input_pixels, progress, cancel, started):
    img = open_checked(path, max_input_pixels or 10 ** 9)
    info = animation.describe(img)
    factor = factor_of(upscalers)
    # the declared frame count is checked at once, unless only the first seconds are wanted
    _check(limits, None if first_seconds else info.frames, None, info.size, factor, None)
    per_frame = info.size[0] * info.size[1] * factor ** 2
    firsts = []

    def wanted(frames):
        """All frames, or those that start within ``first_seconds`` (a frame's duration is
        known once it is read: the last of ``info.durations_ms``)."""
        for frame in frames:
            starts_at = (sum(info.durations_ms) - info.durations_ms[-1]) / 1000
            if first_seconds and starts_at >= first_seconds:
                return
            if not firsts:
                firsts.append(frame)
            yield frame

    stopwatch = Stopwatch()
    sources = wanted(_counted(animation.frames(img, info), limits, per_frame))
    out = list(_reporting(upscaled_frames(sources, upscalers, cancel=cancel, stopwatch=stopwatch), progress,
                          info.frames))
    if not out:
        raise ImageRejected("the animation has no frames")
    info.durations_ms = info.durations_ms[:len(out)]
    animation.write(out_path, out, info, fmt or animation.FORMATS.get(out_path.suffix.lower(), "PNG").lower())
    notes = [f"The first {len(out)} of its {info.frames} frames were upscaled."] if len(out) < info.frames else []
    return MotionResult(out_path, "animation", len(out), info.size, out[0].size, sum(info.durations_ms) / 1000,
                        stopwatch.seconds, time.perf_counter() - started, (firsts[0], out[0]), notes)


def _video(path, upscalers, out_path, video_format, crf, limits, first_seconds, progress, cancel, started):
    if video_format not in video.OUTPUTS:
        raise ImageRejected(f"a video is written as {' or '.join(video.OUTPUTS)}, not {video_format}")
    container, stream, audio, info = video.open_video(path)
    factor = factor_of(upscalers)
    try:
        _check(limits, info.frames, info.seconds, info.size, factor, first_seconds)
        w, h = info.size
        size_out = (w * factor, h * factor)
        per_frame = size_out[0] * size_out[1]
        total = info.frames
        if total and first_seconds and info.seconds:
            total = max(1, round(total * min(1.0, first_seconds / info.seconds)))
        timestamps, firsts_in, firsts_out, frames_done, stopwatch = [], [], [], 0, Stopwatch()

        def keep_first(frames):  # the first decoded frame, for the demo's bilinear | learned view
            for frame in frames:
                if not firsts_in:
                    firsts_in.append(frame)
                yield frame

        with written_whole(out_path) as tmp:
            writer = video.VideoWriter(tmp, video_format, size_out, stream.time_base, info.fps, info.rotation,
                                       audio, crf)
            try:
                decoded = keep_first(_decoded(container, stream, audio, writer, first_seconds, timestamps))
                frames = _counted(decoded, limits, per_frame)
                for i, frame in enumerate(upscaled_frames(frames, upscalers, cancel=cancel, stopwatch=stopwatch)):
                    if not firsts_out:
                        firsts_out.append(frame)
                    writer.add(np.asarray(frame), timestamps[i])
                    frames_done += 1
                    if progress:
                        progress(frames_done, total)
                if not frames_done:
                    raise ImageRejected("the video has no frames that can be decoded")
            except BaseException:
                try:
                    writer.close()
                except Exception:  # the job failed already; that error is the one to report
                    pass
                raise
            writer.close(_end_pts(stream, timestamps, first_seconds))
    finally:
        container.close()
    seconds = float((timestamps[-1] - timestamps[0]) * stream.time_base) if len(timestamps) > 1 else 0.0
    if info.fps and frames_done:
        seconds += 1 / info.fps
    return MotionResult(out_path, "video", frames_done, info.size, size_out, seconds, stopwatch.seconds,
                        time.perf_counter() - started, (firsts_in[0], firsts_out[0]))


def _end_pts(stream, timestamps, first_seconds):
    """Where the input's last frame ends, in its time base: the stream's own end when it
    says it (and all of it was upscaled), else one average frame past the last timestamp."""
    if not first_seconds and stream.duration:
        end = timestamps[0] + stream.duration  # the stream's length counts from its first frame
        if end > timestamps[-1]:
            return end
    if stream.average_rate:
        return timestamps[-1] + max(1, round(1 / (stream.average_rate * stream.time_base)))
    return None


def _decoded(container, stream, audio, writer, first_seconds, timestamps):
    """The video's frames as RGB images, in decoding order; audio packets go straight to the
    writer. Each frame's pts is appended to ``timestamps``."""
    import av

    streams = [stream] + ([audio] if audio is not None else [])
    start, end = None, None
    try:
        for packet in container.demux(*streams):
            if packet.stream.type == "audio":
                if end is None or (packet.pts is not None and packet.pts * packet.time_base < end):
                    writer.add_audio(packet)
                continue
            for frame in packet.decode():
                pts = frame.pts if frame.pts is not None else (timestamps[-1] + 1 if timestamps else 0)
                t = float(pts * stream.time_base)
                if start is None:
                    start = t
                    end = None if not first_seconds else start + first_seconds
                if end is not None and t >= end:
                    return
                timestamps.append(pts)
                yield Image.fromarray(video.to_rgb(frame), "RGB")
    except av.error.FFmpegError as e:
        raise ImageRejected(f"the video data is damaged after {len(timestamps)} frames ({video._reason(e)})") from None
