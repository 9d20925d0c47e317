"""The grid a 4x chain draws on the demo's examples: the share of Y's energy (x 1e4) at the
period-4 frequencies (horizontal, vertical, both diagonals) of each example's face at 4x
(64to128 then 128to256, a 128-px crop round the face), and at period 2 of the 64to128 result
alone. A second 2x stage turns a faint period-2 grid of the first into a visible period-4 one.
photo, for comparison, stays below 0.3 at x4 (README.md beside this file).

    python experiments/sharp-phase3/period4.py shipped=weights,weights CD=../sharp3-out/C,../sharp3-out/D

Each argument is LABEL=ROOT_64to128,ROOT_128to256 (weights roots holding <model>/<stage>/);
MODEL:LABEL=... takes another family than sharp.
"""
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from realworld import FACES  # noqa: E402

from upscaler.inference import load_upscaler  # noqa: E402
from upscaler.pipeline import chain  # noqa: E402


def energy_at_period(img: Image.Image, period: int) -> float:
    y = np.asarray(img.convert("L"), dtype=np.float64)
    n = min(y.shape) // 4 * 4
    power = np.abs(np.fft.fft2(y[:n, :n] - y[:n, :n].mean())) ** 2
    k = n // period
    bins = {(k, 0), (0, k), (k, k), (k, -k % n)}  # at period 2 the diagonals are one bin
    return sum(power[b] for b in bins) / power.sum() * 1e4


def main():
    torch.set_num_threads(2)
    print("| weights | " + " | ".join(f"{n}: x4 period 4 / x2 period 2" for n in FACES) + " |")
    print("|---|" + "---:|" * len(FACES))
    for spec in sys.argv[1:]:
        label, _, roots = spec.partition("=")
        model, _, label = label.rpartition(":")
        r2, r4 = roots.split(",")
        x2 = load_upscaler("64to128", model=model or "sharp", weights=r2)
        x4 = chain(x2, load_upscaler("128to256", model=model or "sharp", weights=r4))
        cells = []
        for name, (cx, cy) in FACES.items():
            part = Image.open(ROOT / "examples" / name).convert("RGB").crop((cx - 64, cy - 64, cx + 64, cy + 64))
            cells.append(f"{energy_at_period(x4(part), 4):.2f} / {energy_at_period(x2(part), 2):.2f}")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
