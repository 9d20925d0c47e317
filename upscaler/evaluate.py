"""The cats/val table: every stage, classical interpolation vs. the learned models.

Protocol (fixed size, as in the reference's figures): ground truth = centre square of
the photo resized to 512x512 (PIL bicubic); a stage's input = that 512 image
downscaled to the stage's input size; its target = the 512 image at the stage's output
size. PSNR / SSIM on Y (BT.601 studio range), border = the stage's factor.

Rows: bilinear, bicubic, lanczos, each model found in the weights root, and for 64to512
the model's three 2x stages chained without fine-tuning.
"""
import json
from pathlib import Path

from PIL import Image

from .data import eval_pair
from .inference import Upscaler
from .metrics import psnr_ssim
from .stages import STACK_STAGE, STAGES, TWO_X_STAGES
from .weights import WeightsError, load_model

CLASSICAL = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def image_files(folder):
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _chain(ups):
    def run(img):
        for up in ups:
            img = up(img)
        return img
    return run


def evaluate(data_dir, weights=None, models=("seed", "default"), stages=tuple(STAGES), limit=None,
             progress=True, **upscaler_kwargs):
    """-> {"stages": {stage: {row: {"psnr": .., "ssim": ..}}}, "images": n}."""
    from tqdm.auto import tqdm

    files = image_files(data_dir)[:limit]
    photos = [Image.open(f).convert("RGB") for f in files]
    result = {"images": len(photos), "data": str(data_dir), "stages": {}}
    for stage_name in stages:
        stage = STAGES[stage_name]
        pairs = [eval_pair(p, stage) for p in photos]
        methods = {name: (lambda img, r=r: img.resize((img.width * stage.factor, img.height * stage.factor), r))
                   for name, r in CLASSICAL.items()}
        for model in models:
            try:
                net, _ = load_model(model, stage_name, weights=weights)
            except WeightsError:
                continue
            methods[model] = Upscaler(net, model, stage_name, **upscaler_kwargs)
            if stage_name == STACK_STAGE:
                try:
                    parts = [Upscaler(load_model(model, s, weights=weights)[0], model, s, **upscaler_kwargs)
                             for s in TWO_X_STAGES]
                    methods[f"{model} (2x stages chained, no fine-tuning)"] = _chain(parts)
                except WeightsError:
                    pass
        rows = {}
        for name, fn in methods.items():
            scores = [psnr_ssim(fn(lr), hr, stage.factor)
                      for lr, hr in tqdm(pairs, desc=f"{stage_name} {name}", disable=not progress, leave=False)]
            rows[name] = {"psnr": round(sum(s[0] for s in scores) / len(scores), 3),
                          "ssim": round(sum(s[1] for s in scores) / len(scores), 4)}
        result["stages"][stage_name] = rows
    return result


def format_table(result) -> str:
    """Markdown: one row per method, PSNR / SSIM per stage."""
    stages = list(result["stages"])
    names = []
    for rows in result["stages"].values():
        names += [n for n in rows if n not in names]
    head = "| method | " + " | ".join(f"{s} PSNR / SSIM" for s in stages) + " |"
    lines = [head, "|---|" + "---:|" * len(stages)]
    for n in names:
        cells = []
        for s in stages:
            r = result["stages"][s].get(n)
            cells.append(f"{r['psnr']:.2f} / {r['ssim']:.4f}" if r else "")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save(result, path):
    Path(path).write_text(json.dumps(result, indent=2))
