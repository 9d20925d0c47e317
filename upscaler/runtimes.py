"""Where a network's arithmetic runs: PyTorch itself, or a graph runtime fed the network's
ONNX export (``export.write_onnx``, the file browser mode runs too).

Why more than torch: eager PyTorch runs the small networks here one operator at a time,
19 passes over the feature maps for the default 64->512, and on a 2-core CPU that leaves
most of the machine idle. A graph runtime fuses each convolution with its bias and PReLU
and plans the memory once. What each one fuses, and the measured table that orders
``AUTO_ORDER``: ``benchmarks/runtime_speed.py`` (README "Results", docs/speed.md).

* ``torch``: the eager network (channels-last weights, bf16 on CPUs with AMX;
  ``inference.pick_dtype``). The only backend on a GPU.
* ``openvino``: Intel's runtime (``pip install openvino``, a 59 MB wheel, about 180 MB
  installed). Reads the ONNX file, compiles it once with dynamic height and width (the
  kernels for a new tile shape are made on its first call, a few ms), and runs fp32, or
  bf16 on CPUs with AMX, where it is several times faster than fp32 (on CPUs with only
  AVX512-BF16 its bf16 was slower than its fp32 in the same table, so those get fp32).
* ``onnxruntime``: Microsoft's runtime at full graph optimisation, fp32 (its CPU provider
  has no bf16 convolutions).

``backend="auto"`` (what ``load_upscaler``, the app and the CLI use) is torch on a GPU and
the first installed runtime of ``AUTO_ORDER`` on a CPU. Every backend reads and writes
float32 NCHW in the network's value range, so ``Upscaler`` tiles, pads, blends alpha and
handles 16-bit images the same way whatever runs the network.

The ONNX files are cached by content (a hash of the network's class, configuration and
weights) under ``cache_dir()``: exported once per network and machine, shared by every
process, and by the demo's browser mode.
"""
import copy
import hashlib
import logging
import os
import threading
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("upscaler")

BACKENDS = ("auto", "torch", "openvino", "onnxruntime")
# The CPU order of ``auto``: the measured fastest first (benchmarks/runtime_speed.py).
# onnxruntime is not in it: it was slower than eager torch on the 64x64 budget case.
AUTO_ORDER = ("openvino", "torch")
# How many ONNX files the cache keeps (the newest by use): the page's denoise blends are
# one network per strength, and a public demo must not fill its disk with them.
CACHE_FILES = 64


def installed(backend: str) -> bool:
    if backend == "torch":
        return True
    try:
        __import__(backend)
    except ImportError:
        return False
    return True


def cpu_has_amx() -> bool:
    """AMX tiles (Intel Sapphire Rapids and later): where bf16 convolutions are fast enough to
    beat fp32 in a graph runtime. torch's probe is private: tests/test_private_apis.py checks it."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe()) if probe is not None else False


def cpu_default_dtype(net) -> torch.dtype:
    """The one CPU rule, for eager torch and the graph runtimes alike: bf16 where the network
    lists it as safe (``reduced_dtypes``) and the CPU has AMX; float32 everywhere else (with
    AVX-512-BF16 alone bf16 ran slower than fp32 in both: docs/speed.md, "Runtimes")."""
    return torch.bfloat16 if "bfloat16" in getattr(net, "reduced_dtypes", ()) and cpu_has_amx() else torch.float32


def pick_backend(backend: str, device: torch.device) -> str:
    """"auto" -> the backend to use on ``device``; an explicit name is checked."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: use {', '.join(BACKENDS)}")
    if backend == "auto":
        if device.type != "cpu":
            return "torch"
        return next(b for b in AUTO_ORDER if installed(b))
    if backend != "torch":
        if device.type != "cpu":
            raise ValueError(f"backend {backend!r} runs on the CPU only; use backend='torch' on {device}")
        if not installed(backend):
            raise ValueError(f"backend {backend!r} is not installed: pip install {backend}")
    return backend


def runtime_dtype(backend: str, net, dtype=None) -> torch.dtype:
    """What a graph runtime computes in: an explicit dtype wins; otherwise
    ``cpu_default_dtype`` (onnxruntime: float32 only)."""
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    if backend == "onnxruntime":
        if dtype not in (None, torch.float32):
            raise ValueError("backend 'onnxruntime' runs float32 only")
        return torch.float32
    return dtype if dtype is not None else cpu_default_dtype(net)


# ------------------------------------------------------------------- the ONNX cache
def cache_dir() -> Path:
    """``UPSCALER_CACHE``, else ``$XDG_CACHE_HOME/upscaler`` (``~/.cache/upscaler``)."""
    root = os.environ.get("UPSCALER_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "upscaler"


def network_digest(net) -> str:
    """A hash of what the network computes: its class, its configuration and its weights."""
    h = hashlib.sha256(type(net).__qualname__.encode())
    h.update(repr(getattr(net, "_hub_mixin_config", None)).encode())
    for name, tensor in net.state_dict().items():
        h.update(name.encode())
        h.update(str(tensor.dtype).encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


_export_lock = threading.Lock()


def cached_onnx(net, folder: Path | None = None) -> Path:
    """The ONNX file of ``net`` (any dtype; exported in float32), exported on first use."""
    from .export import write_onnx  # export imports inference, which imports this module

    folder = Path(folder) if folder is not None else cache_dir() / "onnx"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{network_digest(net)}.onnx"
    with _export_lock:
        if path.is_file():
            os.utime(path)  # the prune below keeps the files in use
        else:
            if next(net.parameters()).dtype != torch.float32:
                net = copy.deepcopy(net).float()  # the caller's network stays as it is
            write_onnx(net.eval(), path)
            _prune(folder, keep=CACHE_FILES)
    return path


def _prune(folder: Path, keep: int):
    files = sorted(folder.glob("*.onnx"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in files[keep:]:
        old.unlink(missing_ok=True)


# ---------------------------------------------------------------- the graph runtimes
class GraphNetwork:
    """A network run by a graph runtime: ``(x: float32 Nx3xhxw tensor) -> float32 tensor``,
    like calling the torch module. Compiled on the first call (so loading stays cheap);
    thread-safe (each thread gets its own inference request)."""

    backend = ""

    def __init__(self, net, dtype: torch.dtype, threads: int | None = None):
        self.dtype = dtype
        self._net = net  # exported on first use
        self._threads = threads
        self._compiled = None
        self._lock = threading.Lock()
        self._local = threading.local()

    def __repr__(self):
        return f"{type(self).__name__}({self.dtype})"

    def compile(self):
        """Export (or find the cached export) and compile, if not done yet."""
        with self._lock:
            if self._compiled is None:
                path = cached_onnx(self._net)
                self._compiled = self._compile(path, self._threads or torch.get_num_threads())
                log.info("%s compiled %s in %s", self.backend, path.name, str(self.dtype).replace("torch.", ""))
        return self._compiled

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        compiled = self.compile()
        runner = getattr(self._local, "runner", None)
        if runner is None:
            runner = self._local.runner = self._runner(compiled)
        y = runner(np.ascontiguousarray(x.detach().float().cpu().numpy()))
        return torch.from_numpy(y)

    def _compile(self, path: Path, threads: int):
        raise NotImplementedError

    def _runner(self, compiled):
        raise NotImplementedError


class OpenVinoNetwork(GraphNetwork):
    backend = "openvino"

    def _compile(self, path, threads):
        import openvino as ov

        precision = {torch.float32: "f32", torch.bfloat16: "bf16", torch.float16: "f16"}[self.dtype]
        core = ov.Core()
        # LATENCY: one stream that uses every thread for one request (the demo's case: one
        # image, tile after tile); THROUGHPUT split the 2 cores into streams and was slower.
        return core.compile_model(core.read_model(str(path)), "CPU", {
            "INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY"})

    def _runner(self, compiled):
        request = compiled.create_infer_request()

        def run(x):
            request.infer({0: x})
            return np.array(request.get_output_tensor(0).data)  # a copy: the next call reuses the buffer
        return run


class OnnxRuntimeNetwork(GraphNetwork):
    backend = "onnxruntime"

    def _compile(self, path, threads):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _runner(self, session):
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]


GRAPH_RUNTIMES = {"openvino": OpenVinoNetwork, "onnxruntime": OnnxRuntimeNetwork}


def graph_network(backend: str, net, dtype: torch.dtype, threads: int | None = None) -> GraphNetwork:
    return GRAPH_RUNTIMES[backend](net, dtype, threads)


def versions() -> str:
    """The installed runtimes and their versions, for logs and the page's "About"."""
    out = [f"torch {torch.__version__}"]
    for name in GRAPH_RUNTIMES:
        try:
            module = __import__(name)
            out.append(f"{name} {getattr(module, '__version__', '?').split('-')[0]}")
        except ImportError:
            pass
    return ", ".join(out)

