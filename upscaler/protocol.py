"""The evaluation protocol, in one place: how a photo becomes a test pair, what the
classical baselines are, how results are scored and tabled.

Fixed-size protocol (as in the reference's figures): ground truth = the photo's centre
square resized to 512x512 (PIL bicubic); a stage's input = that 512 image downscaled to
the stage's input size; its target = the 512 image at the stage's output size. PSNR /
SSIM on Y (BT.601 studio range), border = the stage's factor (``metrics.py``).

The app's Compare tab, the CLI's ``evaluate`` and ``figures``, the validation inside
``train_accelerate.py``, the benchmarks and the model card all use this module. It
imports no training-data or inference code: a method is any ``PIL image -> PIL image``.
"""
import functools
from pathlib import Path

from PIL import Image

from .metrics import psnr_ssim
from .stages import Stage

# The classical methods shown and scored beside the networks.
CLASSICAL = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
GROUND_TRUTH_SIZE = 512


def image_files(folder) -> list[Path]:
    """The image files of a folder (by suffix), sorted."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def centre_square(img: Image.Image) -> Image.Image:
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def ground_truth(img: Image.Image) -> Image.Image:
    """A photo's ground truth: its centre square at 512x512 (PIL bicubic)."""
    return centre_square(img).resize((GROUND_TRUTH_SIZE,) * 2, Image.BICUBIC)


def stage_target(gt: Image.Image, stage: Stage) -> Image.Image:
    """The ground truth at a stage's output size (what its result is scored against)."""
    return gt.resize((stage.output_size,) * 2, Image.BICUBIC) if stage.output_size != GROUND_TRUTH_SIZE else gt


def eval_pair(img: Image.Image, stage: Stage):
    """centre square -> 512x512 ground truth -> (input at the stage's input size, target at
    its output size), both PIL images."""
    gt = ground_truth(img)
    lr = gt.resize((stage.input_size,) * 2, Image.BICUBIC)
    return lr, stage_target(gt, stage)


def classical(name: str, factor: int):
    """A classical method as ``PIL image -> PIL image`` (whole image, times ``factor``)."""
    method = CLASSICAL[name]
    return lambda img: img.resize((img.width * factor, img.height * factor), method)


@functools.lru_cache(maxsize=1)
def lpips_metric():
    """LPIPS (AlexNet, ``lpips.py``) where its weights are, else None: scores then carry
    PSNR and SSIM only. Loaded once per process."""
    from . import lpips

    return lpips.LPIPS("alex") if lpips.available("alex") else None


def score_pair(pred, target, border: int, perceptual: bool = False) -> dict:
    """{"psnr", "ssim"} of one result against its target (Y, ``border`` pixels cropped);
    with ``perceptual``, also "lpips" (AlexNet, whole image; lower is closer) where LPIPS
    is available."""
    scores = dict(zip(("psnr", "ssim"), psnr_ssim(pred, target, border)))
    if perceptual and lpips_metric() is not None:
        scores["lpips"] = lpips_metric().distance(pred, target)
    return scores


# How each score is rounded in every table here.
DECIMALS = {"psnr": 3, "ssim": 4, "lpips": 4}


def mean_scores(scores) -> dict:
    """The mean of each score over a list of ``score_pair`` dicts (the scores all of them
    have), rounded as every table here shows them (PSNR to 0.001 dB, SSIM and LPIPS to 0.0001)."""
    scores = list(scores)
    if not scores:
        raise ValueError("no scores to average")
    keys = [k for k in DECIMALS if all(k in s for s in scores)]
    return {k: round(sum(s[k] for s in scores) / len(scores), DECIMALS[k]) for k in keys}


def score(method, pairs, factor: int, progress=None, perceptual: bool = False) -> dict:
    """Mean PSNR / SSIM (Y, border = factor), and LPIPS with ``perceptual``, of ``method``
    over (lr, hr) pairs."""
    return mean_scores(score_pair(method(lr), hr, factor, perceptual)
                       for lr, hr in (progress(pairs) if progress else pairs))


def classical_scores(pairs, factor: int, names=("bilinear", "bicubic")) -> dict:
    """{name: {"psnr", "ssim"}} of the classical methods: fixed for a set of pairs, so
    callers compute them once."""
    return {name: score(classical(name, factor), pairs, factor) for name in names}


def format_table(result) -> str:
    """Markdown: one row per method, PSNR / SSIM (/ LPIPS, where measured) per stage
    (``evaluate.evaluate``'s result)."""
    stages = list(result["stages"])
    names = []
    for rows in result["stages"].values():
        names += [n for n in rows if n not in names]
    with_lpips = {s: all("lpips" in r for r in result["stages"][s].values()) for s in stages}
    head = "| method | " + " | ".join(f"{s} PSNR / SSIM" + (" / LPIPS" if with_lpips[s] else "")
                                       for s in stages) + " |"
    lines = [head, "|---|" + "---:|" * len(stages)]
    for n in names:
        cells = []
        for s in stages:
            r = result["stages"][s].get(n)
            if r is None:
                cells.append("")
                continue
            cells.append(f"{r['psnr']:.2f} / {r['ssim']:.4f}" + (f" / {r['lpips']:.3f}" if with_lpips[s] else ""))
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
