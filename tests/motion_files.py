"""Small animations and videos made on the spot, for the motion tests, the fuzz harness and
the benchmarks: nothing is downloaded and nothing is committed. Imports nothing of pytest."""
from fractions import Fraction

import numpy as np
from PIL import Image

DURATIONS_MS = [80, 90, 100, 110, 120, 130]
RED, BLUE = (200, 30, 30), (30, 30, 200)


def frames(n=6, size=(50, 40), transparent=False):
    """``n`` RGB(A) frames: two colour halves and a square that moves (a transparent hole
    in it with ``transparent``)."""
    w, h = size
    out = []
    for i in range(n):
        a = np.zeros((h, w, 4), np.uint8)
        a[:, : w // 2, :3], a[:, w // 2:, :3], a[..., 3] = RED, BLUE, 255
        x = (5 + 5 * i) % max(1, w - 10)
        a[5:15, x:x + 10, :3] = 255
        if transparent:
            a[5:15, x:x + 10, 3] = 0
        out.append(Image.fromarray(a, "RGBA" if transparent else "RGBA").convert("RGBA" if transparent else "RGB"))
    return out


def animation(path, fmt="GIF", n=6, size=(50, 40), transparent=False, loop=0):
    fs = frames(n, size, transparent)
    params = {"save_all": True, "append_images": fs[1:], "duration": DURATIONS_MS[:n] * (n // 6 + 1)}
    params["duration"] = params["duration"][:n]
    if loop is not None:
        params["loop"] = loop
    if fmt == "GIF" and transparent:
        params["disposal"] = 2
    if fmt == "WEBP":
        params["lossless"] = True
    fs[0].save(path, format=fmt, **params)
    return path


def clip(path, n=30, size=(64, 48), fps=25, variable=True, audio=True, rotation=0, colour=None,
         colorspace="ITU601", full_range=False, codec="libx264", pts_gap=None):
    """A video of ``n`` frames (two colour halves and a moving line), optionally with a
    variable frame rate (frame durations alternating 1 and 2 ticks of 1/(2*fps)), an AAC (or
    Opus in WebM) sine, a display rotation, and frames of one known ``colour`` encoded with
    the given matrix and range (tagged so)."""
    import av

    w, h = size
    out = av.open(str(path), "w")
    v = out.add_stream(codec, rate=fps)
    v.width, v.height, v.pix_fmt = w, h, "yuv420p"
    tb = Fraction(1, 2 * fps * 256)
    v.codec_context.time_base, v.time_base = tb, tb
    if colour is not None or full_range or colorspace != "ITU601":
        v.codec_context.colorspace = {"ITU601": 6, "ITU709": 1}[colorspace]
        v.codec_context.color_range = 2 if full_range else 1
    if rotation:
        v.set_display_rotation(rotation)
    a = None
    if audio:
        a = out.add_stream("aac" if codec == "libx264" else "libopus", rate=48000 if codec != "libx264" else 16000)
        a.layout = "mono"
    pts = 0
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        if colour is not None:
            img[:] = colour
        else:
            img[:, : w // 2], img[:, w // 2:] = RED, BLUE
            img[i % h, :] = 255
        f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(
            format="yuv420p", dst_colorspace=colorspace, dst_color_range="JPEG" if full_range else "MPEG")
        f.pts, f.time_base = pts, tb
        step = (256 if i % 2 else 512) if variable else 512
        pts += step if pts_gap is None or i != n // 2 else pts_gap
        for p in v.encode(f):
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)
    if a is not None:
        rate = a.codec_context.sample_rate
        samples, t = 0, 0
        seconds = pts * tb
        while samples < seconds * rate:
            block = 960 if codec != "libx264" else 1024
            x = (0.3 * np.sin(np.arange(samples, samples + block) / 8)).astype(np.float32)[None]
            af = av.AudioFrame.from_ndarray(x, format="fltp", layout="mono")
            af.sample_rate, af.pts = rate, samples
            samples += block
            for p in a.encode(af):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    out.close()
    return path
