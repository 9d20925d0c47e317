"""Video in and out through PyAV (FFmpeg's libraries, bundled in the ``av`` wheel; no system
FFmpeg): MP4, WebM and MOV in; MP4 (H.264) or WebM (VP9) out.

What is kept, and how:
* every frame's timestamp (the output stream uses the input's time base and each frame's
  own pts), so a variable frame rate survives, and the frame count and average rate with it;
* the rotation (the display matrix): written again on the output stream, pixels untouched;
* the audio stream, copied packet for packet (no re-encoding). A codec the output
  container cannot hold (Vorbis in MP4) is refused with the way out (WebM);
* colour: frames are turned into RGB with the stream's own matrix and range (BT.601 or
  BT.709, limited or full; an untagged stream gets what players assume: BT.709 from 720
  lines up, BT.601 below), and the result is written as BT.709, limited range, tagged so.

The output is always of even size: the scales are 2, 4 and 8, and 4:2:0 video needs even
sides. Encoding: H.264 (libx264) or VP9 at a constant quality (``crf``: lower is better
and larger; 18-28 is the usual range for H.264, 23 its default).
"""
import dataclasses
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from .images import ImageRejected

VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".m4v", ".mkv"}
# --video-format -> (muxer, video encoder, default crf)
OUTPUTS = {"mp4": ("mp4", "libx264", 20), "webm": ("webm", "libvpx-vp9", 32)}
# AVColorSpace numbers (libavutil/pixfmt.h) -> the matrix swscale converts with
_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG
BT709, LIMITED = 1, 1  # the output's tags: AVCOL_SPC_BT709 / AVCOL_PRI_BT709 / AVCOL_TRC_BT709, AVCOL_RANGE_MPEG


class VideoRejected(ImageRejected):
    """A video the upscaler will not process, with a message meant for the person."""


@dataclasses.dataclass
class VideoInfo:
    size: tuple               # (width, height) as decoded (before rotation)
    frames: int | None        # as the stream declares it (None: not declared)
    seconds: float | None
    fps: float | None         # the average rate
    rotation: int             # degrees counter-clockwise, from the display matrix
    audio: str | None         # the audio codec, or None
    codec: str


def open_video(path):
    """-> (container, video stream, audio stream or None, VideoInfo); raises VideoRejected.
    The file is opened twice: once to learn what it is (its rotation is in its first
    frame's side data), once, fresh, to be decoded (a damaged file may not seek back)."""
    import av

    info = probe(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
        video = container.streams.video[0]
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, IndexError) as e:
        raise VideoRejected(f"this file is not a video that can be read ({_reason(e)})") from None
    video.thread_type = "AUTO"  # decode with FFmpeg's own threads
    audio = container.streams.audio[0] if container.streams.audio else None
    return container, video, audio, info


def probe(path) -> VideoInfo:
    """What a video says of itself, and the rotation of its first frame; raises VideoRejected."""
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise VideoRejected(f"this file is not a video that can be read ({_reason(e)})") from None
    with container:
        if not container.streams.video:
            has_audio = bool(container.streams.audio)
            raise VideoRejected("this file has no video stream" + (" (it holds audio only)" if has_audio else ""))
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        ctx = video.codec_context
        if ctx is None or not ctx.width or not ctx.height:
            raise VideoRejected("the video stream does not say its size or codec: it is damaged")
        if audio is not None and audio.codec_context is None:
            raise VideoRejected("the audio stream does not say its codec: it is damaged")
        seconds = None
        if video.duration is not None and video.time_base:
            seconds = float(video.duration * video.time_base)
        elif container.duration:
            seconds = container.duration / 1_000_000
        fps = float(video.average_rate) if video.average_rate else None
        rotation = 0
        try:
            for frame in container.decode(video):
                rotation = int(round(frame.rotation or 0))
                break
        except (av.error.FFmpegError, OSError, ValueError):
            pass  # a damaged first frame: the decoding proper will say so
        audio_name = audio.codec_context.name if audio is not None else None
        return VideoInfo((ctx.width, ctx.height), video.frames or None, seconds, fps, rotation, audio_name, ctx.name)


def _reason(e) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def to_rgb(frame) -> np.ndarray:
    """A decoded frame -> H x W x 3 uint8 RGB, converted with the stream's own matrix and
    range (an untagged one: BT.709 from 720 lines up, BT.601 below, limited range)."""
    matrix = _MATRIX.get(frame.colorspace) or ("ITU709" if frame.height >= 720 else "ITU601")
    full = frame.color_range == _FULL_RANGE
    rgb = frame.reformat(format="rgb24", src_colorspace=matrix, src_color_range="JPEG" if full else "MPEG",
                         dst_color_range="JPEG")
    return rgb.to_ndarray()


class VideoWriter:
    """An output video that frames are added to one at a time (memory: the encoder's own
    few frames). ``close()`` flushes it; the caller writes to a ``.part`` name."""

    def __init__(self, path, video_format: str, size, time_base, fps, rotation: int = 0, audio=None,
                 crf: int | None = None):
        import av

        muxer, codec, default_crf = OUTPUTS[video_format]
        self.out = av.open(str(path), "w", format=muxer)
        rate = Fraction(fps).limit_denominator(1001 * 1000) if fps else Fraction(25)
        self.stream = self.out.add_stream(codec, rate=rate)
        ctx = self.stream.codec_context
        ctx.width, ctx.height = size
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = time_base  # the input's: every frame keeps its own timestamp
        self.stream.time_base = time_base
        ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range = BT709, BT709, BT709, LIMITED
        options = {"crf": str(default_crf if crf is None else crf)}
        if codec == "libx264":
            # No B-frames: packets then come in presentation order, so the last one out is the
            # last frame, whose duration sets the MP4's length (see close()).
            options.update({"preset": "medium", "bf": "0"})
        else:  # VP9 at constant quality needs a zero bit-rate cap
            options.update({"b": "0", "row-mt": "1"})
        ctx.options = options
        if rotation:
            self.stream.set_display_rotation(rotation)
        self.audio_in, self.audio_out = audio, None
        if audio is not None:
            try:
                self.audio_out = self.out.add_stream_from_template(audio)
            except (ValueError, av.error.FFmpegError) as e:
                self.out.close()
                raise VideoRejected(f"the audio ({audio.codec_context.name}) cannot be copied into "
                                    f"{video_format.upper()} ({_reason(e)}); choose the other format") from None
        self.time_base, self.last_pts, self.held = time_base, None, None
        self.in_order = codec == "libx264"  # bframes=0 above

    def add(self, rgb: np.ndarray, pts: int):
        """One frame at its own timestamp (in the input's time base)."""
        import av

        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1  # timestamps must rise; a repeated or backward one is nudged
        self.last_pts = pts
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame = frame.reformat(format="yuv420p", src_colorspace="ITU709", dst_colorspace="ITU709",
                               src_color_range="JPEG", dst_color_range="MPEG")
        frame.pts, frame.time_base = pts, self.time_base
        self._mux(self.stream.encode(frame))

    def _mux(self, packets):
        """Mux the encoder's packets, holding the newest back: close() gives the last one its
        duration."""
        for packet in packets:
            if self.in_order:  # no reordering: decode order is presentation order
                packet.dts = packet.pts  # (libx264 may still shift dts by its threads' delay,
                # which MP4 would count into the clip's length and average rate)
            if self.held is not None:
                self.out.mux(self.held)
            self.held = packet

    def add_audio(self, packet):
        if self.audio_out is not None and packet.dts is not None:
            packet.stream = self.audio_out
            self.out.mux(packet)

    def close(self, end_pts: int | None = None):
        """Flush the encoder; ``end_pts``: where the input's last frame ends (its time base).
        The container's length is its last packet's end, so the last packet (the last frame:
        no B-frames) lasts until there, and the clip's length and average rate are the input's."""
        self._mux(self.stream.encode(None))
        if self.held is not None:
            if end_pts is not None and end_pts > self.held.pts:
                self.held.duration = end_pts - self.held.pts
            self.out.mux(self.held)
        self.out.close()
