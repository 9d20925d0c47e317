"""Real-photo degradations: turn a clean high-res patch into the kind of low-res input a
visitor uploads (a small, blurred, noisy JPEG), as batched tensor operations on the
training device.

Why: a network trained only on clean bicubic pairs learns that every edge in its input is
a real edge. Given a JPEG it sharpens the 8x8 block edges into streaks. Real-ESRGAN's
PSNR-oriented first stage (Real-ESRNet) is trained on synthetic degradations instead;
this is that idea, sized for our small inputs:

1. ``clean_fraction`` of the samples stay exactly the clean bicubic pairs. A mix with no
   clean samples learns to sharpen everything and falls below bicubic on clean input.
2. Blur (isotropic or anisotropic Gaussian, random angle) on ``blur_prob`` of the rest.
   Sigma is in *input* pixels (the grid the visitor's photo has). The blur is applied
   before the last 2x of the downscale (for a 2x stage: on the HR patch), so the downscale
   then sees a blurred image, as a camera's sensor does; on that grid sigma is doubled.
3. The downscale method, per sample: bicubic (PIL's), antialiased bilinear, or area.
4. Noise on ``noise_prob`` of them: Gaussian (colour, or the same on all channels: gray)
   or Poisson (shot noise: its spread grows with the brightness).
5. Rounding to 8 bits, then JPEG on ``jpeg_prob`` of them, at a quality drawn from
   ``jpeg_quality`` (``jpeg()`` below: libjpeg's tables, 4:2:0 chroma).

One round, not Real-ESRGAN's two: at 32-64 px inputs a second round of blur and JPEG
destroys most of the signal.

Every random draw comes from the ``torch.Generator`` the caller passes, which
``PairMaker`` keys by (seed, process, step): a resumed run sees exactly the same inputs.
"""
import dataclasses
import math

import torch
import torch.nn.functional as F

from .resize import pil_bicubic


@dataclasses.dataclass(frozen=True)
class Degradations:
    """The distribution of degradations (the training recipe of the ``photo`` family)."""

    clean_fraction: float = 0.3
    blur_prob: float = 0.4
    blur_sigma: tuple = (0.2, 1.0)        # input pixels
    anisotropic_prob: float = 0.5         # of the blurred: sigma_x != sigma_y, rotated
    resize_methods: tuple = ("bicubic", "bilinear", "area")
    noise_prob: float = 0.4
    gaussian_sigma: tuple = (1.0, 10.0)   # of 255
    gray_noise_prob: float = 0.4
    poisson_prob: float = 0.3             # of the noisy: Poisson instead of Gaussian
    poisson_scale: tuple = (0.25, 2.0)    # a value v (0..255) counts v / scale photons
    jpeg_prob: float = 0.85
    jpeg_quality: tuple = (30, 95)


PHOTO = Degradations()
NAMED = {"none": None, "photo": PHOTO}


# -------------------------------------------------------------------------- JPEG
# The standard (ITU T.81 Annex K) quantisation tables, as libjpeg scales them by quality.
_LUMA = torch.tensor([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=torch.float32).view(8, 8)
_CHROMA = torch.tensor([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99], dtype=torch.float32).view(8, 8)


def quant_tables(quality: torch.Tensor):
    """N qualities (1..100) -> luma and chroma tables, N x 8 x 8 (libjpeg's jpeg_quality_scaling
    and jpeg_add_quant_table with force_baseline)."""
    q = quality.float().clamp(1, 100)
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q)[:, None, None]
    def scaled(base):
        return torch.floor((base.to(q.device) * scale + 50) / 100).clamp(1, 255)
    return scaled(_LUMA), scaled(_CHROMA)


def _dct_matrix(device):
    k = torch.arange(8, dtype=torch.float32, device=device)
    m = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    m[0] /= math.sqrt(2)
    return m  # orthonormal: coefficients = M @ block @ M.T


def _blocks_quantised(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W (0..255, H, W multiples of 8) -> the plane after DCT, quantisation
    with ``table`` (N x 8 x 8) and the inverse DCT."""
    n, _, h, w = plane.shape
    m = _dct_matrix(plane.device)
    blocks = (plane - 128).view(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)  # N, by, bx, 8, 8
    coef = m @ blocks @ m.T
    t = table[:, None, None]
    coef = torch.round(coef / t) * t
    out = m.T @ coef @ m
    return (out.permute(0, 1, 3, 2, 4).reshape(n, 1, h, w) + 128).clamp(0, 255).round()


def jpeg(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG-compress and decode N x 3 x H x W images (0..255) at per-sample ``quality``,
    as PIL (libjpeg) does by default: JFIF YCbCr, 4:2:0 chroma (2x2 mean), 8x8 DCT,
    quantisation with the scaled standard tables, and on decoding a triangle ("fancy")
    chroma upsampling. Returns 0..255 integers as floats."""
    n, _, h, w = x.shape
    # edges replicated to whole 16x16 MCUs, as the encoder does
    ph, pw = -h % 16, -w % 16
    x = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    y = (0.299 * r + 0.587 * g + 0.114 * b).round()
    cb = (-0.168736 * r - 0.331264 * g + 0.5 * b + 128).round().clamp(0, 255)
    cr = (0.5 * r - 0.418688 * g - 0.081312 * b + 128).round().clamp(0, 255)
    chroma = F.avg_pool2d(torch.cat([cb, cr], 1), 2).round()
    qy, qc = quant_tables(quality.to(x.device))
    y = _blocks_quantised(y, qy)
    cb = _blocks_quantised(chroma[:, 0:1], qc)
    cr = _blocks_quantised(chroma[:, 1:2], qc)
    # fancy upsampling is a 3/4, 1/4 triangle filter: bilinear with half-pixel centres
    chroma = F.interpolate(torch.cat([cb, cr], 1), scale_factor=2, mode="bilinear", align_corners=False)
    cb, cr = chroma[:, 0:1] - 128, chroma[:, 1:2] - 128
    rgb = torch.cat([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
    return rgb.clamp(0, 255).round()[:, :, :h, :w]


# ---------------------------------------------------------------------- blur etc.
def gaussian_kernels(sigma_x, sigma_y, angle, size: int) -> torch.Tensor:
    """N anisotropic Gaussian kernels, N x size x size, each summing to 1."""
    r = torch.arange(size, dtype=torch.float32, device=sigma_x.device) - (size - 1) / 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    c, s = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    u, v = c * xx + s * yy, -s * xx + c * yy
    k = torch.exp(-0.5 * ((u / sigma_x[:, None, None]) ** 2 + (v / sigma_y[:, None, None]) ** 2))
    return k / k.sum((1, 2), keepdim=True)


def blur(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Each image of N x C x H x W convolved with its own kernel (N x k x k), edges reflected."""
    n, c, h, w = x.shape
    k = kernels.shape[-1]
    xp = F.pad(x.reshape(1, n * c, h, w), (k // 2,) * 4, mode="reflect")
    weight = kernels.repeat_interleave(c, 0)[:, None]
    return F.conv2d(xp, weight, groups=n * c).view(n, c, h, w)


def resize(x: torch.Tensor, size, method: str) -> torch.Tensor:
    """0..255 images to ``size`` by a named method (bicubic: PIL's, rounded per pass)."""
    if method == "bicubic":
        return pil_bicubic(x, size)
    if method == "bilinear":
        return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    if method == "area":
        return F.interpolate(x, size=size, mode="area")
    raise ValueError(f"unknown resize method {method!r}")


def _uniform(g, n, lo, hi):
    return lo + (hi - lo) * torch.rand(n, generator=g)


# ------------------------------------------------------------------------ the lot
@torch.no_grad()
def degrade(hr: torch.Tensor, factor: int, g: torch.Generator, spec: Degradations = PHOTO) -> torch.Tensor:
    """HR patches (N x 3 x H x W, 0..255 on any device) -> degraded LR inputs
    (N x 3 x H/f x W/f, 0..255 integers as floats).

    Per-sample choices are drawn on the CPU from ``g``; per-pixel noise from a generator on
    the images' device seeded from ``g``, so the result does not depend on the device's
    default generator."""

    n, _, h, w = hr.shape
    dev = hr.device
    lr_size = (h // factor, w // factor)
    clean = torch.rand(n, generator=g) < spec.clean_fraction
    out = pil_bicubic(hr, lr_size)
    work = (~clean).nonzero().flatten()
    # every draw below is made for all N samples, used or not: the stream stays aligned
    do_blur = torch.rand(n, generator=g) < spec.blur_prob
    aniso = torch.rand(n, generator=g) < spec.anisotropic_prob
    sx = _uniform(g, n, *spec.blur_sigma)
    sy = torch.where(aniso, _uniform(g, n, *spec.blur_sigma), sx)
    angle = _uniform(g, n, 0, math.pi)
    method = torch.randint(len(spec.resize_methods), (n,), generator=g)
    do_noise = torch.rand(n, generator=g) < spec.noise_prob
    poisson = torch.rand(n, generator=g) < spec.poisson_prob
    gray = torch.rand(n, generator=g) < spec.gray_noise_prob
    sigma = _uniform(g, n, *spec.gaussian_sigma)
    pscale = _uniform(g, n, *spec.poisson_scale)
    do_jpeg = torch.rand(n, generator=g) < spec.jpeg_prob
    quality = torch.randint(spec.jpeg_quality[0], spec.jpeg_quality[1] + 1, (n,), generator=g)
    noise_seed = int(torch.randint(2 ** 62, (1,), generator=g))
    if len(work) == 0:
        return out

    x = hr[work.to(dev)]
    # 1. blur on the grid one 2x above the input (the HR patch for a 2x stage)
    if factor > 2:
        x = pil_bicubic(x, (lr_size[0] * 2, lr_size[1] * 2))
    b = do_blur[work]
    if b.any():
        sig_x, sig_y = sx[work][b] * 2, sy[work][b] * 2  # input pixels -> this grid's
        size = 2 * math.ceil(3 * float(max(sig_x.max(), sig_y.max()))) + 1
        k = gaussian_kernels(sig_x.to(dev), sig_y.to(dev), angle[work][b].to(dev), size)
        idx = b.nonzero().flatten().to(dev)
        x[idx] = blur(x[idx], k)
    # 2. the downscale, by each sample's method
    small = torch.empty(len(work), 3, *lr_size, device=dev)
    for i, name in enumerate(spec.resize_methods):
        sel = (method[work] == i).nonzero().flatten().to(dev)
        if len(sel):
            small[sel] = resize(x[sel], lr_size, name)
    # 3. noise
    gen = torch.Generator(device=dev).manual_seed(noise_seed)
    noisy = do_noise[work].to(dev)[:, None, None, None]
    shape = small.shape
    gauss = torch.randn(shape, generator=gen, device=dev)
    gauss = torch.where(gray[work].to(dev)[:, None, None, None], gauss[:, :1].expand(shape), gauss)
    gauss = gauss * sigma[work].to(dev)[:, None, None, None]
    # Poisson: a pixel of value v (0..255) counts v / scale photons, so its noise has a
    # spread of sqrt(v * scale): about 5.7 to 16 levels at mid-gray
    scale = pscale[work].to(dev)[:, None, None, None]
    counts = small.clamp(0, 255) / scale
    shot = (torch.poisson(counts, generator=gen) - counts) * scale
    noise = torch.where(poisson[work].to(dev)[:, None, None, None], shot, gauss)
    small = torch.where(noisy, small + noise, small).clamp(0, 255).round()
    # 4. JPEG
    j = do_jpeg[work]
    if j.any():
        idx = j.nonzero().flatten().to(dev)
        small[idx] = jpeg(small[idx], quality[work][j])
    out[work.to(dev)] = small
    return out
