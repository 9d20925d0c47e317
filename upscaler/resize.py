"""The exact resize: PIL's bicubic, in torch, for batches on any device.

The lowest floor of the package (it imports only torch): training data (``data.py``) and
the real-photo degradations (``degradations.py``) both build on it.
"""
import torch
import torch.nn.functional as F


def pil_bicubic(x: torch.Tensor, size) -> torch.Tensor:
    """Resize Nx3xHxW images holding 0..255 values to ``size`` (h, w) exactly as PIL's
    ``Image.BICUBIC`` does for 8-bit images: antialiased cubic (a = -0.5), width first,
    rounded to integers after each pass. Returns float values 0..255 (integers)."""
    h, w = size
    if x.shape[3] != w:
        x = F.interpolate(x, size=(x.shape[2], w), mode="bicubic", antialias=True, align_corners=False)
        x = x.clamp_(0, 255).round_()
    if x.shape[2] != h:
        x = F.interpolate(x, size=(h, w), mode="bicubic", antialias=True, align_corners=False)
        x = x.clamp_(0, 255).round_()
    return x
