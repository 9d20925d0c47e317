"""The named test conditions: a clean photo made to look like a visitor's upload, for the
evaluation (``benchmarks/realworld.py``), the demo's Compare tab ("make the small input
look like a real photo") and training's validation inputs.

Blur and noise come from the training recipe's own ``degradations.degrade``; JPEG from
PIL's encoder, the real thing a visitor's photo went through (training used the torch
copy). "mixed" is the training distribution itself, seeded per image.
"""
import io

import numpy as np
import torch
from PIL import Image

from .degradations import PHOTO, Degradations, degrade
from .resize import pil_bicubic


def _only(**kw) -> Degradations:
    off = dict(clean_fraction=0.0, blur_prob=0.0, noise_prob=0.0, jpeg_prob=0.0, resize_methods=("bicubic",))
    return Degradations(**{**off, **kw})


CONDITIONS = {
    # name: (torch degradations or None for a clean bicubic input, PIL JPEG quality or None)
    "clean": (None, None),
    "jpeg90": (None, 90),
    "jpeg75": (None, 75),
    "jpeg50": (None, 50),
    "jpeg30": (None, 30),
    "blur1+jpeg75": (_only(blur_prob=1.0, blur_sigma=(1.0, 1.0), anisotropic_prob=0.0), 75),
    "noise10+jpeg75": (_only(noise_prob=1.0, gaussian_sigma=(10.0, 10.0), poisson_prob=0.0,
                             gray_noise_prob=0.0), 75),
    "mixed": (PHOTO, None),
}


def pil_jpeg(img, quality: int):
    """``img`` saved as a JPEG by PIL at ``quality`` (its default 4:2:0) and decoded again."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(quality))
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def degraded_input(hr, size: int, condition: str, seed: int = 0):
    """A PIL image ``hr`` -> the ``size`` x ``size`` input of a test ``condition`` (PIL image).
    Seeded: the same image and seed always give the same input."""
    try:
        spec, quality = CONDITIONS[condition]
    except KeyError:
        raise ValueError(f"unknown condition {condition!r}; choose one of {', '.join(CONDITIONS)}") from None
    img = degrade_image(hr, hr.width // size, spec, seed)
    return pil_jpeg(img, quality) if quality is not None else img


def degrade_image(hr, factor: int, spec: Degradations | None, seed: int):
    """A PIL image -> its input ``factor`` times smaller, degraded by ``spec`` (None: the
    clean bicubic downscale) from a generator seeded with ``seed`` (PIL image)."""
    x = torch.from_numpy(np.array(hr.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)[None]
    if spec is None:
        lr = pil_bicubic(x, (x.shape[2] // factor, x.shape[3] // factor))
    else:
        lr = degrade(x, factor, torch.Generator().manual_seed(seed), spec)
    return Image.fromarray(lr[0].permute(1, 2, 0).clamp(0, 255).byte().numpy())
