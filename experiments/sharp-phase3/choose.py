"""Choose between sharp's candidate 2x stages by how they do at x4, on photos no run trained
on: the 48 training photos every run holds out (``data.split_held_out``, as
train_accelerate.py splits them), under benchmarks/perceptual.py's protocol (a 256x256 crop
of the photo's own pixels, shrunk 4x with PIL bicubic, clean or saved as JPEG 75; 64to128
then 128to256, as the demo's 4x). cats/val stays for the reported numbers only.

    python experiments/sharp-phase3/choose.py shipped=weights,weights A=../sharp3-out/A,weights

Each argument is LABEL=ROOT_64to128,ROOT_128to256: the weights roots (folders holding
sharp/<stage>/) of the two stages; LABEL=ROOT_64to128,ROOT_128to256,STRENGTH blends both
with photo's, as the page's invented detail does (weights/ holds photo's):

    python experiments/sharp-phase3/choose.py 2 1=weights,weights 0.75=weights,weights,0.75
"""
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from perceptual import CONDITIONS, truth_crop  # noqa: E402
from PIL import Image  # noqa: E402

from upscaler import data as sr_data  # noqa: E402
from upscaler.conditions import pil_jpeg  # noqa: E402
from upscaler.inference import load_upscaler  # noqa: E402
from upscaler.metrics import checkerboard, crispness, psnr_y  # noqa: E402
from upscaler.pipeline import chain  # noqa: E402
from upscaler.protocol import lpips_metric  # noqa: E402

TRAIN = ROOT.parent / "shared" / "data" / "cats" / "train"


def held_out_truths():
    ds = sr_data.load_images(data_dir=str(TRAIN))
    held = sr_data.split_held_out(ds, 48)[1]  # train_accelerate.py's default --val-split-size
    imgs = (sr_data.open_image(held[i]["image"]) for i in range(len(held)))
    return [t for t in (truth_crop(i.convert("RGB")) for i in imgs if i is not None) if t]


def main():
    torch.set_num_threads(int(sys.argv[1]) if sys.argv[1].isdigit() else 2)
    specs = [a for a in sys.argv[1:] if "=" in a]
    metric = lpips_metric()
    truths = held_out_truths()
    print(f"{len(truths)} held-out training photos, x4\n")
    print("| weights | input | PSNR-Y | LPIPS | crispness | grid |")
    print("|---|---|---:|---:|---:|---:|")
    for spec in specs:
        label, _, roots = spec.partition("=")
        r2, r4, *strength = roots.split(",")
        blend = float(strength[0]) if strength else None
        up = chain(load_upscaler("64to128", model="sharp", weights=r2, denoise_strength=blend),
                   load_upscaler("128to256", model="sharp", weights=r4, denoise_strength=blend))
        for cond, quality in CONDITIONS.items():
            rows = []
            for hr in truths:
                lr = hr.resize((64, 64), Image.BICUBIC)
                out = up(pil_jpeg(lr, quality) if quality else lr)
                rows.append((psnr_y(out, hr, 4), metric.distance(out, hr), crispness(out, hr),
                             checkerboard(out, hr)))
            p, lp, c, g = zip(*rows)
            print(f"| {label} | {cond} | {statistics.mean(p):.2f} | {statistics.mean(lp):.3f} | "
                  f"{statistics.median(c):.2f} | {statistics.median(g):.2f} |", flush=True)


if __name__ == "__main__":
    main()
