"""Quality on the standard benchmarks (Set5, Set14, BSD100) at x2, x4 and x8.

    python benchmarks/quality.py                     # full table (a few minutes on 2 cores)
    python benchmarks/quality.py --limit 1 --datasets Set5 --scales 2   # smoke test

Protocol (``../shared/data/README.md``): HR cropped to a multiple of the scale, LR by PIL
bicubic (antialiased), PSNR/SSIM on Y (BT.601 studio range), ``scale`` pixels cropped
from each border. Our bicubic row must match the published one: that checks the protocol.

Which of our networks serves each scale (they were trained on cat photos only):
x2: one 2x stage (--x2-stage); x4: two stages chained (``pipeline.X4_STAGES``); x8: the fine-tuned
64to512 stack. The defaults are the best choices measured on Set5 and Set14 (README):
64to128, the stage trained on the sharpest (most downscaled) content, serves natural
full-resolution photos best.
"""
import argparse
import json
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent

from upscaler.inference import load_upscaler
from upscaler.pipeline import DEFAULT_X2_STAGE, X4_STAGES, Pipeline, chain
from upscaler.protocol import CLASSICAL, score
from upscaler.stages import TWO_X_STAGES

DATA = ROOT.parent / "shared" / "data" / "benchmarks"

# PSNR-Y (dB) as published; collected in RCAN (Zhang et al., ECCV 2018), Table 3, from the
# SRCNN, FSRCNN, VDSR, LapSRN and EDSR papers. Only the cells we could check are quoted.
PUBLISHED = {
    "bicubic (published)": {("Set5", 2): 33.66, ("Set5", 4): 28.42, ("Set5", 8): 24.40,
                            ("Set14", 2): 30.24, ("Set14", 4): 26.00, ("BSD100", 2): 29.56, ("BSD100", 4): 25.96},
    "SRCNN": {("Set5", 2): 36.66, ("Set5", 4): 30.48, ("Set5", 8): 25.33},
    "FSRCNN": {("Set5", 2): 37.05, ("Set5", 4): 30.72},
    "VDSR": {("Set5", 2): 37.53, ("Set5", 4): 31.35, ("Set5", 8): 25.93, ("Set14", 2): 33.03, ("Set14", 4): 28.01,
             ("BSD100", 2): 31.90, ("BSD100", 4): 27.29},
    "LapSRN": {("Set5", 2): 37.52, ("Set5", 4): 31.54, ("Set5", 8): 26.15},
    "EDSR": {("Set5", 2): 38.11, ("Set5", 4): 32.46, ("Set5", 8): 26.96, ("Set14", 2): 33.92, ("Set14", 4): 28.80,
             ("BSD100", 2): 32.32, ("BSD100", 4): 27.71},
    "RCAN": {("Set5", 2): 38.27, ("Set5", 4): 32.63, ("Set5", 8): 27.31, ("Set14", 2): 34.12, ("Set14", 4): 28.87,
             ("BSD100", 2): 32.41, ("BSD100", 4): 27.77},
}


def learned(model, scale, x2_stage, weights, self_ensemble=False):
    """Our networks for ``scale``, as the demo chains them (``pipeline.Pipeline``)."""
    return chain(*[load_upscaler(s, model=model, weights=weights, self_ensemble=self_ensemble)
                   for s in Pipeline.for_scale(scale, x2_stage).stages])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["Set5", "Set14", "BSD100"])
    ap.add_argument("--scales", nargs="+", type=int, default=[2, 4, 8], choices=[2, 4, 8])
    ap.add_argument("--x2-stage", default=DEFAULT_X2_STAGE, choices=TWO_X_STAGES)
    ap.add_argument("--weights", default=None, help="weights root (default: the bundled weights/)")
    ap.add_argument("--models", nargs="+", default=["seed", "default", "default+ensemble"])
    ap.add_argument("--limit", type=int, default=None, help="first N images per dataset")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--output", default=None, help="also write the results as JSON")
    args = ap.parse_args(argv)

    t0 = time.time()
    results = {}  # method -> {(dataset, scale): (psnr, ssim)}
    for ds in args.datasets:
        files = sorted(Path(args.data, ds).glob("*.png"))[:args.limit]
        hrs = [Image.open(f).convert("RGB") for f in files]
        for scale in args.scales:
            methods = {name: (lambda img, r=r, s=scale: img.resize((img.width * s, img.height * s), r))
                       for name, r in CLASSICAL.items()}
            for m in args.models:
                model, ens = m.split("+")[0], m.endswith("+ensemble")
                methods[m] = learned(model, scale, args.x2_stage, args.weights, ens)
            pairs = []
            for hr in hrs:
                hr = hr.crop((0, 0, hr.width - hr.width % scale, hr.height - hr.height % scale))
                pairs.append((hr.resize((hr.width // scale, hr.height // scale), Image.BICUBIC), hr))
            for name, fn in methods.items():
                mean = score(fn, pairs, scale)
                results.setdefault(name, {})[(ds, scale)] = (mean["psnr"], mean["ssim"])
    cols = [(ds, s) for ds in args.datasets for s in args.scales]
    print(f"PSNR-Y / SSIM-Y, standard protocol; x2 = {args.x2_stage}, x4 = {' + '.join(X4_STAGES)}, "
          f"x8 = 64to512; "
          f"{time.time() - t0:.0f} s\n")
    print("| method | " + " | ".join(f"{ds} x{s}" for ds, s in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for name, row in results.items():
        print(f"| {name} | " + " | ".join(f"{row[c][0]:.2f} / {row[c][1]:.4f}" for c in cols) + " |")
    for name, row in PUBLISHED.items():
        print(f"| *{name}* | " + " | ".join(f"*{row[c]:.2f}*" if c in row else "" for c in cols) + " |")
    if args.output:
        Path(args.output).write_text(json.dumps({n: {f"{d} x{s}": v for (d, s), v in r.items()}
                                                 for n, r in results.items()}, indent=2))
    return results


if __name__ == "__main__":
    main()
