"""The pieces of perceptual (GAN) training: what makes the ``sharp`` family look sharp.

Real-ESRGAN's recipe, in small (Wang et al., ICCVW 2021; BasicSR's ``RealESRGANModel``):

* ``UNetDiscriminatorSN``: a U-Net discriminator with spectral norm. It judges every pixel
  (real or made up), so it can point at a soft eye or a fake strand of fur, not only at
  the image as a whole. Real-ESRGAN's has 64 features; ``num_feat`` sets ours.
* ``VGGFeatureDiscriminator``: the other choice (``--disc vgg``), small heads on frozen
  VGG16 maps, which learn from the first steps where the U-Net stays at chance.
* ``FeatureLoss``: L1 between VGG16 feature maps of the result and of the truth. The
  VGG16 weights are the ones LPIPS ships (``upscaler/lpips.py``); LPIPS-AlexNet stays the
  yardstick and is never trained on.
* The texture term (``FeatureLoss(..., with_texture=True)``): EnhanceNet's texture loss
  (Sajjadi et al., ICCV 2017). L1 between the Gram matrices of the shallow VGG16 maps, taken
  over windows (32 x 32 image pixels by default): it asks for the truth's *statistics* of
  fine detail (how much fur-like energy, in which directions) in each window, not for its
  exact pixels, which a 4x network cannot know. Unlike the adversarial term it pulls from
  the first step; it needs no discriminator to learn first. Alone at full resolution it
  taught the pixel-shuffle networks a grid every second pixel (``metrics.checkerboard``
  twice the photo's). ``texture_pool`` = 2 compares the images averaged over 2 x 2 pixels,
  which cancels such a grid, but a weaker one still grew; the grid penalties below stop it.
* ``grid_excess``: a penalty on period-2 energy beyond the truth's, tile by tile. A grid
  fainter than the truth's own fine detail passes it, and a second 2x stage sharpens that
  into a visible grid of period 4.
* ``grid_error``: the stricter one: L1 against the truth's signed period-2 components over
  larger tiles, where real detail averages out and a grid does not. Both also work at period
  4: a second stage trained on the first's results (``--input-from``) learns to sharpen the
  first's faint lattice into a cross-hatch of that period.
* ``relativistic_losses``: ESRGAN's relativistic average GAN. The discriminator says how much
  *more* real a real patch looks than the average fake, and the generator the reverse, so
  the generator gets a gradient from the real images too.
* ``artifact_map``: LDL (Liang et al., CVPR 2022). Where the result's error is locally
  noisy and larger than the EMA network's, it is most likely a GAN artefact (ringing,
  false texture): those pixels get an extra L1 pull towards the truth.

Everything takes and returns images in [0, 1] (N x 3 x H x W), float32.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from .lpips import LPIPS


class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's U-Net discriminator: three stride-2 convs down, three bilinear ups with
    skip connections, two more convs, then a one-channel map of logits (N x 1 x H x W).
    Every conv but the first and the last is spectrally normalised. The input side must be
    a multiple of 8."""

    def __init__(self, num_feat: int = 32, skip_connection: bool = True):
        super().__init__()
        f, sn = num_feat, spectral_norm
        self.skip_connection = skip_connection
        self.conv0 = nn.Conv2d(3, f, 3, 1, 1)
        self.conv1 = sn(nn.Conv2d(f, f * 2, 4, 2, 1, bias=False))
        self.conv2 = sn(nn.Conv2d(f * 2, f * 4, 4, 2, 1, bias=False))
        self.conv3 = sn(nn.Conv2d(f * 4, f * 8, 4, 2, 1, bias=False))
        self.conv4 = sn(nn.Conv2d(f * 8, f * 4, 3, 1, 1, bias=False))
        self.conv5 = sn(nn.Conv2d(f * 4, f * 2, 3, 1, 1, bias=False))
        self.conv6 = sn(nn.Conv2d(f * 2, f, 3, 1, 1, bias=False))
        self.conv7 = sn(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv8 = sn(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)

    def forward(self, x):
        act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        x0 = act(self.conv0(x * 2 - 1))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
        x4 = act(self.conv4(up(x3)))
        x4 = x4 + x2 if self.skip_connection else x4
        x5 = act(self.conv5(up(x4)))
        x5 = x5 + x1 if self.skip_connection else x5
        x6 = act(self.conv6(up(x5)))
        x6 = x6 + x0 if self.skip_connection else x6
        out = act(self.conv7(x6))
        out = act(self.conv8(out))
        return self.conv9(out)



# The VGG16 layers whose maps FeatureLoss.taps returns, by the number of the ReLU after them:
# the names a run's record gives its taps (feature loss, texture term, VGG discriminator).
VGG16_TAP_RELUS = (2, 4, 7, 10, 13)


class VGGFeatureDiscriminator(nn.Module):
    """A discriminator on the frozen VGG16 maps the feature loss already computes, not on
    pixels: Projected GAN's idea (Sauer et al., NeurIPS 2021) in small, without its random
    projections. Pretrained features tell a photo's fine detail from a smooth or made-up one
    from the first steps; on 2 cores the U-Net on pixels stayed at chance for hundreds of
    steps (docs/training.md). One small head per map (two spectrally normalised 3 x 3 convs,
    then a 1 x 1 to logits) judges every cell of it. ``taps`` picks the maps, as indices into
    ``FeatureLoss.taps`` (VGG16 ReLU 2, 4, 7, 10 and 13: 64, 128, 256, 512 and 512 channels
    at strides 1, 2, 4, 8 and 16). The default, ReLU 4, 7 and 10, never sees the image at its
    own resolution; tap 0 (ReLU 2, stride 1) adds a head that judges detail a pixel wide.
    ``forward`` takes the list of taps and returns a list of logit maps (N x 1 x h x w), one
    per head. The VGG16 itself is not part of this module, so checkpoints hold only the
    heads."""

    DEFAULT_TAPS = (1, 2, 3)
    CHANNELS = (64, 128, 256, 512, 512)  # of each of FeatureLoss.taps' maps

    def __init__(self, num_feat: int = 32, taps=DEFAULT_TAPS):
        super().__init__()
        if not taps or not set(taps) <= set(range(len(self.CHANNELS))):
            raise ValueError(f"taps must be indices of VGG16 maps, 0 to {len(self.CHANNELS) - 1}: {taps}")
        self.taps = tuple(sorted(set(taps)))
        self.depth = max(self.taps) + 1  # how many VGG16 maps it needs (``FeatureLoss.taps``' depth)
        sn = spectral_norm
        self.heads = nn.ModuleList(
            nn.Sequential(sn(nn.Conv2d(self.CHANNELS[t], num_feat, 3, 1, 1)), nn.LeakyReLU(0.2),
                          sn(nn.Conv2d(num_feat, num_feat, 3, 1, 1)), nn.LeakyReLU(0.2),
                          nn.Conv2d(num_feat, 1, 1))
            for t in self.taps)

    def forward(self, taps):
        return [head(taps[i]) for head, i in zip(self.heads, self.taps)]


# The texture term's window, in cells of its first map. The maps it may compare, the first
# three taps (VGG16 ReLU 2, 4 and 7), are at strides 1, 2 and 4 of the (pooled) image, so
# their windows are 16, 8 and 4 cells: 32 image pixels with the default 2 x 2 pooling.
TEXTURE_WINDOW = 16
TEXTURE_TAPS = (0, 1, 2)


def gram_matrices(x, window: int):
    """The Gram matrix (C x C) of each ``window`` x ``window`` tile of feature maps x
    (N x C x H x W): which channels fire together in the tile, with positions thrown away.
    A partial tile at the right or bottom edge is left out."""
    c = x.shape[1]
    tiles = x.unfold(2, window, window).unfold(3, window, window)  # N C h w win win
    tiles = tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, window * window)
    return tiles @ tiles.transpose(1, 2) / (window * window)


class FeatureLoss(nn.Module):
    """The weighted L1 distance between VGG16 feature maps (after the ReLUs of convs 2, 4,
    7, 10 and 13, the layers LPIPS-VGG taps) of two batches in [0, 1]. Frozen; gradients
    flow to the inputs. ``layer_weights`` as Real-ESRGAN's (0.1, 0.1, 1, 1, 1): the deep
    layers carry texture, the shallow ones would mostly repeat the pixel loss. A layer of
    weight 0 is not computed when nothing deeper is needed.

    ``with_texture=True`` also returns the texture term (the module's docstring) from the
    same VGG16 pass: the L1 distance of the windowed Gram matrices of ``texture_taps`` (of
    ``TEXTURE_TAPS``), on the images averaged over ``texture_pool`` x ``texture_pool`` pixels
    (1: full resolution), which needs a VGG16 pass of its own."""

    def __init__(self, layer_weights=(0.1, 0.1, 1.0, 1.0, 1.0), texture_taps=TEXTURE_TAPS, texture_pool: int = 2,
                 weights_dir=None):
        super().__init__()
        if not set(texture_taps) <= set(TEXTURE_TAPS):
            raise ValueError(f"texture taps {texture_taps}: choose from {TEXTURE_TAPS}")
        self.vgg = LPIPS("vgg16", weights_dir)  # its convolutions, not its distance
        self.layer_weights = tuple(layer_weights)
        self.texture_taps, self.texture_pool = tuple(texture_taps), texture_pool
        self.depth = max([t + 1 for t in self.texture_taps] + [i + 1 for i, w in enumerate(self.layer_weights) if w])

    def taps(self, x, depth=None):
        return self.vgg.taps(x * 2 - 1, depth or self.depth)

    def forward(self, result, truth, with_texture: bool = False, maps=None):
        """``maps``: (result's taps, truth's taps) from ``taps`` at ``depth`` or deeper, when
        the caller has them already (the VGG discriminator judges the same maps)."""
        if maps is None:
            with torch.no_grad():
                truth_taps = self.taps(truth)
            taps = self.taps(result)
        else:
            taps, truth_taps = maps
        feature = sum(w * F.l1_loss(a, b) for w, a, b in zip(self.layer_weights, taps, truth_taps) if w)
        if not with_texture:
            return feature
        if self.texture_pool > 1:
            depth = max(self.texture_taps) + 1
            with torch.no_grad():
                truth_taps = self.taps(F.avg_pool2d(truth, self.texture_pool), depth)
            taps = self.taps(F.avg_pool2d(result, self.texture_pool), depth)
        texture = sum(F.l1_loss(gram_matrices(taps[i], TEXTURE_WINDOW >> i),
                                gram_matrices(truth_taps[i], TEXTURE_WINDOW >> i)) for i in self.texture_taps)
        return feature, texture


def discriminator_loss(real_logits, fake_logits):
    """ESRGAN's relativistic average loss for the discriminator: real patches should look
    more real than the average fake, fakes less real than the average real one. Lists of
    logit maps (``VGGFeatureDiscriminator``'s heads) are compared head by head and averaged."""
    if isinstance(real_logits, (list, tuple)):
        return sum(map(discriminator_loss, real_logits, fake_logits)) / len(real_logits)
    bce = F.binary_cross_entropy_with_logits
    real_rel, fake_rel = real_logits - fake_logits.mean(), fake_logits - real_logits.mean()
    return (bce(real_rel, torch.ones_like(real_rel)) + bce(fake_rel, torch.zeros_like(fake_rel))) / 2


def generator_loss(real_logits, fake_logits):
    """The same game from the generator's side: the labels swapped. Its gradient reaches the
    generator through the fakes (``real_logits`` is computed without a graph to it)."""
    return discriminator_loss(fake_logits, real_logits)


# The grid penalties' default tile sides: grid_error's tiles are larger, so that the truth's
# random-phase fine detail averages out in them
GRID_WINDOW = {"excess": 16, "error": 64}


def _y_tiles(x, window: int, multiple: int):
    """BT.601 Y of images in [0, 1], cut into ``window`` x ``window`` tiles (N x h x w x win x
    win; a partial tile at the edge is left out), and the window used: one larger than the
    image shrinks to it, to a multiple of ``multiple`` (the period the tiles are read at)."""
    y = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])
    window = max(multiple, min(window, y.shape[-2] // multiple * multiple, y.shape[-1] // multiple * multiple))
    h, w = y.shape[-2] // window * window, y.shape[-1] // window * window
    return y[:, :h, :w].unfold(1, window, window).unfold(2, window, window), window


def _period2_components(x, window: int):
    """Y's three period-2 components ((-1)^x, (-1)^y, (-1)^(x+y)) in each ``window`` tile of
    full-range BT.601 Y in [0, 1], signed: N x h x w for each. A tile larger than the image
    shrinks to it (to an even side), so a small training patch still has one."""
    tiles, window = _y_tiles(x, window, 2)
    sign = 1.0 - 2.0 * (torch.arange(window, device=x.device) % 2)
    patterns = (sign[None, :].expand(window, window), sign[:, None].expand(window, window), sign[:, None] * sign)
    return [(tiles * p).mean((-2, -1)) for p in patterns]


def _period4_components(x, window: int):
    """Y's period-4 components in each ``window`` tile, signed: the cosine and sine of
    (a*x + b*y) * pi / 2 for the directions (a, b) = (1, 0), (0, 1), (1, 1), (1, -1), eight
    in all, each N x h x w. What a second 2x stage makes of the first's period-2 lattice. A
    tile larger than the image shrinks to it (to a multiple of 4)."""
    tiles, window = _y_tiles(x, window, 4)
    i = torch.arange(window, device=x.device, dtype=tiles.dtype)
    rows, cols = i[:, None].expand(window, window), i[None, :].expand(window, window)
    out = []
    for a, b in ((1, 0), (0, 1), (1, 1), (1, -1)):
        phase = (a * cols + b * rows) * (math.pi / 2)
        out += [(tiles * phase.cos()).mean((-2, -1)), (tiles * phase.sin()).mean((-2, -1))]
    return out


def _amplitude(x, window: int, period: int):
    """The summed amplitudes of Y's period-``period`` components per tile (at period 4, each
    direction's cosine and sine taken together, so the phase does not count)."""
    if period == 2:
        return sum(c.abs() for c in _period2_components(x, window))
    c = _period4_components(x, window)
    return sum((c[k] ** 2 + c[k + 1] ** 2 + 1e-12).sqrt() for k in range(0, len(c), 2))


def grid_excess(result, truth, window: int = GRID_WINDOW["excess"], period: int = 2):
    """How much more a grid of ``period`` (2 or 4) pixels the result has than the truth, per
    ``window`` tile: the amplitudes of Y's components of that period, the result's minus the
    truth's where positive, averaged. At period 2 it is differentiable kin of
    ``metrics.grid_energy`` (those three components are its three bins there). A tile with as
    much detail of that period as the truth costs nothing, so a faint grid below the truth's
    own fine detail is free: a second 2x stage then turns it into a visible one of period 4
    (``grid_error``)."""
    with torch.no_grad():
        allowed = _amplitude(truth, window, period)
    return F.relu(_amplitude(result, window, period) - allowed).mean()


def grid_error(result, truth, window: int = GRID_WINDOW["error"], period: int = 2):
    """L1 between the result's and the truth's signed components of ``period`` (2 or 4
    pixels), per ``window`` tile. ``grid_excess`` lets a grid fainter than the truth's own
    fine detail pass; the next 2x stage then turns it into a visible one of period 4. Over a
    large tile the truth's fine detail, of random phase, averages out, while a grid locked to
    the pixel lattice does not, so here even a faint grid costs about its amplitude.
    Period 4 is for a second stage trained on the first's results (``--input-from``): it
    can learn to sharpen the first's faint lattice into fur-like texture, a cross-hatch."""
    components = {2: _period2_components, 4: _period4_components}[period]
    with torch.no_grad():
        wanted = components(truth, window)
    return sum((c - t).abs() for c, t in zip(components(result, window), wanted)).mean()


# The penalties by the name --grid-loss and --grid4-loss give them
GRID_LOSSES = {"excess": grid_excess, "error": grid_error}


def _local_variance(x, ksize: int):
    """The variance of each pixel's ksize x ksize neighbourhood (reflect-padded, unbiased)."""
    pad = ksize // 2
    x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    mean = F.avg_pool2d(x, ksize, 1)
    mean_sq = F.avg_pool2d(x * x, ksize, 1)
    n = ksize * ksize
    return (mean_sq - mean * mean).clamp_min(0) * n / (n - 1)


@torch.no_grad()
def artifact_map(truth, result, ema_result, ksize: int = 7):
    """LDL's refined artefact map (N x 1 x H x W): the local variance of the result's
    residual, times the patch's residual variance to the 1/5, zero where the result is
    closer to the truth than the EMA network's (there the detail is probably real)."""
    residual = (truth - result).abs().sum(1, keepdim=True)
    residual_ema = (truth - ema_result).abs().sum(1, keepdim=True)
    patch_weight = residual.var(dim=(1, 2, 3), keepdim=True) ** (1 / 5)
    weight = patch_weight * _local_variance(residual, ksize)
    return weight.masked_fill(residual < residual_ema, 0.0)
