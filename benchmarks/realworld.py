"""Real-photo benchmark: how each model does on inputs that look like visitors' uploads.

    python benchmarks/realworld.py                       # cats/val, every condition (~10 min, 2 cores)
    python benchmarks/realworld.py --limit 20 --conditions clean jpeg75   # a quick look

Each cats/val photo becomes a 512x512 ground truth (the fixed protocol, ``protocol.py``);
its 64x64 input is made under each condition of ``upscaler.degradations.CONDITIONS``
(clean bicubic; PIL JPEG at 90/75/50/30; Gaussian blur sigma 1 input pixel then JPEG 75;
Gaussian noise sigma 10/255 then JPEG 75; "mixed", drawn from the photo family's training
distribution, seeded per photo). x2 is the 64to128 network (target: the 128 px truth), x8
the 64to512 stack (target: the 512 px truth). Scores are PSNR-Y / SSIM-Y against the
*clean* truth, border = the factor; "gain" is a model's PSNR minus bicubic's.
"""
import argparse
import json
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from upscaler.degradations import CONDITIONS, degraded_input  # noqa: E402
from upscaler.inference import load_upscaler  # noqa: E402
from upscaler.metrics import psnr_ssim  # noqa: E402
from upscaler.models import FAMILIES  # noqa: E402
from upscaler.protocol import GROUND_TRUTH_SIZE, centre_square, image_files  # noqa: E402

SCALES = {"x2": "64to128", "x8": "64to512"}
INPUT_SIZE = 64


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cats" / "val"))
    p.add_argument("--weights", default=None, help="weights root (default: the bundled weights/)")
    p.add_argument("--models", nargs="+", default=["default", "photo", "seed"], choices=list(FAMILIES))
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    p.add_argument("--scales", nargs="+", default=list(SCALES), choices=list(SCALES))
    p.add_argument("--limit", type=int, default=None, help="first N photos only")
    p.add_argument("--output", default=None, help="also write the results as JSON")
    args = p.parse_args(argv)

    files = image_files(args.data)[:args.limit]
    truths = [centre_square(Image.open(f).convert("RGB")).resize((GROUND_TRUTH_SIZE,) * 2, Image.BICUBIC)
              for f in files]
    result = {"images": len(files), "data": Path(args.data).name, "scales": {}}
    for scale, stage in ((s, SCALES[s]) for s in args.scales):
        factor = int(scale[1:])
        ups = {m: load_upscaler(stage, model=m, weights=args.weights) for m in args.models}
        methods = {"bicubic": lambda img: img.resize((img.width * factor, img.height * factor), Image.BICUBIC),
                   **ups}
        targets = [t.resize((INPUT_SIZE * factor,) * 2, Image.BICUBIC) if INPUT_SIZE * factor != GROUND_TRUTH_SIZE
                   else t for t in truths]
        table = {}
        for cond in args.conditions:
            inputs = [degraded_input(t, INPUT_SIZE, cond, seed=i) for i, t in enumerate(truths)]
            row = {}
            for name, fn in methods.items():
                scores = [psnr_ssim(fn(lr), hr, factor) for lr, hr in zip(inputs, targets)]
                row[name] = {"psnr": round(sum(s[0] for s in scores) / len(scores), 3),
                             "ssim": round(sum(s[1] for s in scores) / len(scores), 4)}
            table[cond] = row
            print(f"{scale} {cond}: " + "  ".join(f"{n} {r['psnr']:.2f}" for n, r in row.items()),
                  file=sys.stderr, flush=True)
        result["scales"][scale] = table
    print(format_table(result, args.models))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2))
        print(f"saved {args.output}")


def format_table(result, models) -> str:
    lines = [f"cats/val, {result['images']} photos, 64x64 inputs; PSNR-Y (dB) / SSIM-Y against the clean "
             "photo; in brackets the gain over bicubic (dB)", ""]
    for scale, table in result["scales"].items():
        names = ["bicubic", *models]
        lines += [f"**{scale}**", "", "| input | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for cond, row in table.items():
            base = row["bicubic"]["psnr"]
            cells = [f"{row['bicubic']['psnr']:.2f} / {row['bicubic']['ssim']:.3f}"]
            cells += [f"{row[m]['psnr']:.2f} / {row[m]['ssim']:.3f} ({row[m]['psnr'] - base:+.2f})" for m in models]
            lines.append(f"| {cond} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
