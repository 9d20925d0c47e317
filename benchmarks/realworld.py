"""Real-photo benchmark: how each model does on inputs that look like visitors' uploads.

    python benchmarks/realworld.py                       # cats/val, every condition (~10 min, 2 cores)
    python benchmarks/realworld.py --limit 20 --conditions clean jpeg75   # a quick look
    python benchmarks/realworld.py --figure-only docs/figures/realworld-4x.png  # the README's figure

Each cats/val photo becomes a 512x512 ground truth (the fixed protocol, ``protocol.py``);
its 64x64 input is made under each condition of ``upscaler.conditions.CONDITIONS``
(clean bicubic; PIL JPEG at 90/75/50/30; Gaussian blur sigma 1 input pixel then JPEG 75;
Gaussian noise sigma 10/255 then JPEG 75; "mixed", drawn from the photo family's training
distribution, seeded per photo). x2 is the 64to128 network (target: the 128 px truth), x8
the 64to512 stack (target: the 512 px truth). "x2@128" is the demo's 2x on a larger
photo: the same 64to128 network on a 128 px input made the same way (target: the 256 px
truth), content at twice the scale that network's "world" shows it. Scores are PSNR-Y /
SSIM-Y against the *clean* truth, border = the factor, and LPIPS (AlexNet, lower is
closer) where its weights are (``--no-lpips`` leaves it out); "gain" is a model's PSNR
minus bicubic's.
"""
import argparse
import json
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from upscaler.conditions import CONDITIONS, degraded_input  # noqa: E402
from upscaler.inference import load_upscaler  # noqa: E402
from upscaler.models import FAMILIES  # noqa: E402
from upscaler.pipeline import Pipeline, chain  # noqa: E402
from upscaler.protocol import classical, ground_truth, image_files, score  # noqa: E402
from upscaler.stages import STAGES  # noqa: E402

# name: (the network, its input size in pixels)
SCALES = {"x2": ("64to128", 64), "x2@128": ("64to128", 128), "x8": ("64to512", 64)}
# The figure: the demo's example photos (JPEGs as they were uploaded), 4x (64to128 then
# 128to256, as the demo's 4x), a 1:1 crop of each face: (x, y) of its centre in the photo.
FACES = {"cat.4018.jpg": (100, 140), "cat.4093.jpg": (180, 170), "cat.4098.jpg": (125, 125)}
FIGURE_WINDOW = 80  # input pixels: 320 px crops at 4x


def figure(path, weights=None, models=("photo", "sharp"), anchor=True):
    """bicubic | each model | Real-ESRGAN x4plus (where installed: ``anchor.py``), 4x, 1:1
    crops of the examples' faces, labelled."""
    from PIL import ImageDraw

    from anchor import real_esrgan

    ups = {m: chain(*[load_upscaler(s, model=m, weights=weights) for s in Pipeline.for_scale(4).stages])
           for m in models}
    if anchor:
        method, why = real_esrgan()
        if method is None:
            print(f"Real-ESRGAN x4plus left out: {why}")
        else:
            ups["Real-ESRGAN x4plus"] = method
    cell, label_h = FIGURE_WINDOW * 4, 22
    names = ["bicubic", *ups]
    canvas = Image.new("RGB", (cell * len(names), (cell + label_h) * len(FACES)), "white")
    draw = ImageDraw.Draw(canvas)
    for row, (name, (cx, cy)) in enumerate(FACES.items()):
        photo = Image.open(ROOT / "examples" / name).convert("RGB")
        half = FIGURE_WINDOW // 2 + 16  # a margin, so every method sees context around the crop
        box = (cx - half, cy - half, cx + half, cy + half)
        part = photo.crop(box)
        results = {"bicubic": part.resize((part.width * 4, part.height * 4), Image.BICUBIC)}
        for m, method in ups.items():
            results[m] = method(part)
        for col, n in enumerate(names):
            crop = results[n].crop((64, 64, 64 + cell, 64 + cell))
            y = row * (cell + label_h)
            canvas.paste(crop, (col * cell, y + label_h))
            draw.text((col * cell + 6, y + 4), f"{n}, 4x ({name}, 1:1)", fill="black")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    print(f"saved {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cats" / "val"))
    p.add_argument("--weights", default=None, help="weights root (default: the bundled weights/)")
    p.add_argument("--models", nargs="+", default=["default", "photo", "seed"], choices=list(FAMILIES))
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    p.add_argument("--scales", nargs="+", default=list(SCALES), choices=list(SCALES))
    p.add_argument("--limit", type=int, default=None, help="first N photos only")
    p.add_argument("--lpips", action=argparse.BooleanOptionalAction, default=True,
                   help="LPIPS (AlexNet) beside PSNR and SSIM, where its weights are")
    p.add_argument("--output", default=None, help="also write the results as JSON")
    p.add_argument("--figure-only", default=None, metavar="PNG",
                   help="only draw the figure (the examples' faces at 4x: bicubic, --figure-models, and "
                        "Real-ESRGAN x4plus where installed) into PNG")
    p.add_argument("--figure-models", nargs="+", default=[m for m in ("photo", "sharp") if m in FAMILIES],
                   choices=list(FAMILIES))
    p.add_argument("--no-anchor", action="store_true", help="leave Real-ESRGAN x4plus out of the figure")
    args = p.parse_args(argv)
    if args.figure_only:
        return figure(args.figure_only, args.weights, args.figure_models, anchor=not args.no_anchor)

    files = image_files(args.data)[:args.limit]
    truths = [ground_truth(Image.open(f).convert("RGB")) for f in files]
    result = {"images": len(files), "data": Path(args.data).name, "scales": {}}
    for scale, (stage, input_size) in ((s, SCALES[s]) for s in args.scales):
        factor = STAGES[stage].factor
        ups = {m: load_upscaler(stage, model=m, weights=args.weights) for m in args.models}
        methods = {"bicubic": classical("bicubic", factor), **ups}
        out_size = input_size * factor
        targets = [t if out_size == t.width else t.resize((out_size, out_size), Image.BICUBIC) for t in truths]
        table = {}
        for cond in args.conditions:
            inputs = [degraded_input(t, input_size, cond, seed=i) for i, t in enumerate(truths)]
            row = {name: score(fn, list(zip(inputs, targets)), factor, perceptual=args.lpips)
                   for name, fn in methods.items()}
            table[cond] = row
            print(f"{scale} {cond}: " + "  ".join(f"{n} {r['psnr']:.2f}" for n, r in row.items()),
                  file=sys.stderr, flush=True)
        result["scales"][scale] = table
    print(format_table(result, args.models))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2))
        print(f"saved {args.output}")


def format_table(result, models) -> str:
    lines = [f"cats/val, {result['images']} photos; PSNR-Y (dB) / SSIM-Y (/ LPIPS, lower is closer) against the "
             "clean photo; in brackets the gain over bicubic (dB)", ""]
    for scale, table in result["scales"].items():
        names = ["bicubic", *models]
        stage, input_size = SCALES[scale]
        lines += [f"**{scale}**: {stage} on {input_size} px inputs", "", "| input | " + " | ".join(names) + " |",
                  "|---|" + "---:|" * len(names)]
        for cond, row in table.items():
            base = row["bicubic"]["psnr"]

            def cell(r):
                return f"{r['psnr']:.2f} / {r['ssim']:.3f}" + (f" / {r['lpips']:.3f}" if "lpips" in r else "")

            cells = [cell(row["bicubic"])] + [f"{cell(row[m])} ({row[m]['psnr'] - base:+.2f})" for m in models]
            lines.append(f"| {cond} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
