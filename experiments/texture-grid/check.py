"""The grid check of the texture-term runs (README.md beside this file): the median
``metrics.checkerboard`` (energy at periods of 2 and 4 pixels over the truth's, the larger)
and crispness at x2 (64to128) and x4 (64to128 then 128to256, as the demo's 4x), on the last
20 training photos: a square crop of each, shrunk 2x or 4x with PIL bicubic.

    python experiments/texture-grid/check.py photo sharp sharp@../sharp2-out/final sharp@../sharp2-out/t10

Each argument is a model of the bundled weights, or MODEL@ROOT for another weights root.
"""
import statistics
import sys
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from upscaler.inference import load_upscaler  # noqa: E402
from upscaler.metrics import checkerboard, crispness  # noqa: E402
from upscaler.pipeline import chain  # noqa: E402
from upscaler.protocol import image_files  # noqa: E402

PHOTOS = image_files(ROOT.parent / "shared" / "data" / "cats" / "train")[-20:]


def main():
    torch.set_num_threads(2)
    print("| weights | grid x2 | grid x4 | crispness x2 | crispness x4 |")
    print("|---|---:|---:|---:|---:|")
    for spec in sys.argv[1:]:
        model, _, root = spec.partition("@")
        x2 = load_upscaler("64to128", model=model, weights=root or None)
        ups = {2: x2, 4: chain(x2, load_upscaler("128to256", model=model, weights=root or None))}
        grid, crisp = {2: [], 4: []}, {2: [], 4: []}
        for f in PHOTOS:
            photo = Image.open(f).convert("RGB")
            side = min(photo.size) // 4 * 4
            truth = photo.crop((0, 0, side, side))
            for scale, up in ups.items():
                out = up(truth.resize((side // scale,) * 2, Image.BICUBIC))
                grid[scale].append(checkerboard(out, truth))
                crisp[scale].append(crispness(out, truth))
        m = {k: {s: statistics.median(v) for s, v in d.items()} for k, d in (("grid", grid), ("crisp", crisp))}
        print(f"| {spec} | {m['grid'][2]:.2f} | {m['grid'][4]:.2f} | {m['crisp'][2]:.2f} | {m['crisp'][4]:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
