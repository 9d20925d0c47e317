"""Networks shaped like two well-known upscalers, for speed comparisons only (random
weights: speed does not depend on them). Re-implemented from their papers' layouts.

* SRVGGNetCompact (Real-ESRGAN's "general-x4v3" family): conv + PReLU at input
  resolution, ``num_conv`` body convolutions, pixel-shuffle, + nearest-upsampled input.
* EDSR-baseline: 16 residual blocks of 64 features, x4 tail of two pixel-shuffle steps.
"""
import torch.nn.functional as F
from torch import nn


class SRVGGNetCompact(nn.Module):
    def __init__(self, num_feat=64, num_conv=32, upscale=4):
        super().__init__()
        layers = [nn.Conv2d(3, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        layers += [nn.Conv2d(num_feat, 3 * upscale * upscale, 3, 1, 1)]
        self.body = nn.Sequential(*layers)
        self.upsampler = nn.PixelShuffle(upscale)
        self.factor = upscale

    def forward(self, x):
        return self.upsampler(self.body(x)) + F.interpolate(x, scale_factor=self.factor, mode="nearest")


class ResBlock(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n, n, 3, padding=1), nn.ReLU(True), nn.Conv2d(n, n, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class EDSRBaseline(nn.Module):
    def __init__(self, n_resblocks=16, n_feats=64, scale=4):
        super().__init__()
        self.head = nn.Conv2d(3, n_feats, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(n_feats) for _ in range(n_resblocks)],
                                  nn.Conv2d(n_feats, n_feats, 3, padding=1))
        tail = []
        for _ in range({2: 1, 4: 2, 8: 3}[scale]):
            tail += [nn.Conv2d(n_feats, 4 * n_feats, 3, padding=1), nn.PixelShuffle(2)]
        self.tail = nn.Sequential(*tail, nn.Conv2d(n_feats, 3, 3, padding=1))
        self.factor = scale

    def forward(self, x):
        h = self.head(x)
        return self.tail(h + self.body(h))
