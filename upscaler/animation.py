"""Animated images in and out: GIF, animated WebP and APNG, frame by frame, with their timing.

Reading: Pillow composes each frame onto the canvas (a GIF's or APNG's partial frames and
their disposal become whole frames), so every frame the engine sees is a complete picture,
with its own duration. Writing: the upscaled whole frames, each with its duration, the
loop count, and transparency where the source had any. A frame with transparent pixels is
written with disposal "restore to background", so nothing of the frame before it shows
through (the source's own disposal was already applied when its frames were composed).

GIF needs a palette of 256 colours at most. One palette serves every frame (``Palette``:
median cut over a sample of frames spread over the clip), so a still area keeps its
colours from frame to frame instead of flickering as per-frame palettes would; frames are
dithered to it with an ordered (Bayer) pattern, which keeps gradients from banding and,
unlike error diffusion, leaves a still area's pixels the same in every frame. Lossless animated WebP
(``--format webp``) or APNG (``--format png``) keep every colour: the faithful choices.

Pillow's writers take all frames at once (they compare neighbours to write only what
changed), so an animation's frames are held in memory as encoded as Pillow holds them; the
job's output-pixel limit (``motion.MotionLimits``) bounds that. Video streams instead.
"""
import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from .atomic import written_whole
from .images import ImageRejected

# Animated formats: suffix -> Pillow format.
FORMATS = {".gif": "GIF", ".webp": "WEBP", ".png": "PNG", ".apng": "PNG"}
DEFAULT_DURATION_MS = 100  # a frame that does not say (browsers show such GIF frames for ~100 ms)
PALETTE_SAMPLE_FRAMES = 8
# An 8x8 Bayer matrix, as offsets of -8..+7.5 levels: about half the step between the colours
# of a 256-colour palette of a photo, enough to break bands into a fine even texture.
_B2 = np.array([[0, 2], [3, 1]])
_B4 = np.block([[4 * _B2, 4 * _B2 + 2], [4 * _B2 + 3, 4 * _B2 + 1]])
BAYER = ((np.block([[4 * _B4, 4 * _B4 + 2], [4 * _B4 + 3, 4 * _B4 + 1]]) + 0.5) / 64 - 0.5) * 16
BAYER = BAYER.round().astype(np.int16)


@dataclasses.dataclass
class AnimationInfo:
    format: str            # the source's Pillow format: "GIF", "WEBP" or "PNG"
    size: tuple            # (width, height)
    frames: int            # as the file declares or Pillow counts them
    plays: int             # how often it plays: 0 = forever, else that many times
    transparent: bool      # whether frames carry transparency
    durations_ms: list     # per frame (read while the frames are read; empty until then)


def is_animated(img: Image.Image) -> bool:
    return bool(getattr(img, "is_animated", False)) and getattr(img, "n_frames", 1) > 1


def describe(img: Image.Image) -> AnimationInfo:
    """What an open animated image says of itself, before any frame is decoded past the first."""
    loop = img.info.get("loop")
    if img.format == "GIF":  # the NETSCAPE field counts repeats after the first play; no field: once
        plays = 1 if loop is None else (0 if loop == 0 else loop + 1)
    else:  # WebP and APNG count plays (0 = forever)
        plays = int(loop or 0)
    transparent = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    return AnimationInfo(img.format, img.size, img.n_frames, plays, transparent, [])


def frames(img: Image.Image, info: AnimationInfo):
    """The whole frames of ``img``, RGB or RGBA, one at a time; their durations go into
    ``info.durations_ms`` as they are read."""
    mode = "RGBA" if info.transparent else "RGB"
    for i in range(info.frames):
        try:
            img.seek(i)
            img.load()  # WebP says a frame's duration once the frame is decoded
        except EOFError:  # fewer frames than the header said: the ones there are the animation
            return
        except Image.DecompressionBombError:
            raise ImageRejected(f"frame {i + 1} declares more pixels than it can plausibly hold "
                                "(a decompression bomb)") from None
        except (OSError, ValueError, IndexError, SyntaxError) as e:
            raise ImageRejected(f"the animation's data is damaged at frame {i + 1} ({e})") from None
        frame = img
        duration = frame.info.get("duration") or DEFAULT_DURATION_MS
        info.durations_ms.append(int(round(duration)))
        if mode == "RGBA" or frame.mode not in ("RGB",):
            converted = frame.convert("RGBA")
            if mode == "RGB":
                converted = converted.convert("RGB")
        else:
            converted = frame.copy()
        yield converted


class Palette:
    """One GIF palette for a whole animation: median cut over up to PALETTE_SAMPLE_FRAMES
    frames, with index 255 kept for transparency when the animation has any."""

    def __init__(self, sample: list, transparent: bool):
        self.transparent = transparent
        thumbs = [f.convert("RGB").resize((max(1, f.width // 4), max(1, f.height // 4)), Image.BOX) for f in sample]
        montage = Image.new("RGB", (sum(t.width for t in thumbs), max(t.height for t in thumbs)))
        x = 0
        for t in thumbs:
            montage.paste(t, (x, 0))
            x += t.width
        self.image = montage.quantize(colors=255 if transparent else 256, method=Image.Quantize.MEDIANCUT,
                                      dither=Image.Dither.NONE)

    def apply(self, frame: Image.Image) -> Image.Image:
        # Ordered (Bayer) dithering: the pattern depends on the pixel's place only, so a still
        # area gets the same pixels in every frame. Floyd-Steinberg spreads each frame's error
        # down the picture, and a moving cat above would make the still floor below it shimmer.
        rgb = np.asarray(frame.convert("RGB"), dtype=np.int16)
        h, w = rgb.shape[:2]
        pattern = np.tile(BAYER, (h // 8 + 1, w // 8 + 1))[:h, :w, None]
        dithered = Image.fromarray(np.clip(rgb + pattern, 0, 255).astype(np.uint8), "RGB")
        out = dithered.quantize(palette=self.image, dither=Image.Dither.NONE)
        if self.transparent and frame.mode == "RGBA":
            alpha = frame.getchannel("A").point(lambda a: 255 if a < 128 else 0).convert("1")
            out.paste(255, mask=alpha)  # GIF transparency is on or off, per pixel
            out.info["transparency"] = 255
        return out


def write(path, frames_out: list, info: AnimationInfo, fmt: str | None = None, quality: int = 95) -> Path:
    """Write upscaled whole frames as an animation. ``fmt``: "gif", "webp" or "png" (APNG);
    default: the source's own. Durations and loop from ``info``."""
    path = Path(path)
    fmt = (fmt or info.format).upper().replace("APNG", "PNG")
    if fmt not in ("GIF", "WEBP", "PNG"):
        raise ImageRejected(f"an animation can be written as GIF, WebP or PNG (APNG), not {fmt}")
    if not frames_out:
        raise ImageRejected("the animation has no frames")
    durations = info.durations_ms[:len(frames_out)]
    params = {"save_all": True, "append_images": frames_out[1:], "duration": durations}
    if fmt != "GIF":
        params["loop"] = info.plays
    elif info.plays != 1:  # GIF: no loop field plays once; otherwise it counts the repeats
        params["loop"] = 0 if info.plays == 0 else info.plays - 1
    if fmt == "GIF":
        sample = frames_out[::max(1, len(frames_out) // PALETTE_SAMPLE_FRAMES)][:PALETTE_SAMPLE_FRAMES]
        palette = Palette(sample, info.transparent)
        paletted = [palette.apply(f) for f in frames_out]
        params.update(append_images=paletted[1:], disposal=2 if info.transparent else 1, optimize=False)
        if info.transparent:
            params["transparency"] = 255
        first = paletted[0]
    elif fmt == "WEBP":
        params.update(lossless=True, quality=100, method=4)
        first = frames_out[0]
    else:  # APNG
        params.update(disposal=0, blend=0)  # each frame whole, replacing the one before (alpha too)
        first = frames_out[0]
    with written_whole(path) as tmp:
        first.save(tmp, format=fmt, **params)
    return path
