"""Image in, image out: the one path every caller takes (app, CLI, benchmarks).

``Upscaler.__call__``: EXIF orientation -> split off alpha, pick a working mode ->
float tensor in [0, 1] -> pad to the network's size multiple -> overlapping tiles ->
network (no_grad, chosen device and dtype, optional self-ensemble) -> stitch -> crop ->
alpha resized with bicubic and rejoined -> PIL image of the input's mode family.
"""
import copy
import functools
import logging
import math
import os
import platform
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import runtimes
from .images import oriented
from .models import (
    DEFAULT_MODEL,
    blend_networks,
    blend_strength,
    blending_families,
    from_model_range,
    get_family,
    to_model_range,
)
from .stages import get_stage
from .weights import load_model

log = logging.getLogger("upscaler")

# CPU inference (backend "torch"): channels_last weights, and bf16 for networks that list bfloat16 in
# ``reduced_dtypes`` on CPUs with AMX. Chosen by benchmarks/speed.py and
# benchmarks/runtime_speed.py (README "Speed"): on an AMX CPU bf16 was the fastest variant
# whose PSNR on cats/val moves by less than 0.05 dB; on a CPU with AVX-512-BF16 but no AMX
# the same network ran about 1.5x slower in bf16 than in fp32 (64->512 of 64x64, timed in
# turn), and without either bf16 is emulated, slower still. So only AMX gets bf16.
#
# How: the network's weights are cast once, on a copy (autocast re-casts them on every
# call; cast once, the 64->512 network takes about 0.91 of autocast's time in speed.py's
# alternating comparison), and the networks keep their image path in float32
# (``models.Describes``). Only the weights are made channels_last: oneDNN then runs the
# convolutions channels_last, while the 3-channel image stays in the default layout, where
# bilinear interpolation was faster in an ad-hoc check on this CPU (no committed benchmark).
CPU_CHANNELS_LAST = True
# The smallest input tile an out-of-memory retry goes down to (input pixels a side).
MIN_TILE = 32


def cpu_has_native_bf16() -> bool:
    """AMX or AVX-512-BF16. torch has no public call for it: these two private ones are
    checked by tests/test_private_apis.py, which fails when an upgrade removes them (here
    they would read as "no", and bf16 CPUs would fall back to float32, slower)."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(bool(probe()) for probe in probes if probe is not None)


def describe_device(device="cpu") -> str:
    """What a results table names the hardware by: the GPU's name, or the CPU's model
    (from /proc/cpuinfo where there is one), its core count and whether it runs bf16 natively."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    except OSError:
        pass
    bf16 = ", native bf16" if cpu_has_native_bf16() else ""
    return f"cpu ({model}, {os.cpu_count()} cores{bf16})"


def pick_device(device=None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# The dtype names that load_upscaler, the command line and the app's UPSCALER_DTYPE accept.
DTYPES = ("float32", "bfloat16", "float16")


def pick_dtype(device: torch.device, dtype=None, net=None) -> torch.dtype:
    """An explicit dtype (name or torch.dtype) wins; otherwise the fastest one the network
    lists as safe (``net.reduced_dtypes``) that the device runs fast (on a CPU:
    ``runtimes.cpu_default_dtype``), else float32."""
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype!r}: use {', '.join(DTYPES)}")
        return getattr(torch, dtype)
    if dtype is not None:
        return dtype
    safe = getattr(net, "reduced_dtypes", ())
    if device.type == "cuda":
        if "bfloat16" in safe and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16 if "float16" in safe else torch.float32
    return runtimes.cpu_default_dtype(net)


# ------------------------------------------------------------------ PIL <-> tensor
def _to_working(img: Image.Image):
    """-> (float32 HxWx3 array in [0,1], alpha as a PIL 'L' image or None, output kind).

    output kind: "RGB", "L" (gray in, gray out) or "I;16" (16-bit gray in and out).
    """
    img = oriented(img)  # EXIF orientation applied; the first frame of an animation
    mode = img.mode
    if mode in ("P", "PA"):
        img = img.convert("RGBA" if (mode == "PA" or "transparency" in img.info) else "RGB")
    elif mode == "1":
        img = img.convert("L")
    elif mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # Mode "I" (32-bit integers) is how PIL opens many 16-bit PNGs and TIFFs: read as
        # 16-bit, 0..65535, always. (Guessing the scale from the data would turn a dark
        # 16-bit image, all values under 256, into a bright 8-bit one.)
        a = np.clip(np.asarray(img, dtype=np.float32) / 65535.0, 0, 1)
        return np.repeat(a[..., None], 3, axis=2), None, "I;16"
    elif mode == "F":
        a = np.clip(np.asarray(img, dtype=np.float32), 0, 1)
        return np.repeat(a[..., None], 3, axis=2), None, "L"
    elif mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...
    alpha = None
    if img.mode in ("RGBA", "LA"):
        alpha = img.getchannel("A")
        img = img.convert("RGB" if img.mode == "RGBA" else "L")
    kind = "L" if img.mode == "L" else "RGB"
    a = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return a, alpha, kind


def _from_working(a: np.ndarray, alpha, kind: str) -> Image.Image:
    """HxWx3 integer array (uint8, or 0..65535 for kind "I;16") -> PIL image."""
    if kind == "I;16":
        return Image.fromarray(a.mean(axis=2).round().astype(np.uint16))  # mode I;16
    if kind == "L":
        out = Image.fromarray(a.mean(axis=2, dtype=np.float32).round().astype(np.uint8))
    else:
        out = Image.fromarray(np.ascontiguousarray(a, dtype=np.uint8))
    if alpha is not None:
        out.putalpha(alpha.resize(out.size, Image.BICUBIC))
    return out


# ------------------------------------------------------------------------ Upscaler
class Upscaler:
    """A loaded network plus everything needed to apply it to real images.

    tile: input-side tile size in pixels (0 = whole image); tile_pad: overlap each side,
    at least the network's receptive field so tiled == untiled. Both are rounded to the
    network's ``size_multiple`` so stride-2 networks see the same pixel grid per tile.
    backend: what runs the network (``runtimes.BACKENDS``); "torch", the default here, is
    eager PyTorch; ``load_upscaler`` defaults to "auto", the fastest installed.
    """

    def __init__(self, net, stage, device=None, dtype=None, channels_last=None, tile=None, tile_pad=None,
                 self_ensemble=False, model=None, source="", backend="torch"):
        self.stage = get_stage(stage)
        self.model, self.source = model or type(net).__name__, source  # labels, for people
        self.device = pick_device(device)
        self.backend = runtimes.pick_backend(backend, self.device)
        if self.backend == "torch":
            self.dtype = pick_dtype(self.device, dtype, net)
        else:
            self.dtype = runtimes.runtime_dtype(self.backend, net, dtype)
        self.channels_last = CPU_CHANNELS_LAST if channels_last is None else channels_last
        self.factor = net.factor
        self.multiple = net.size_multiple
        m = self.multiple  # tiles bound memory; they overlap by the receptive field
        self.tile = _round_up(net.default_tile if tile is None else tile, m)
        self.tile_pad = _round_up(net.receptive_field if tile_pad is None else tile_pad, m)
        self.self_ensemble = self_ensemble
        # A copy, always: eval(), the device, the dtype and channels-last must not reach the
        # caller's module (the app keeps its float32 networks for blends and ONNX export).
        if self.backend == "torch":
            self.net = copy.deepcopy(net).eval().to(self.device, self.dtype)
            if self.channels_last:
                self.net = self.net.to(memory_format=torch.channels_last)
            self.run_network = self.net
        else:  # exported and compiled in float32 on the first call; the runtime casts
            self.net = copy.deepcopy(net).eval().float()
            self.run_network = runtimes.graph_network(self.backend, self.net, self.dtype)

    def __repr__(self):
        return (f"Upscaler(model={self.model!r}, stage={self.stage.name!r}, x{self.factor}, "
                f"device={self.device}, backend={self.backend!r}, dtype={self.dtype}, source={self.source!r})")

    def warm_up(self):
        """Compile a graph runtime's network now rather than on the first image."""
        if self.backend != "torch":
            self.run_network.compile()

    # -- tensors ---------------------------------------------------------------
    @torch.no_grad()
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Nx3xhxw in [0,1], h and w multiples of size_multiple -> Nx3x(fh)x(fw) float32."""
        y = self.run_network(to_model_range(x.to(self.device), self.net))  # float32 in; see CPU_CHANNELS_LAST
        return from_model_range(y.float(), self.net)

    def _forward_ensemble(self, x):
        if not self.self_ensemble:
            return self._forward(x)
        # The 8 symmetries of the square: run each, undo it, average (EDSR's "+").
        out = 0
        for k in range(4):
            for flip in (False, True):
                t = torch.rot90(x, k, (2, 3))
                t = t.flip(3) if flip else t
                y = self._forward(t)
                y = y.flip(3) if flip else y
                out = out + torch.rot90(y, -k, (2, 3))
        return out / 8

    def upscale_tensor(self, x: torch.Tensor, progress=None, quantize: int | None = None) -> torch.Tensor:
        """Nx3xHxW float in [0, 1] (any H, W) -> Nx3x(fH)x(fW) on the CPU.

        quantize=None: float in [0, 1]. quantize=255 or 65535: integers (uint8 / int32)
        rounded tile by tile, so a big image's output buffer is 1/4 the size of float32.

        Out of memory on the device (a GPU shared with other jobs; the most common failure
        users of upscalers report) halves the tile and tries again, down to MIN_TILE input
        pixels; below that it raises ``MemoryError`` with a message for the person.
        """
        tile = self.tile
        while True:
            try:
                return self._upscale_tiles(x, tile, progress, quantize)
            except torch.OutOfMemoryError:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                h, w = x.shape[2:]
                smaller = _round_up((tile or max(h, w)) // 2, self.multiple)
                if smaller < MIN_TILE or smaller >= (tile or max(h, w)):
                    raise MemoryError(f"out of memory on {self.device} even in tiles of {tile or max(h, w)} px; "
                                      "try a smaller image or a smaller scale") from None
                warnings.warn(f"out of memory on {self.device} with tiles of {tile or 'the whole image'}; "
                              f"retrying with {smaller} px tiles", RuntimeWarning, stacklevel=2)
                tile = smaller

    def _upscale_tiles(self, x, tile, progress, quantize):
        n, c, h, w = x.shape
        f, m = self.factor, self.multiple
        x = _pad_to(x, _round_up(h, m), _round_up(w, m))
        H, W = x.shape[2:]

        def finish(y):
            y = y.clamp_(0, 1)
            return y if quantize is None else (y * quantize).round_().to(torch.uint8 if quantize == 255 else torch.int32)

        if not tile or (H <= tile and W <= tile):
            y = finish(self._forward_ensemble(x).cpu())
            if progress:
                progress(1, 1)
            return y[:, :, :h * f, :w * f]
        dtype = torch.float32 if quantize is None else (torch.uint8 if quantize == 255 else torch.int32)
        y = torch.empty(n, c, h * f, w * f, dtype=dtype)
        t, p = tile, self.tile_pad
        rows, cols = math.ceil(H / t), math.ceil(W / t)
        for i in range(rows):
            for j in range(cols):
                y0, x0 = i * t, j * t
                y1, x1 = min(y0 + t, H), min(x0 + t, W)
                # the tile plus its overlap, clipped to the image
                py0, px0 = max(y0 - p, 0), max(x0 - p, 0)
                py1, px1 = min(y1 + p, H), min(x1 + p, W)
                out = finish(self._forward_ensemble(x[:, :, py0:py1, px0:px1]).cpu())
                # keep the tile's centre, and nothing of the padding beyond h x w
                oy1, ox1 = min(y1, h), min(x1, w)
                if oy1 > y0 and ox1 > x0:
                    y[:, :, y0 * f:oy1 * f, x0 * f:ox1 * f] = out[
                        :, :, (y0 - py0) * f:(oy1 - py0) * f, (x0 - px0) * f:(ox1 - px0) * f]
                if progress:
                    progress(i * cols + j + 1, rows * cols)
        return y

    # -- images ----------------------------------------------------------------
    def __call__(self, img: Image.Image, progress=None) -> Image.Image:
        """Upscale a PIL image of any size and mode by ``self.factor``."""
        a, alpha, kind = _to_working(img)
        x = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None]
        del a
        y = self.upscale_tensor(x, progress, quantize=65535 if kind == "I;16" else 255)
        return _from_working(y[0].permute(1, 2, 0).numpy(), alpha, kind)


def _round_up(v: int, m: int) -> int:
    return int(math.ceil(v / m) * m) if v else 0


def _pad_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Pad bottom/right to h x w: mirror where the image is big enough, else repeat edges."""
    ph, pw = h - x.shape[2], w - x.shape[3]
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < x.shape[2] and pw < x.shape[3] else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


@functools.lru_cache(maxsize=16)
def _cached(stage, model, weights, repo_id, revision, device, dtype, self_ensemble, tile, denoise_strength, backend):
    net, source = load_model(model, stage, weights, repo_id, revision)
    label = model
    if denoise_strength is not None:
        base = get_family(model).blend_base
        if base is None:
            raise ValueError(f"denoise_strength needs a model that has a clean twin to blend with "
                             f"({blending_families()}), not {model!r}")
        net = blend_networks(load_model(base, stage, weights, repo_id, revision)[0], net, denoise_strength)
        label = f"{model} ({get_family(model).strength_label} {denoise_strength:g})"  # rounded by blend_strength
    up = Upscaler(net, stage, device=device, dtype=dtype, self_ensemble=self_ensemble, tile=tile,
                  model=label, source=source, backend=backend)
    log.info("%s %s runs on %s (%s)", label, stage.name, up.backend, str(up.dtype).replace("torch.", ""))
    return up


def load_upscaler(stage, model: str = DEFAULT_MODEL, weights=None, repo_id=None, revision=None,
                  device=None, dtype=None, self_ensemble: bool = False, tile=None,
                  denoise_strength: float | None = None, backend: str = "auto") -> Upscaler:
    """The public entry point: a callable ``PIL.Image -> PIL.Image`` for one stage.

    stage: "64to128", "128to256", "256to512" (x2) or "64to512" (x8), or a Stage.
    model: a family of ``upscaler.models.FAMILIES``.
    weights: a local folder in the weights layout; repo_id/revision: a Hub model repo;
    neither: the bundled ``weights/``. Loaded once per argument set and cached.
    denoise_strength: 0..1, for a model with a ``blend_base``: a blend of its weights with
    that family's (``models.blend_networks``), rounded as ``models.blend_strength`` says (to
    0.01); None is the network itself (= 1). ``photo``: its denoise strength (0 = the clean
    ``default``); ``sharp``: its invented detail (0 = ``photo``, faithful).
    backend: "auto" (the fastest installed runtime for the device: ``runtimes.AUTO_ORDER``),
    "torch" (eager PyTorch), "openvino" or "onnxruntime" (CPU graph runtimes).
    """
    stage = get_stage(stage)
    weights = os.fspath(weights) if weights is not None else None
    dtype = str(dtype).replace("torch.", "") if dtype is not None else None
    device = str(device) if device is not None else None
    strength = None if denoise_strength is None else blend_strength(denoise_strength)
    return _cached(stage, model, weights, repo_id, revision, device, dtype, self_ensemble, tile, strength, backend)
