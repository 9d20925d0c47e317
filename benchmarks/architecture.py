"""Which 2x architecture? Train each candidate for the same CPU time on 64to128, then
score it on cats/val (fixed-size protocol) and time its 64->512 stack.

    python benchmarks/architecture.py --seconds 120 --train-data-dir ../shared/data/cats/train \
        --val-data-dir ../shared/data/cats/val

Each candidate runs ``train_accelerate.py`` as a subprocess: a 20-step probe measures its
speed, then it trains for ``--seconds`` worth of steps. Prints a markdown table.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

from upscaler.evaluate import evaluate
from upscaler.models import ResidualUpsampler8x, Upsampler8x

CANDIDATES = [  # (name, model, extra train args, 8x net for timing)
    ("seed (reference layout, MSE)", "seed", [], lambda: Upsampler8x()),
    ("residual F=16 n=4", "default", ["--arch-args", '{"num_features": 16, "num_convs": 4}'],
     lambda: ResidualUpsampler8x(16, 4)),
    ("residual F=32 n=4", "default", ["--arch-args", '{"num_features": 32, "num_convs": 4}'],
     lambda: ResidualUpsampler8x(32, 4)),
    ("residual F=48 n=6", "default", ["--arch-args", '{"num_features": 48, "num_convs": 6}'],
     lambda: ResidualUpsampler8x(48, 6)),
]


def train(model, extra, steps, out, data_dir):
    cmd = [sys.executable, str(ROOT / "train_accelerate.py"), "--stage", "64to128", "--model", model,
           "--train-data-dir", data_dir, "--max-steps", str(steps), "--output-dir", out,
           "--validation-steps", "100000", "--checkpointing-steps", "100000", "--num-val-images", "4", *extra]
    t = time.time()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.time() - t


@torch.no_grad()
def time_8x(make):
    net = make().eval()
    x = torch.rand(1, 3, 64, 64)
    for _ in range(2):
        net(x)
    t = time.perf_counter()
    for _ in range(5):
        net(x)
    return (time.perf_counter() - t) / 5 * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--train-data-dir", default=str(ROOT.parent / "shared/data/cats/train"))
    ap.add_argument("--val-data-dir", default=str(ROOT.parent / "shared/data/cats/val"))
    ap.add_argument("--output", default=None, help="also write the rows as JSON")
    args = ap.parse_args()
    rows = []
    for name, model, extra, make in CANDIDATES:
        with tempfile.TemporaryDirectory() as out:
            probe = train(model, extra, 20, out, args.train_data_dir)
            # the probe includes start-up (~5 s): time per step from a second, longer probe
            probe2 = train(model, extra, 60, out, args.train_data_dir)
            per_step = max((probe2 - probe) / 40, 1e-3)
            steps = max(int(args.seconds / per_step), 20)
            wall = train(model, extra, steps, out, args.train_data_dir)
            res = evaluate(args.val_data_dir, weights=out, models=[model], stages=["64to128"], progress=False)
        r = res["stages"]["64to128"]
        rows.append({"name": name, "steps": steps, "train_s": round(wall), "psnr": r[model]["psnr"],
                     "ssim": r[model]["ssim"], "bicubic": r["bicubic"]["psnr"], "ms_8x_64px": round(time_8x(make), 1),
                     "params_2x": sum(p.numel() for p in make().upsample_64.parameters())})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n64to128 on cats/val after ~{args.seconds:.0f} s of CPU training each (torch threads: "
          f"{torch.get_num_threads()})\n")
    print("| candidate | params (2x) | steps | PSNR-Y | SSIM-Y | bicubic PSNR-Y | 64->512 of 64x64, ms (fp32, untrained) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['name']} | {r['params_2x']} | {r['steps']} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
              f"{r['bicubic']:.2f} | {r['ms_8x_64px']} |")
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
