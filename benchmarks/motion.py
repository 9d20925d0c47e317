"""Motion: frames per second, memory, timing kept, GIF size and quality, and flicker.

    python benchmarks/motion.py                  # the tables of docs/motion.md (a few minutes on 2 cores)
    python benchmarks/motion.py --quick          # tiny clips: a smoke test
    python benchmarks/motion.py --flicker-only   # the flicker table alone (seconds)

1. **Speed**: a 320x240 clip (the first example photo, panned a pixel a frame, 25 fps, with
   sound) through ``upscale_motion`` at x2 and x4, end to end (decode, networks, encode):
   frames per second.
2. **Memory**: peak RSS of a process that upscales a 60-frame and a 600-frame clip at x2
   (each in a fresh process): a streaming engine holds a few frames, not the clip.
3. **Timing kept**: frame count and average rate of the video; each frame's duration of an
   animated GIF (largest difference, ms).
4. **GIF**: size and PSNR of the GIF against the lossless WebP of the same frames (the
   palette's cost), and the sizes of WebP and APNG.
5. **Flicker**: a still photo with fresh Gaussian noise in every frame (sigma 8/255): the
   mean absolute difference between consecutive output frames, over the input's (1.0: the
   output flickers as much as the input; below 1: calmer).
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # motion_files: clips made on the spot

from upscaler import load_upscaler  # noqa: E402
from upscaler.inference import describe_device  # noqa: E402
from upscaler.motion import upscale_motion  # noqa: E402
from upscaler.pipeline import Pipeline  # noqa: E402

EXAMPLE = ROOT / "examples" / "cat.4093.jpg"


def panned_clip(path, frames: int, size=(320, 240), fps=25, audio=True):
    """``frames`` frames of the example photo, panned one pixel a frame, as H.264 + AAC."""
    import av

    photo = Image.open(EXAMPLE).convert("RGB").resize((size[0] + frames + 8, size[1] + 8))
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        a = out.add_stream("aac", rate=16000) if audio else None
        if a is not None:
            a.layout = "mono"
        for i in range(frames):
            crop = photo.crop((i, 4, i + size[0], 4 + size[1]))
            for p in v.encode(av.VideoFrame.from_image(crop).reformat(format="yuv420p")):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        if a is not None:
            for k in range(int(frames / fps * 16000 / 1024) + 1):
                f = av.AudioFrame.from_ndarray((0.2 * np.sin(np.arange(k * 1024, (k + 1) * 1024) / 9))
                                               .astype(np.float32)[None], format="fltp", layout="mono")
                f.sample_rate, f.pts = 16000, k * 1024
                for p in a.encode(f):
                    out.mux(p)
            for p in a.encode(None):
                out.mux(p)
    return path


def speed(folder, frames, model, scales):
    src = panned_clip(folder / "speed.mp4", frames)
    rows = []
    for scale in scales:
        ups = [load_upscaler(s, model=model) for s in Pipeline.for_scale(scale).stages]
        upscale_motion(panned_clip(folder / "warm.mp4", 4), ups, folder / "warm-out.mp4")  # warm-up
        t = time.perf_counter()
        result = upscale_motion(src, ups, folder / f"out-x{scale}.mp4")
        wall = time.perf_counter() - t
        rows.append({"scale": scale, "frames": result.frames, "out": f"{result.output_size[0]}x{result.output_size[1]}",
                     "fps": result.frames / wall, "network_share": result.network_seconds / wall})
    return rows


RSS_SCRIPT = """
import json, resource, sys
sys.path.insert(0, {tests!r})
from upscaler import load_upscaler
from upscaler.motion import upscale_motion
upscale_motion({src!r}, [load_upscaler("64to128")], {out!r})
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
"""


def peak_rss(folder, frames):
    src = panned_clip(folder / f"rss-{frames}.mp4", frames)
    code = RSS_SCRIPT.format(tests=str(ROOT / "tests"), src=str(src), out=str(folder / f"rss-{frames}-out.mp4"))
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if p.returncode:
        raise SystemExit(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def timing_kept(folder, model):
    import av
    from motion_files import DURATIONS_MS, animation, clip

    ups = [load_upscaler("64to128", model=model)]
    src = clip(folder / "vfr.mp4", n=30)
    out = upscale_motion(src, ups, folder / "vfr-out.mp4").path
    facts = []
    for path in (src, out):
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            facts.append((sum(1 for _ in c.decode(v)), v.average_rate))
    gif = animation(folder / "t.gif", "GIF")
    img = Image.open(upscale_motion(gif, ups, folder / "t-out.gif").path)
    got = []
    for k in range(img.n_frames):
        img.seek(k)
        got.append(img.info["duration"])
    return {"video_in": facts[0], "video_out": facts[1],
            "gif_duration_error_ms": max(abs(a - b) for a, b in zip(got, DURATIONS_MS))}


def gif_quality(folder, model, frames):
    """A panned photo as an animation: GIF (one palette, ordered dither) against lossless WebP."""
    from upscaler.metrics import psnr_y

    src_frames = [Image.open(EXAMPLE).convert("RGB").resize((200, 160)).crop((i, 0, i + 160, 120))
                  for i in range(frames)]
    src = folder / "pan.webp"
    src_frames[0].save(src, save_all=True, append_images=src_frames[1:], duration=80, loop=0, lossless=True)
    ups = [load_upscaler("64to128", model=model)]
    sizes, outs = {}, {}
    for fmt in ("webp", "gif", "png"):
        path = upscale_motion(src, ups, folder / f"pan-out.{fmt}").path
        sizes[fmt] = path.stat().st_size
        img = Image.open(path)
        outs[fmt] = []
        for k in range(img.n_frames):
            img.seek(k)
            outs[fmt].append(img.convert("RGB"))
    psnr = statistics.mean(psnr_y(g, w) for g, w in zip(outs["gif"], outs["webp"]))
    return {"frames": frames, "size": f"{outs['gif'][0].width}x{outs['gif'][0].height}", "bytes": sizes,
            "gif_psnr_vs_lossless": psnr}


def flicker(folder, models, frames):
    """Consecutive-frame difference of the output over the input's, on a noisy still scene."""
    from upscaler.protocol import classical

    rng = np.random.default_rng(0)
    still = np.asarray(Image.open(EXAMPLE).convert("RGB").resize((128, 128)), dtype=np.float32)
    inputs = [Image.fromarray(np.clip(still + rng.normal(0, 8, still.shape), 0, 255).round().astype(np.uint8))
              for _ in range(frames)]

    def mean_change(images):
        arrays = [np.asarray(i, dtype=np.float32) for i in images]
        return statistics.mean(float(np.abs(a - b).mean()) for a, b in zip(arrays, arrays[1:]))

    def upsampled(images):  # the input's own change, at the output's size (nearest: nothing smoothed)
        return [i.resize((i.width * 2, i.height * 2), Image.NEAREST) for i in images]

    base = mean_change(upsampled(inputs))
    rows = {"bicubic": mean_change([classical("bicubic", 2)(i) for i in inputs]) / base}
    for model in models:  # "sharp:0.9": a blend with its twin, as the page's strength slider makes
        name, _, strength = model.partition(":")
        up = load_upscaler("64to128", model=name, denoise_strength=float(strength) if strength else None)
        rows[model] = mean_change([up(i) for i in inputs]) / base
    return rows


# The flicker table's models: the API's default, and each page tab's choices as they start.
FLICKER_MODELS = ["default", "photo", "sharp", "sharp:0.9"]


def print_flicker(rows):
    print("**Flicker** on a still photo with fresh noise in every frame (sigma 8/255), x2: mean change "
          "between consecutive frames, over the input's")
    print()
    print("| method | change over the input's |")
    print("|---|---:|")
    for name, value in rows.items():
        print(f"| {name} | {value:.2f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny clips: checks that it runs")
    ap.add_argument("--model", default="default")
    ap.add_argument("--flicker-only", action="store_true", help="only the flicker table")
    args = ap.parse_args(argv)
    if args.flicker_only:
        with tempfile.TemporaryDirectory() as tmp:
            print_flicker(flicker(Path(tmp), FLICKER_MODELS, 6 if args.quick else 24))
        return
    n, long_n = (8, 16) if args.quick else (60, 600)
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"device: {describe_device('cpu')}; torch {torch.__version__}; model {args.model}")
        print()
        print(f"**Speed**: a {n}-frame 320x240 clip with sound, end to end (decode, networks, encode)")
        print()
        print("| scale | out | frames/s | the networks' share |")
        print("|---|---|---:|---:|")
        for r in speed(folder, n, args.model, [2] if args.quick else [2, 4]):
            print(f"| x{r['scale']} | {r['out']} | {r['fps']:.1f} | {100 * r['network_share']:.0f}% |")
        print()
        short, long = peak_rss(folder, n), peak_rss(folder, long_n)
        print(f"**Memory**: peak RSS of a process upscaling a clip at x2: {n} frames {short / 2 ** 20:.0f} MB, "
              f"{long_n} frames {long / 2 ** 20:.0f} MB ({long / short:.2f}x)")
        print()
        t = timing_kept(folder, args.model)
        print(f"**Timing**: video frames and average rate in {t['video_in'][0]} at {t['video_in'][1]}, out "
              f"{t['video_out'][0]} at {t['video_out'][1]}; GIF frame durations within "
              f"{t['gif_duration_error_ms']} ms")
        print()
        g = gif_quality(folder, args.model, 6 if args.quick else 24)
        print(f"**GIF**: {g['frames']} frames of {g['size']}: GIF {g['bytes']['gif'] / 1e3:.0f} kB at "
              f"{g['gif_psnr_vs_lossless']:.1f} dB PSNR-Y against the lossless frames; lossless WebP "
              f"{g['bytes']['webp'] / 1e3:.0f} kB; APNG {g['bytes']['png'] / 1e3:.0f} kB")
        print()
        print_flicker(flicker(folder, FLICKER_MODELS, 6 if args.quick else 24))


if __name__ == "__main__":
    main()
