"""The demo's browser mode, server side: what a page needs to run a network itself.

The page (``web/browser_mode.js``) runs the networks with onnxruntime-web. The server
only hands it two things:

* the runtime: onnxruntime-web at the version pinned in ``web/package.json``. Where
  ``npm ci`` has installed it (``web/node_modules``, as ``.ci/run`` does), the app serves
  that copy; elsewhere (a Space has no npm) the page loads the same version from the
  jsDelivr CDN, checked against ``RUNTIME_INTEGRITY`` (the file's sha384, the same bytes
  as the npm package's; ``tests/test_browser_mode.py`` checks it against the npm copy);
* the networks as ONNX files, the same files the server's graph runtimes run
  (``runtimes.cached_onnx``: exported once per network, cached by content), linked into a
  folder under readable names the first time a page asks for one. The photo model's
  denoise-strength blends exist only at run time, so they could not be bundled anyway;
  an export takes 0.02-0.23 s on the 2-core machine (the first 1.0 s, as it loads the
  exporter; ``upscaler export --all`` prints each).

``plan`` is what the page gets for one run: for each stage of the pipeline, the ONNX file's
URL and size and the facts the browser needs to tile exactly as ``Upscaler`` does
(factor, size multiple, tile, overlap, value range), plus the download's file name.
"""
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import quote

from .inference import _round_up
from .runtimes import cached_onnx

WEB = Path(__file__).resolve().parent.parent / "web"
RUNTIME_VERSION = "1.30.0"  # the version in web/package.json and its lock file
RUNTIME_FILE = "ort.webgpu.min.js"  # WebGPU and WebAssembly back ends in one script
# sha384 of dist/ort.webgpu.min.js in the onnxruntime-web 1.30.0 npm package (SRI format).
RUNTIME_INTEGRITY = "sha384-6BOUZhMpgaXRZBIj89pTWET0c7xcMe1yHACreuaBy2kUZwLd2tzCmv7MzwZccHYH"
LOCAL_DIST = WEB / "node_modules" / "onnxruntime-web" / "dist"
CDN_DIST = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{RUNTIME_VERSION}/dist/"
SCRIPT = WEB / "browser_mode.js"  # the page's side, inlined in the page's head
WORKER = WEB / "browser_worker.js"  # the worker that runs the networks, off the page's main thread
PNG_WRITER = WEB / "png_writer.js"  # the worker's PNG writer (RGB when opaque)


def file_url(path: Path) -> str:
    """The page-relative URL at which Gradio serves a file of a static path."""
    return "gradio_api/file=" + quote(str(Path(path).resolve()))


def runtime() -> dict:
    """Where the page loads onnxruntime-web from: {"script", "wasm_paths", "integrity",
    "source": "local" (web/node_modules), "cdn", or "mirror"}. ``UPSCALER_ORT_URL`` names
    a mirror of the package's ``dist/`` folder to use instead (checked by the same hash)."""
    mirror = os.environ.get("UPSCALER_ORT_URL")
    if mirror:
        base = mirror.rstrip("/") + "/"
        return {"script": base + RUNTIME_FILE, "wasm_paths": base, "integrity": RUNTIME_INTEGRITY,
                "source": "mirror", "version": RUNTIME_VERSION}
    if (LOCAL_DIST / RUNTIME_FILE).is_file():
        return {"script": file_url(LOCAL_DIST / RUNTIME_FILE), "wasm_paths": file_url(LOCAL_DIST) + "/",
                "integrity": None, "source": "local", "version": RUNTIME_VERSION}
    return {"script": CDN_DIST + RUNTIME_FILE, "wasm_paths": CDN_DIST, "integrity": RUNTIME_INTEGRITY,
            "source": "cdn", "version": RUNTIME_VERSION}


def static_paths() -> list:
    """What the app must let Gradio serve for browser mode (besides the ONNX folder)."""
    return [WORKER, PNG_WRITER, *([LOCAL_DIST] if LOCAL_DIST.is_dir() else [])]


class OnnxFolder:
    """ONNX files of the networks the pages asked for, exported once each."""

    def __init__(self, folder: Path, run=None):
        """``run(fn)``: where an export runs (the app's torch thread, ``serving.TorchThreads``);
        by default right here."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._run = run or (lambda fn: fn())
        self._lock = threading.Lock()  # two pages asking for the same network export it once

    def path(self, key: str, make_net) -> Path:
        """The ONNX file named ``key`` (e.g. "photo-64to512-d0.5"), exported from
        ``make_net()`` (a float32 network) the first time."""
        path = self.folder / f"{key}.onnx"
        with self._lock:
            if not path.is_file():
                exported = self._run(lambda: cached_onnx(make_net().float().eval()))
                try:
                    os.link(exported, path)
                except OSError:  # another file system, or no hard links there
                    shutil.copyfile(exported, path)
        return path


# The browser's input tiles are at least this big (the server's 8x tile is 128). Each
# onnxruntime-web run has a fixed cost and each tile recomputes its overlap: on the
# 276x374 example at 8x (WebAssembly, 2 threads) one 384 px tile was clearly faster than
# nine of 128 px in an ad-hoc comparison. The result is the same: tiles overlap by the
# receptive field. Memory stays bounded (an 8x tile of 384 px is 3072x3072 out).
BROWSER_MIN_TILE = 384


def stage_spec(path: Path, net, stage: str) -> dict:
    """What the page needs to run one stage as ``Upscaler`` runs it (tiles excepted: see
    BROWSER_MIN_TILE)."""
    m = net.size_multiple
    tile = _round_up(max(net.default_tile, BROWSER_MIN_TILE), m) if net.default_tile else 0
    return {"stage": stage, "url": file_url(path), "bytes": path.stat().st_size, "factor": net.factor,
            "size_multiple": m, "tile": tile, "tile_pad": _round_up(net.receptive_field, m),
            "value_range": list(net.value_range)}


def stage_specs(folder: OnnxFolder, nets: dict, model: str, stages, strength: float = 1.0,
                blend_base: str | None = None) -> list:
    """``stage_spec`` of each stage of a pipeline, exporting what is missing. ``nets``:
    {(model, stage): float32 network}; ``strength`` < 1 blends ``model`` with
    ``blend_base`` (the photo model's denoise strength, ``models.blend_networks``)."""
    from .models import blend_networks, strength_tag

    specs = []
    for stage in stages:
        key, make = f"{model}-{stage}", (lambda s=stage: nets[model, s])
        if strength < 1.0:
            key += f"-{strength_tag(strength)}"  # the one rounding rule (models.blend_strength)
            make = (lambda s=stage: blend_networks(nets[blend_base, s], nets[model, s], strength))
        specs.append(stage_spec(folder.path(key, make), nets[model, stage], stage))
    return specs


def plan(stages: list, download_name: str, focus=None, image: str | None = None) -> dict:
    """The page's instructions for one run: ``stages`` from ``stage_spec``, in order;
    ``focus``: (x, y) input pixels the 1:1 crops centre on (a cat's face), or None (the
    page then picks the most detailed spot); ``image``: the URL of the image to run when
    it is not the page's upload (a shrunk copy)."""
    rt = {**runtime(), "worker": file_url(WORKER), "png_writer": file_url(PNG_WRITER)}
    return {"stages": stages, "download_name": download_name, "runtime": rt,
            "bytes": sum(s["bytes"] for s in stages), "focus": list(focus) if focus else None, "image": image}


class CrossOriginIsolation:
    """ASGI middleware: the two headers that make a page cross-origin isolated, which
    browsers require before they give it SharedArrayBuffer, and so WebAssembly threads:
    onnxruntime-web then runs on several cores instead of one. ``credentialless`` (not
    ``require-corp``) lets the page still load cross-origin files that do not opt in (the
    CDN copy of the runtime, fonts). Browsers without it (Safari) run on one thread. A page
    embedded in a frame (a Space on huggingface.co) is isolated only when its parent is."""

    HEADERS = [(b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-embedder-policy", b"credentialless")]

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
