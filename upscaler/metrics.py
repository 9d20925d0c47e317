"""PSNR and SSIM on the Y channel, the protocol of published SR tables
(see ``../shared/data/README.md``):

* Y of ITU-R BT.601, studio range: Y = 16 + 65.481 R + 128.553 G + 24.966 B (RGB in [0,1]),
  computed in float64 from the 8-bit images, not rounded (as BasicSR / EDSR's evaluation);
* ``border`` pixels (= the scale) cropped from each side;
* peak 255; SSIM with an 11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03, 'valid' only.

With PIL-bicubic upscaling this reproduces the published bicubic rows
(Set5: 33.66 / 28.42 / 24.40 dB at x2 / x4 / x8), see benchmarks/quality.py.
"""
import numpy as np
from PIL import Image


def rgb_to_y(img) -> np.ndarray:
    """PIL image or HxWx3 uint8 array -> HxW float64 Y in [16, 235]."""
    a = np.asarray(img.convert("RGB") if isinstance(img, Image.Image) else img, dtype=np.float64) / 255.0
    return 16.0 + a[..., 0] * 65.481 + a[..., 1] * 128.553 + a[..., 2] * 24.966


def _prepare(pred, target, border):
    y1, y2 = rgb_to_y(pred), rgb_to_y(target)
    if y1.shape != y2.shape:
        raise ValueError(f"size mismatch: prediction {y1.shape[::-1]} vs target {y2.shape[::-1]}")
    if border:
        y1, y2 = y1[border:-border, border:-border], y2[border:-border, border:-border]
    return y1, y2


def psnr_y(pred, target, border: int = 0) -> float:
    y1, y2 = _prepare(pred, target, border)
    mse = np.mean((y1 - y2) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def psnr_rgb(a, b) -> float:
    """PSNR of two 8-bit images over every channel and pixel, peak 255: how far one way of
    computing an image is from another (a runtime from torch, the browser from the server),
    not the published-table protocol above."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"size mismatch: {x.shape} vs {y.shape}")
    mse = np.mean((x - y) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    g = np.exp(-((np.arange(size) - size // 2) ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The 2-D Gaussian window applied as two 1-D passes ('valid' positions only): the same
    numbers as the 11x11 window, in float64, at 22 multiply-adds a pixel."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = sliding_window_view(x, len(g), axis=0) @ g
    return sliding_window_view(x, len(g), axis=1) @ g


def ssim_y(pred, target, border: int = 0) -> float:
    y1, y2 = _prepare(pred, target, border)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    h, w = y1.shape
    if h < 11 or w < 11:
        raise ValueError("SSIM needs at least 11x11 pixels after the border crop")
    g = _gaussian_window()

    def blur(x):
        return _filter_valid(x, g)

    mu1, mu2 = blur(y1), blur(y2)
    s11 = blur(y1 * y1) - mu1 ** 2
    s22 = blur(y2 * y2) - mu2 ** 2
    s12 = blur(y1 * y2) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s11 + s22 + c2))
    return float(ssim_map.mean())


def psnr_ssim(pred, target, border: int = 0) -> tuple[float, float]:
    return psnr_y(pred, target, border), ssim_y(pred, target, border)


def laplacian_variance(img) -> float:
    """The variance of a 3x3 Laplacian of Y, 4 px from each border dropped: how much fine
    detail an image holds."""
    y = rgb_to_y(img)
    lap = (y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4 * y[1:-1, 1:-1])
    return float(lap[3:-3, 3:-3].var())  # with the Laplacian's own pixel: 4 px from each border


def crispness(result, truth) -> float:
    """The result's fine detail over the truth's (``laplacian_variance``): 1.0 is as much as
    the real photo. No fidelity measure (noise raises it): read it next to PSNR and LPIPS."""
    return laplacian_variance(result) / max(laplacian_variance(truth), 1e-9)


def grid_energy(img, period: int, window: int = 16) -> float:
    """How strongly Y repeats every ``period`` pixels: in each ``window`` x ``window`` tile,
    the amplitudes of its Fourier components of that period (along x, along y and on both
    diagonals) summed, then averaged over the tiles."""
    y = rgb_to_y(img)
    h, w = (y.shape[0] // window) * window, (y.shape[1] // window) * window
    if not h or not w:
        raise ValueError(f"an image of at least {window}x{window} pixels is needed")
    tiles = y[:h, :w].reshape(h // window, window, w // window, window).transpose(0, 2, 1, 3)
    spectrum = np.abs(np.fft.fft2(tiles)) / (window * window)
    k = window // period
    bins = {(k, 0), (0, k), (k, k), (k, -k % window)}  # at period 2 the diagonals are one bin
    return float(sum(spectrum[..., i, j] for i, j in bins).mean())


def checkerboard(result, truth, periods=(2, 4)) -> float:
    """A grid the photo does not have: the result's ``grid_energy`` over the truth's, at
    periods of 2 pixels (what a pixel-shuffle stage draws when a loss rewards fine detail of
    any kind) and 4 (the same grid after a second 2x stage), the larger of the two. About 1
    for a faithful result; well above 1 where a grid was drawn."""
    return max(grid_energy(result, p) / max(grid_energy(truth, p), 1e-9) for p in periods)
