"""The Gradio demo (also a Hugging Face Space): bilinear vs. learned, side by side.

UI wiring only: what a request does lives in ``upscaler.serving``, the server process's
threads and memory in ``upscaler.process``, where the weights come from in
``upscaler.weights.load_serving``, limits and file handling in ``upscaler.images``; the
page's styles and browser mode's view in ``web/``.

    python app.py                        # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / _PORT)

Importing this module does no work beyond reading its settings: ``create_app()`` loads the
networks (once, through ``server()``), starts the torch threads and builds the page.

Weights: each network from the Hub repo ``UPSCALER_REPO_ID`` at the pinned revision
``UPSCALER_REVISION``; where that fails, the bundled ``weights/``, and the page's "About"
says which. ``HF_HUB_OFFLINE=1`` skips the network.

API (``gradio_client``), documented in the README. ``model`` is "default", "photo", "sharp"
or "seed"; the API's default stays "default" (the page's differs), so no program's results
change under it. ``denoise_strength`` (0..1, rounded to 0.01; 1 = the model itself) blends a
model with its twin: photo with default (denoise), sharp with photo (invented detail).
  /upscale(image, stage, model="default", denoise_strength=1.0)        -> ((bilinear, learned), learned file)
  /upscale_by(image, scale, model="default", denoise_strength=1.0)     -> same; scale 2, 4 or 8
  /upscale_batch(images, scale, model="default", denoise_strength=1.0) -> (zip of the results, a line per image)
  /compare(image, stage, model="default", condition="clean")           -> bilinear, learned, ground truth, scores
  /upscale_video(video, scale, model="default", denoise_strength=1.0)  -> (upscaled file, a line about it);
      an animated GIF / WebP / APNG or an MP4 / WebM / MOV video, every frame, timing and audio kept
"""
import atexit
import functools
import html
import logging
import os
import re
import shutil
import tempfile
import threading
import traceback
from pathlib import Path

import gradio as gr
import torch
from PIL import Image
from starlette.middleware import Middleware

from upscaler import browser, focus, motion_serving, process, runtimes, serving
from upscaler.conditions import CONDITIONS
from upscaler.images import (
    DEFAULT_MAX_PIXELS,
    ImageRejected,
    check_output_size,
    fit_size,
    fit_to_output,
    open_checked,
    oriented,
    save_image,
)
from upscaler.inference import DTYPES, Upscaler, pick_device
from upscaler.motion import MotionCancelled
from upscaler.models import (DEFAULT_MODEL, FAMILIES, PHOTO_MODEL, SHARP_MODEL, blend_networks, blend_strength,
                             blending_families)
from upscaler.pipeline import DEFAULT_X2_STAGE, Pipeline, chain
from upscaler.serving import STAGE_HELP
from upscaler.stages import STAGES, TWO_X_STAGES, Stage
from upscaler.weights import DEFAULT_REPO_ID, DEFAULT_REVISION, load_serving

log = logging.getLogger("app")

# The model the page starts on, at its page_strength; the API's default stays DEFAULT_MODEL,
# so no program's results change. Chosen on held-out photos (experiments/sharp-phase6), by the
# perceptual benchmark and by eye (README, "Results").
PAGE_MODEL = SHARP_MODEL
# The GIF / video tab starts on the calmest model instead: invented texture shimmers from frame
# to frame more than photo's (docs/motion.md, "Flicker").
MOTION_MODEL = PHOTO_MODEL
# Limits that fit a 2-vCPU / 16 GB Space: at most 4096x4096 pixels out, whatever the scale.
MAX_OUTPUT_PIXELS = int(os.environ.get("UPSCALER_MAX_OUTPUT_PIXELS", 4096 * 4096))
MAX_INPUT_PIXELS = int(os.environ.get("UPSCALER_MAX_INPUT_PIXELS", DEFAULT_MAX_PIXELS))
MAX_FILE_SIZE = os.environ.get("UPSCALER_MAX_FILE_SIZE", "20mb")
MAX_BATCH = int(os.environ.get("UPSCALER_MAX_BATCH", 16))
CONCURRENCY = int(os.environ.get("UPSCALER_CONCURRENCY", 1))  # jobs at once, all endpoints together
QUEUE_POLL_S = 0.02  # how often Gradio's queue looks for a new job (see build_demo)
MAX_QUEUE = int(os.environ.get("UPSCALER_MAX_QUEUE", 24))
# float32 / bfloat16 / float16, or unset: chosen per device (upscaler.inference.pick_dtype).
DTYPE = os.environ.get("UPSCALER_DTYPE") or None
if DTYPE not in (None, *DTYPES):
    raise SystemExit(f"UPSCALER_DTYPE={DTYPE!r}: use {', '.join(DTYPES[:-1])} or {DTYPES[-1]} (or leave it unset).")
# What runs the networks: auto (the fastest installed runtime: upscaler/runtimes.py), torch,
# openvino or onnxruntime.
BACKEND = os.environ.get("UPSCALER_BACKEND") or "auto"
if BACKEND not in runtimes.BACKENDS:
    raise SystemExit(f"UPSCALER_BACKEND={BACKEND!r}: use {', '.join(runtimes.BACKENDS)} (or leave it unset).")
# How long result files and Gradio's cached uploads live (see Server).
OUTPUT_TTL = float(os.environ.get("UPSCALER_OUTPUT_TTL", process.OUTPUT_TTL_S))  # seconds
CACHE_TTL = int(os.environ.get("UPSCALER_CACHE_TTL", process.CACHE_TTL_S))  # seconds
GRADIO_CACHE = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")
EXAMPLES = Path(__file__).parent / "examples"
WEB = Path(__file__).parent / "web"
CROP = 256  # side of the 1:1 detail crops, output pixels

try:  # ZeroGPU Spaces: ask for a GPU per call; elsewhere a no-op
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn):
        return fn


# ------------------------------------------------------------------ the server's state
def load_all(device):
    """-> ({(model, stage name): Upscaler}, {(model, stage name): float32 net}, message
    about where the weights came from)."""
    nets, sources, message = load_serving(FAMILIES, STAGES, DEFAULT_REPO_ID, DEFAULT_REVISION)
    upscalers = {key: Upscaler(net, key[1], device=device, dtype=DTYPE, model=key[0], source=sources[key],
                               backend=BACKEND) for key, net in nets.items()}
    log.warning("%s sources: %s", message, sorted(set(sources.values())))
    some = next(iter(upscalers.values()))
    runs_on = f"{some.backend} ({str(some.dtype).replace('torch.', '')})"
    log.warning("the networks run on %s; installed: %s", runs_on, runtimes.versions())
    return upscalers, nets, f"{message} Device: {device}. Runtime: {runs_on}; installed: {runtimes.versions()}."


def warm_up(upscalers: dict, first_model: str, run, first_blends=(), blend=None):
    """Compile a graph runtime's networks (export + compile, 0.1-0.3 s each on 2 cores; the
    first export also loads torch's exporter, about 1 s): the blends the page starts on
    (``first_blends``: (model, stage, strength) for ``blend``), then the page's model, then
    the rest, each as a job of its own on the torch threads (``run``): start-up does not wait
    for them, and a request waits at most for the one under way. A request for a network not
    compiled yet compiles it itself."""
    jobs = [(key, lambda key=key: blend(*key).warm_up()) for key in first_blends]
    jobs += [(key, upscalers[key].warm_up) for key in sorted(upscalers, key=lambda k: k[0] != first_model)]
    for what, job in jobs:
        if not threading.main_thread().is_alive():
            return  # the process is exiting
        try:
            run(job)
        except RuntimeError as e:
            if "after shutdown" in str(e):  # exiting: the torch threads' pool no longer takes work
                return
            log.exception("could not compile %s", what)
        except Exception:  # the request that needs it will compile it again and report the error
            log.exception("could not compile %s", what)


class Server:
    """What the running demo holds, made once per process (``server()``).

    * ``torch``: all torch work (loading, upscaling, scoring, ONNX export) runs on these
      threads, one per job at once (``process.TorchThreads`` says why);
    * the networks: ``upscalers`` ({(model, stage): Upscaler}) and their float32 ``nets``,
      which blends and browser mode's ONNX export start from;
    * ``outputs``: every result is written here as a file (under a temporary name, then
      renamed) and handed to Gradio as a path. The folder is a Gradio static path: Gradio
      serves the files from here instead of hashing and copying each one into its cache
      (about 50 ms of an 8x request in an ad-hoc A/B on the 2-core machine). So a result's
      link lives as long as its file: each request removes the folders older than
      OUTPUT_TTL. Gradio's own cache (uploads, examples) is pruned by delete_cache: every
      CACHE_TTL / 2 seconds, files older than CACHE_TTL go. The disk holds at most about
      OUTPUT_TTL seconds of results plus 1.5 x CACHE_TTL seconds of uploads
      (benchmarks/soak.py measures the rates);
    * ``onnx``: browser mode's networks as ONNX files, exported when a page first asks.
    """

    def __init__(self):
        process.tune_malloc()  # before the server's threads start: see process.py's note on memory
        self.torch = process.TorchThreads(CONCURRENCY)
        self.outputs = Path(tempfile.mkdtemp(prefix="upscaler-outputs-"))
        atexit.register(shutil.rmtree, self.outputs, ignore_errors=True)
        self.onnx = browser.OnnxFolder(tempfile.mkdtemp(prefix="upscaler-onnx-"), run=self.torch.run)
        atexit.register(shutil.rmtree, self.onnx.folder, ignore_errors=True)
        gr.set_static_paths([self.outputs, self.onnx.folder, *browser.static_paths()])
        self.upscalers, self.nets, self.weights_message = self.torch.run(load_all, pick_device())
        self.freed_memory = process.FreedMemory()  # measured from here: the weights are loaded
        # The page starts on PAGE_MODEL (visitors upload JPEGs), else the first whose weights loaded:
        # all its stages, and its blend_base's where it starts as a blend.

        def usable(m):
            return not missing_weights(self.nets, m, STAGES, FAMILIES[m].page_strength)

        self.page_model = next((m for m in (PAGE_MODEL, PHOTO_MODEL) if usable(m)), DEFAULT_MODEL)
        self.motion_model = MOTION_MODEL if usable(MOTION_MODEL) else self.page_model
        # A blend costs a weight copy and a cast, not worth redoing per request: kept.
        self.blend = functools.lru_cache(maxsize=12)(self._blend)
        strength = FAMILIES[self.page_model].page_strength
        page_blends = [(self.page_model, s, strength) for s in STAGES if strength < 1]
        threading.Thread(target=warm_up, args=(self.upscalers, self.page_model, self.torch.run, page_blends,
                                               self.blend), name="warm-up", daemon=True).start()
        self.cancels = motion_serving.Cancels()  # the GIF / video tab's Cancel reaches its job here

    def _blend(self, model: str, stage: str, strength: float) -> Upscaler:
        """``model`` blended with its ``blend_base`` for ``stage`` (photo's denoise strength,
        sharp's invented detail)."""
        net = blend_networks(self.nets[FAMILIES[model].blend_base, stage], self.nets[model, stage], strength)
        plain = self.upscalers[model, stage]
        return Upscaler(net, stage, device=plain.device, dtype=plain.dtype, backend=plain.backend,
                        model=f"{model} ({FAMILIES[model].strength_label} {strength:g})", source=plain.source)

    def output_dir(self) -> Path:
        """A fresh folder for one request's files (old ones are removed on the way)."""
        process.prune_stray_files(GRADIO_CACHE, CACHE_TTL)  # what Gradio's own pruning misses
        return process.new_output_dir(self.outputs, OUTPUT_TTL)


_server = None


def server() -> Server:
    """The process's one Server, made on first use (``create_app`` makes it at start-up)."""
    global _server
    if _server is None:
        _server = Server()
    return _server


# ------------------------------------------------------------------ argument checks
# The page calls the clean model "clean"; the API takes that name too, beside "default"
# (its name from the start, and still the API's default).
ALIASES = {"clean": DEFAULT_MODEL}


def _model(model) -> str:
    """The family a request names: its name, its alias, or its label on the page."""
    model = {f.label: name for name, f in FAMILIES.items()}.get(model, model)  # a label is accepted too
    model = ALIASES.get(model, model)
    if model not in FAMILIES:
        raise gr.Error(f"Unknown model {model!r}: use one of {', '.join([*FAMILIES, *ALIASES])}.")
    return model


def _file_model(model) -> str:
    """The model's name in a download's name: the one the visitor chose ("clean" for the
    page's clean model or that alias; "default" where a program asked for it so)."""
    family = _model(model)
    if model in ALIASES or model == FAMILIES[family].label:
        return _page_value(family)
    return family


def _strength(model: str, denoise_strength) -> float:
    """The denoise strength by the one rule (``models.blend_strength``: 0..1, rounded to
    0.01); 1 is the model itself."""
    try:
        strength = blend_strength(1.0 if denoise_strength is None else denoise_strength)
    except ValueError as e:
        raise gr.Error(f"{str(e).replace('denoise strength', 'denoise_strength')}.") from None
    if strength < 1.0 and FAMILIES[model].blend_base is None:
        raise gr.Error(f"denoise_strength blends a model with its twin: {blending_families()}; leave it at 1 "
                       f"for {model}.")
    return strength


def missing_weights(nets: dict, model: str, stages, strength: float) -> list:
    """The "model/stage" networks a run needs and ``nets`` lacks: the model's, and for a blend
    its twin's."""
    models = [model] + ([FAMILIES[model].blend_base] if strength < 1.0 else [])
    return sorted({f"{m}/{s}" for m in models for s in stages if (m, s) not in nets})


def _require_weights(model: str, stages, strength: float):
    """Refuse a run whose networks (and, for a blend, its clean twin's) did not load."""
    missing = missing_weights(server().nets, model, stages, strength)
    if missing:
        raise gr.Error(f"No usable weights for {', '.join(missing)} on this server.")


def _upscalers(model: str, pipeline: Pipeline, denoise_strength=1.0) -> list:
    strength = _strength(model, denoise_strength)
    _require_weights(model, pipeline.stages, strength)
    if strength < 1.0:
        return [server().blend(model, s, strength) for s in pipeline.stages]
    return [server().upscalers[model, s] for s in pipeline.stages]


def _stage(stage) -> str:
    if stage not in STAGES:
        raise gr.Error(f"Unknown stage {stage!r}: use one of {', '.join(STAGES)}.")
    return stage


def _need_image(image):
    if image is None:
        raise gr.Error("Upload an image first.")


def _guarded(fn):
    """No traceback reaches a user: refusals become their message, unexpected errors are
    logged and reported plainly. It runs ``fn`` on a torch thread."""
    def inference(*args, **kwargs):
        with torch.inference_mode():
            return fn(*args, **kwargs)

    @functools.wraps(fn)  # keeps the signature: the API's parameter names come from it
    def wrapper(*args, **kwargs):
        try:
            return server().torch.run(inference, *args, **kwargs)
        except gr.Error:
            raise
        except MotionCancelled:
            raise gr.Error("Cancelled: nothing was written.") from None
        except ImageRejected as e:
            raise gr.Error(f"Cannot use this file: {e}.") from None
        except MemoryError:
            raise gr.Error("Out of memory for this image: try a smaller one or a smaller scale.") from None
        except Exception as e:
            log.error("handler failed: %s", traceback.format_exc())
            raise gr.Error(f"Upscaling failed ({type(e).__name__}). Try another image.") from None
        finally:
            server().freed_memory.release_if_grown()  # a public demo runs for weeks: RSS must not creep
    return wrapper


# ------------------------------------------------------------------- API endpoints
def _tagged_strength(strength: float):
    """The strength a file name carries: None for the model itself (strength 1)."""
    return None if strength >= 1.0 else strength


def _run(image, pipeline, model, shrink_to_fit=False, progress=None, denoise_strength=1.0):
    _need_image(image)
    named, model = _file_model(model), _model(model)
    strength = _strength(model, denoise_strength)
    return serving.upscale_upload(image, pipeline, _upscalers(model, pipeline, strength), named,
                                  server().output_dir(), MAX_INPUT_PIXELS, MAX_OUTPUT_PIXELS,
                                  shrink_to_fit=shrink_to_fit, progress=progress,
                                  strength=_tagged_strength(strength)), model


@gpu
@_guarded
def upscale(image, stage="64to128", model=DEFAULT_MODEL, denoise_strength=1.0):
    """Upscale the whole image with one stage: (bilinear, learned) and the learned file."""
    result, _ = _run(image, Pipeline.for_stage(_stage(stage)), model, denoise_strength=denoise_strength)
    return (result.bilinear, result.learned), result.download


@gpu
@_guarded
def upscale_by(image, scale=2, model=DEFAULT_MODEL, denoise_strength=1.0):
    """Upscale the whole image by 2, 4 or 8: (bilinear, learned) and the learned file."""
    result, _ = _run(image, Pipeline.for_scale(scale), model, denoise_strength=denoise_strength)
    return (result.bilinear, result.learned), result.download


@gpu
@_guarded
def upscale_batch(images, scale=2, model=DEFAULT_MODEL, denoise_strength=1.0):
    """Upscale several images by 2, 4 or 8: one zip of the results and a line per image
    (a refused image is skipped and its line says why)."""
    paths = [getattr(i, "name", i) for i in (images or [])]
    if not paths:
        raise gr.Error("Upload one or more images first.")
    if len(paths) > MAX_BATCH:
        raise gr.Error(f"{len(paths)} images: at most {MAX_BATCH} at once.")
    pipeline, named, model = Pipeline.for_scale(scale), _file_model(model), _model(model)
    strength = _strength(model, denoise_strength)
    ups, done, lines = _upscalers(model, pipeline, strength), [], []
    for path in paths:
        name = Path(path).name
        try:
            r = serving.upscale_upload(path, pipeline, ups, named, server().output_dir(), MAX_INPUT_PIXELS,
                                       MAX_OUTPUT_PIXELS, strength=_tagged_strength(strength))
            done.append(r.download)
            lines.append((name, f"{r.input_size[0]}x{r.input_size[1]} -> {r.output_size[0]}x{r.output_size[1]} "
                                f"({r.total_seconds:.2f} s)"))
        except ImageRejected as e:
            lines.append((name, f"skipped, {e}"))
    if not done:
        raise gr.Error("No image could be upscaled: " + "; ".join(f"{n}: {line}" for n, line in lines))
    archive, entries = serving.zip_files(done, server().output_dir(), serving.download_name(
        "upscaled", pipeline.scale, named, _tagged_strength(strength), suffix=".zip"))
    entries = iter(entries)  # each upscaled input's name in the zip, in order
    return archive, "\n".join(f"{n} -> {next(entries)}: {line}" if not line.startswith("skipped") else f"{n}: {line}"
                              for n, line in lines)


@gpu
@_guarded
def compare(image, stage="64to128", model=DEFAULT_MODEL, condition="clean"):
    """The reference's figure, live: centre square as ground truth at the stage's output size,
    downscaled to its input size (``condition``: "clean", or made to look like a real photo,
    e.g. "jpeg50"), upscaled back; bilinear, learned and truth with PSNR/SSIM (and LPIPS,
    "lpips_alex", where the server has its weights)."""
    _need_image(image)
    stage, model = _stage(stage), _model(model)
    up, = _upscalers(model, Pipeline.for_stage(stage))
    files, scores = serving.compare_image(image, stage, {model: up}, MAX_INPUT_PIXELS, server().output_dir(),
                                          condition)
    metrics = {name: {"psnr_y_db": round(s["psnr"], 2), "ssim_y": round(s["ssim"], 4),
                      **({"lpips_alex": round(s["lpips"], 4)} if "lpips" in s else {})}
               for name, s in scores.items()}
    return files["bilinear"], files[model], files["truth"], metrics


@gpu
@_guarded
def upscale_video(video, scale=2, model=DEFAULT_MODEL, denoise_strength=1.0, progress=None, cancel=None):
    """Upscale an animated image or a video by 2, 4 or 8, every frame, keeping its timing
    (and a video's audio): the upscaled file and a line about it."""
    if not video:
        raise gr.Error("Upload an animated GIF, WebP or PNG, or an MP4, WebM or MOV video first.")
    path = getattr(video, "name", video)
    pipeline, named, model = Pipeline.for_scale(scale), _file_model(model), _model(model)
    strength = _strength(model, denoise_strength)
    files = motion_serving.upscale_motion_upload(
        path, _upscalers(model, pipeline, strength), pipeline.scale, named, server().output_dir(),
        motion_serving.limits_from_env(MAX_OUTPUT_PIXELS), _tagged_strength(strength),
        max_input_pixels=MAX_INPUT_PIXELS, progress=progress, cancel=cancel)
    return files


def _video_for_api(video, scale=2, model=DEFAULT_MODEL, denoise_strength=1.0):
    download, _, _, result = upscale_video(video, scale, model, denoise_strength)
    return download, result.summary()


# ------------------------------------------------------------------- page handlers
# The page's own events: they never raise into a toast; they write what happened into the
# status line beside the button, where it stays.
def _scale(label) -> int:
    return int(str(label).rstrip("x"))


def _as_text(text: str) -> str:
    """``text`` for a Markdown component, shown as the characters it has: a file name may
    carry HTML (``<img src=x onerror=...>.png``) or Markdown (``*cat*.png``)."""
    escaped = html.escape(str(text), quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+!|~-])", r"\\\1", escaped)


def _status(text, kind="info") -> str:
    return f"**Problem:** {text}" if kind == "error" else text


def _upload_path(payload):
    """The file path in what an image event hands over unprocessed (``preprocess=False``):
    a FileData dict, an object with ``.path``, or the path itself."""
    return payload.get("path") if isinstance(payload, dict) else getattr(payload, "path", payload)


def _prompt(in_browser=False) -> str:
    """The status line with no image: what to do first."""
    return _status(f"Upload an image, choose a scale, press {_button(in_browser)}.")


def page_check_upload(payload, scale_label, in_browser=False):
    """On upload: refuse unreadable files at once, and say what the output would be.
    -> image, status, shrink button, the refusal's reason ("" when the file is readable):
    kept until the next upload, so a press of Upscale repeats it instead of "Upload an
    image first"."""
    hide = gr.update(visible=False)
    if not payload:
        return gr.update(), _prompt(), hide, ""
    path = _upload_path(payload)
    readable, status, shrink = _advice(path, scale_label, in_browser)
    return (gr.update() if readable else None), status, shrink, ("" if readable else status)


def _button(in_browser) -> str:
    """The name of the button that runs, for the status line."""
    return "Upscale in my browser" if in_browser else "Upscale"


def _size_advice(size, scale, in_browser=False):
    w, h = size
    button = _button(in_browser)
    if w * h * scale ** 2 <= MAX_OUTPUT_PIXELS:
        return _status(f"{w}x{h} in; {scale}x makes {w * scale}x{h * scale}. Press {button}."), gr.update(visible=False)
    fw, fh = fit_size((w, h), scale, MAX_OUTPUT_PIXELS)
    smaller = "Choose a smaller scale, or shrink" if scale > 2 else "Shrink"
    return (_status(f"{w}x{h} upscaled {scale}x would be {w * scale}x{h * scale}, over the limit of "
                    f"{MAX_OUTPUT_PIXELS / 1e6:.1f} megapixels for a result. {smaller} it to "
                    f"{fw}x{fh} first (one click below).", "error"),
            gr.update(visible=True, value=f"Shrink to {fw}x{fh} and upscale {scale}x"))


def page_image_changed(payload, scale_label, in_browser=False, refused=""):
    """A new image (uploaded, pasted or an example): old results go; the size advice comes,
    and an earlier refusal is forgotten. An image emptied by a refused upload leaves the
    refusal's reason; one removed by the visitor brings back the first prompt. The Compare
    tab gets the same image (it can change it there). -> (*results, status, shrink button,
    Compare's image, the refusal kept)."""
    cleared = clear_results()
    path = _upload_path(payload)
    if not path:
        status = gr.update() if refused else _prompt(in_browser)
        return (*cleared, status, gr.update(visible=False), gr.update(), gr.update())
    readable, status, shrink = _advice(path, scale_label, in_browser)
    return (*cleared, status, shrink, path if readable else gr.update(), "" if readable else status)


def _advice(path, scale_label, in_browser=False):
    """-> (readable, status line, shrink button update) for the image file at ``path``."""
    try:
        img = oriented(open_checked(path, MAX_INPUT_PIXELS))
    except ImageRejected as e:
        return False, _status(f"Cannot use this file: {e}.", "error"), gr.update(visible=False)
    return True, *_size_advice(img.size, _scale(scale_label), in_browser)


def page_scale_changed(image, scale_label, in_browser=False):
    """The advice for the image on the page, or the status left as it is (a refusal's
    reason stays until the next upload)."""
    if not image:
        return gr.update(), gr.update(visible=False)
    return _advice(image, scale_label, in_browser)[1:]


@gpu
def page_upscale(image, scale_label, model, x2_stage, strength=1.0, shrink_to_fit=False, progress=gr.Progress()):
    """-> slider, download button, status, 1:1 crops (bilinear, learned), where the crops
    are (on the input), the result's files."""
    empty = (None, gr.update(visible=False))
    try:
        result, model = _guarded(_run)(image, Pipeline.for_scale(_scale(scale_label), x2_stage), model,
                                       shrink_to_fit, progress=lambda f: progress(f, desc="upscaling"),
                                       denoise_strength=strength if FAMILIES[_model(model)].blend_base else 1.0)
    except gr.Error as e:
        return (*empty, _status(e.message, "error"), None, None, None, None)
    original = oriented(Image.open(image))  # what the visitor sees and clicks on
    # output pixels per pixel of the image on the page (a shrunk input has fewer)
    state = {"bilinear": result.bilinear, "learned": result.learned, "input": image,
             "click_scale": result.output_size[0] / original.width}
    # the crops start on the cat's face, else where the photo has the most detail (upscaler/focus.py)
    centre, _ = focus.crop_centre(original, CROP / state["click_scale"])
    crop_b, crop_l, where = _crops(state, centre, original)
    used = blend_strength(strength) if FAMILIES[model].blend_base else 1.0  # what ran (the one rounding rule)
    label = FAMILIES[model].label + (f", {FAMILIES[model].strength_label} {used:g}" if used < 1 else "")
    return ((result.bilinear, result.learned),
            gr.update(visible=True, value=result.download, label=f"Download {Path(result.download).name}"),
            _status(result.summary(label), "ok"), crop_b, crop_l, where, state)


def _crops(state, centre, original=None):
    """The 1:1 crops around ``centre`` (in the page image's pixels) and the locator."""
    k = state["click_scale"]
    crops = serving.crop_1to1({n: state[n] for n in ("bilinear", "learned")}, (centre[0] * k, centre[1] * k), CROP)
    original = original or oriented(Image.open(state["input"]))
    return crops["bilinear"], crops["learned"], serving.locator(original, centre, CROP / k)


def _result_note(page_upscale_out) -> str:
    """The note above the result: ``page_upscale``'s "Done" line when it made a result."""
    slider, _, status, *_ = page_upscale_out
    return status if slider is not None else ""


def page_upscale_pressed(image, scale_label, model, x2_stage, strength=1.0, refused="", progress=gr.Progress()):
    """The Upscale button: ``page_upscale`` plus the note above the result (its "Done", where
    a phone shows it with the result); with no image after a refused upload, the refusal's
    reason again."""
    if image is None and refused:
        return None, gr.update(visible=False), refused, None, None, None, None, ""
    out = page_upscale(image, scale_label, model, x2_stage, strength, False, progress)
    return (*out, _result_note(out))


def page_shrink_and_upscale(image, scale_label, model, x2_stage, strength=1.0, in_browser=False,
                            progress=gr.Progress()):
    """The one-click shrink offered for a photo too large at this scale. On the server: the
    result as Upscale shows it. In browser mode: the shrunk copy goes to the browser to run
    there (-> its plan; the server's outputs untouched)."""
    if in_browser:
        plan, status = page_browser_plan(image, scale_label, model, x2_stage, strength, shrink_to_fit=True)
        return (*(gr.update(),) * 2, status, *(gr.update(),) * 4, gr.update(visible=plan is None), plan, gr.update())
    out = page_upscale(image, scale_label, model, x2_stage, strength, True, progress)
    return (*out, gr.update(visible=False), None, _result_note(out))


def page_pick_crop(state, evt: gr.SelectData):
    """A click on the input image picks where the 1:1 crops are cut. The click is in the
    pixels of the image on the page, which may be larger than the one upscaled (shrunk
    to fit): ``click_scale`` maps it to the result."""
    if not state:
        return gr.update(), gr.update(), gr.update()
    return _crops(state, evt.index)


def page_compare_models(image, stage, models, condition="clean"):
    """The Compare tab: its own photo, scale (a stage name, or "64to256" for 4x: 64to128
    then 128to256), models (names or page names) and condition. -> gallery of (file,
    caption), metrics table, status."""
    try:
        if image is None:
            raise gr.Error("Upload a photo above first.")
        if not models:
            raise gr.Error("Choose at least one model.")
        if stage == COMPARE_4X.name:
            st, pipeline = COMPARE_4X, Pipeline.for_scale(4, DEFAULT_X2_STAGE)
        else:
            st = STAGES[_stage(stage)]
            pipeline = Pipeline.for_stage(st.name)
        models = [m for m in dict.fromkeys(_model(m) for m in models)
                  if all((m, s) in server().upscalers for s in pipeline.stages)]
        ups = {m: chain(*_upscalers(m, pipeline)) for m in models}
        files, scores = _guarded(serving.compare_image)(image, st, ups, MAX_INPUT_PIXELS, server().output_dir(),
                                                        condition)
    except gr.Error as e:
        return None, "", _status(e.message, "error")
    stage = f"{st.factor}x"
    labels = {"bilinear": "bilinear", "bicubic": "bicubic", **{m: f"learned: {FAMILIES[m].label}" for m in models}}
    looks = "" if condition == "clean" else f", saved as {CONDITION_LABELS[condition]}"
    captions = {"input": f"the small input the network gets ({st.input_size} px{looks})", **labels,
                "truth": f"ground truth ({st.output_size} px)"}
    gallery = [(files[k], captions[k]) for k in ("input", "bilinear", "bicubic", *models, "truth")]
    return gallery, serving.metrics_table(scores, labels), _status(
        f"Compare at {stage}: the centre square of your photo, shrunk to {st.input_size} px{looks} and enlarged "
        f"back; scored against the clean original.", "ok")


@gpu
def page_batch(files, scale_label, model):
    """The Batch tab (its own model choice, at the strength the page starts that model on):
    -> download button, status."""
    try:
        archive, lines = upscale_batch(files, _scale(scale_label), model, FAMILIES[_model(model)].page_strength)
    except gr.Error as e:
        return gr.update(visible=False), _status(e.message, "error")
    return (gr.update(visible=True, value=archive, label=f"Download {Path(archive).name}"),
            _status("Done.", "ok") + "\n\n" + "\n".join(f"- {_as_text(line)}" for line in lines.splitlines()))


@gpu
def page_video(video, scale_label, model, request: gr.Request = None, progress=gr.Progress()):
    """The GIF / video tab (its own model choice, at the strength the page starts that model
    on): -> first frame (bilinear, learned), download button, status."""
    key = getattr(request, "session_hash", None)
    flag = server().cancels.start(key)

    def report(done, total):  # Gradio shows done/total with the time left; a clip that does not say: the count
        progress((done, total) if total else None, desc="frames" if total else f"frame {done}", unit="frames")

    try:
        download, bilinear, learned, result = upscale_video(video, _scale(scale_label), model,
                                                            FAMILIES[_model(model)].page_strength,
                                                            progress=report, cancel=flag.is_set)
    except gr.Error as e:
        return None, gr.update(visible=False), _status(e.message, "error")
    finally:
        server().cancels.finish(key)
    return ((bilinear, learned), gr.update(visible=True, value=download, label=f"Download {Path(download).name}"),
            _status(result.summary(), "ok"))


def page_video_cancel(request: gr.Request = None):
    cancelled = server().cancels.cancel(getattr(request, "session_hash", None))
    return _status("Cancelling after the frames in hand..." if cancelled else "Nothing is running.")


def page_browser_plan(image, scale_label, model, x2_stage, strength=1.0, refused="", shrink_to_fit=False):
    """Browser mode: what the page needs to run the networks itself (upscaler/browser.py);
    -> (plan for web/browser_mode.js, or None after a refusal; status line).
    ``shrink_to_fit``: a photo too large for this scale is shrunk to fit here, and the plan
    carries the shrunk copy's URL for the browser to run."""
    if image is None and refused:
        return None, refused
    shrunk_url = None
    try:
        _need_image(image)
        named, model = _file_model(model), _model(model)
        pipeline = Pipeline.for_scale(_scale(scale_label), x2_stage)
        strength = _strength(model, strength if FAMILIES[model].blend_base else 1.0)
        try:
            original = oriented(open_checked(image, MAX_INPUT_PIXELS))
            if shrink_to_fit:  # as the server shrinks (images.fit_to_output), saved for the page to fetch
                fitted = fit_to_output(original, pipeline.scale, MAX_OUTPUT_PIXELS)
                if fitted is not original:
                    shrunk = server().output_dir() / f"{Path(image).stem}-{fitted.width}x{fitted.height}.png"
                    save_image(fitted, shrunk)
                    original, shrunk_url = fitted, browser.file_url(shrunk)
            check_output_size(original.size, pipeline.scale, MAX_OUTPUT_PIXELS)
        except ImageRejected as e:
            raise gr.Error(f"Cannot use this file: {e}.") from None
        _require_weights(model, pipeline.stages, strength)
        stages = browser.stage_specs(server().onnx, server().nets, model, pipeline.stages, strength,
                                     FAMILIES[model].blend_base)
    except gr.Error as e:
        return None, _status(e.message, "error")
    name = serving.download_name(image, pipeline.scale, named, _tagged_strength(strength))
    centre, how = focus.crop_centre(original, CROP / pipeline.scale)
    where = f" {original.width}x{original.height}" if shrunk_url else ""
    return browser.plan(stages, name, focus=centre if how == "face" else None, image=shrunk_url), _status(
        f"Sent{where} to your browser: {pipeline.scale}x with the {FAMILIES[model].label} model (its progress "
        f"and result show in the browser's view).", "ok")


def page_in_browser_changed(on, image, scale_label, refused=""):
    """The "run in my browser" box swaps the server's button and view for the browser's,
    and the advice names the button that now runs (the shrink offer stays either way; a
    refusal's reason stays)."""
    status, shrink = page_scale_changed(image, scale_label, on)
    if not image and not refused:
        status = _prompt(on)
    return (gr.update(visible=not on), gr.update(visible=on), gr.update(visible=not on), gr.update(visible=on),
            status, shrink)


def clear_results():
    """What the Upscale tab shows when its inputs change: no result of other settings (the
    result, its download, the crops, their state, the note above the result)."""
    return None, gr.update(visible=False), None, None, None, None, ""


def page_check_compare_upload(payload):
    """Compare's own upload, checked as the Upscale tab's is: -> image, Compare's status."""
    if not payload:
        return gr.update(), ""
    path = _upload_path(payload)
    readable, status, _ = _advice(path, "2x")
    return (gr.update(), "") if readable else (None, status)


def page_setting_changed(image, scale_label, in_browser=False):
    """The 2x network or the strength changed: the result made with the old one goes,
    and its "Done" with it (the advice for the image comes back; a refusal's reason stays)."""
    return (*clear_results(), page_scale_changed(image, scale_label, in_browser)[0])


def page_model_changed(model, image, scale_label, in_browser=False):
    """A new model: old results go, and their "Done" with them (the status goes back to the
    advice for the image, or a refusal's reason stays); the one strength slider shows for a
    model that blends (photo: denoise, sharp: invented detail), named and set for it."""
    status, _ = page_scale_changed(image, scale_label, in_browser)
    return (*clear_results(), strength_slider_update(_model(model)), status)


def strength_slider_update(model: str):
    family = FAMILIES[model]
    return gr.update(visible=family.blend_base is not None, label=family.strength_label,
                     info=family.strength_info, value=family.page_strength)


# ---------------------------------------------------------------------------- page
SCALE_CHOICES = ["2x", "4x", "8x"]
def _page_value(name: str) -> str:
    """The value the page's model choice sends: the family's alias where it has one
    ("clean"), so downloads are named after the model the visitor chose."""
    return next((alias for alias, family in ALIASES.items() if family == name), name)


MODEL_CHOICES = [(f.label, _page_value(name)) for name, f in FAMILIES.items()]
# what each model is for, as a list under the choice (readable, where a radio's "info" line is small and pale)
MODEL_HELP = "\n".join(f"- **{f.label}**: {f.description}" for f in FAMILIES.values())
# The Compare tab's choices, named by scale: the photo's centre shrunk to 64 px and enlarged
# 2x, 4x (the two 2x networks chained, as the Upscale tab's 4x) or 8x; the API's /compare
# takes the stage names.
COMPARE_4X = Stage("64to256", 64, 256, "64 -> 256 (x4: 64to128, then 128to256)")
COMPARE_CHOICES = [("2x (64 -> 128 px)", "64to128"), ("4x (64 -> 256 px)", COMPARE_4X.name),
                   ("8x (64 -> 512 px)", "64to512")]
CONDITION_LABELS = {"clean": "clean (a sharp shrink)", "jpeg90": "JPEG quality 90", "jpeg75": "JPEG quality 75",
                    "jpeg50": "JPEG quality 50", "jpeg30": "JPEG quality 30",
                    "noise10+jpeg75": "noise, then JPEG 75", "blur1+jpeg75": "blur, then JPEG 75"}


class CheckedImage(gr.Image):
    """gr.Image whose upload step turns unreadable files into a readable message. It uses
    the ordinary Image frontend: Gradio picks a component's frontend by
    ``get_block_name``, which its docstring says to override for this."""

    def get_block_name(self) -> str:
        return "image"

    def get_block_class(self) -> str:  # what gr.load() rebuilds it as
        return "image"

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except Exception as e:
            if isinstance(e, Image.DecompressionBombError):
                raise gr.Error("Cannot use this file: it declares more pixels than it can plausibly hold "
                               "(a decompression bomb).") from None
            raise gr.Error("Cannot use this file: it is not an image that can be read "
                           "(PNG, JPEG, WebP, GIF, BMP, TIFF...).") from None


def _about() -> str:
    models = "\n".join(f"- **{f.label}**: {f.description}" for f in FAMILIES.values())
    return (f"{server().weights_message}\n\n{models}\n\n"
            f"Limits: files up to {MAX_FILE_SIZE.upper()} and {MAX_INPUT_PIXELS / 1e6:.0f} megapixels; results up "
            f"to {MAX_OUTPUT_PIXELS / 1e6:.1f} megapixels (about {int((MAX_OUTPUT_PIXELS / 64) ** .5)} px square in "
            f"for 8x). Results are lossless PNGs, shown at full resolution.")


def build_demo():
    """The page (its handlers above) and the API endpoints (``_add_api``)."""
    examples = sorted(str(p) for p in EXAMPLES.glob("*.jpg"))
    page_model = server().page_model
    with gr.Blocks(title="Cat upscaler", delete_cache=(max(1, CACHE_TTL // 2), CACHE_TTL)) as demo:
        gr.Markdown("# Cat upscaler\nEnlarge a photo 2x, 4x or 8x with a small network trained on cat photos, "
                    "shown against plain bilinear enlargement.", elem_id="intro")
        result_files = gr.State(None)
        with gr.Tab("Upscale"):
            with gr.Row():
                with gr.Column(scale=1, min_width=300):
                    image = CheckedImage(label="your image (click it to choose the 1:1 detail)", type="filepath",
                                         image_mode=None, sources=["upload", "clipboard"], height=240,
                                         elem_id="input-image")
                    # right under the upload: a refusal next to the file, and "Done" on the first screen of a
                    # desktop and a phone (tests/test_browser.py checks where they are)
                    status = gr.Markdown(_prompt(), elem_id="status")
                    shrink = gr.Button("Shrink to fit and upscale", visible=False, elem_id="shrink-button")
                    if examples:  # on the first screen of a desktop or a phone too
                        gr.Examples(examples, inputs=[image], label="or try an example (JPEGs of cats never trained on)",
                                    elem_id="examples")
                    scale = gr.Radio(SCALE_CHOICES, value="2x", label="enlarge by", elem_id="scale")
                    go = gr.Button("Upscale", variant="primary", elem_id="upscale-button")
                    go_browser = gr.Button("Upscale in my browser", variant="primary", visible=False,
                                           elem_id="browser-button")
                    in_browser = gr.Checkbox(False, label="run in my browser", elem_id="in-browser",
                                             info="Your device runs the network (onnxruntime-web: WebGPU, else "
                                                  "WebAssembly); only the network file (about 1 MB) is downloaded, "
                                                  "and no result is sent back. Nothing waits in the server's queue.")
                    model = gr.Radio(MODEL_CHOICES, value=_page_value(page_model), label="model", elem_id="model")
                    gr.Markdown(MODEL_HELP, elem_id="model-help")
                    # one slider for the chosen model's blend (page_model_changed renames it)
                    strength = gr.Slider(0, 1, value=FAMILIES[page_model].page_strength, step=0.05,
                                        label=FAMILIES[page_model].strength_label, elem_id="strength",
                                        visible=FAMILIES[page_model].blend_base is not None,
                                        info=FAMILIES[page_model].strength_info)
                    with gr.Accordion("advanced: the network behind 2x", open=False):
                        x2_stage = gr.Radio([(f"{n}: {STAGE_HELP[n]}", n) for n in TWO_X_STAGES],
                                            value=DEFAULT_X2_STAGE, show_label=False, elem_id="x2-stage")
                        gr.Markdown("4x chains 64to128 and 128to256; 8x is the fine-tuned 8x network. "
                                    "The default 2x network is the one that scores best (README, Quality).")
                with gr.Column(scale=3):
                    with gr.Column(elem_id="server-view") as server_view:
                        result_note = gr.Markdown("", elem_id="result-note")
                        slider = gr.ImageSlider(label="bilinear | learned", type="filepath", format="png",
                                                max_height=1000, buttons=["fullscreen"], elem_id="upscale-slider")
                        gr.Markdown("Drag the handle to compare. Scroll on the picture to zoom in and drag to pan; "
                                    "the full-screen button (top right of the picture) gives it the whole screen.", elem_id="zoom-hint")
                        with gr.Row():
                            crop_bilinear = gr.Image(label="bilinear, 1:1", type="pil", format="png", height=CROP + 40,
                                                     interactive=False, elem_id="crop-bilinear")
                            crop_learned = gr.Image(label="learned, 1:1", type="pil", format="png", height=CROP + 40,
                                                    interactive=False, elem_id="crop-learned")
                            crop_where = gr.Image(label="where (click your image to move)",
                                                  type="pil", format="png", height=CROP + 40, interactive=False,
                                                  elem_id="crop-where")
                        download = gr.DownloadButton("Download", visible=False, elem_id="download")
                    browser_view = gr.HTML((WEB / "browser_view.html").read_text(), visible=False,
                                           elem_id="browser-view")
                    browser_plan = gr.JSON(visible=False)
        with gr.Tab("Compare"):
            gr.Markdown("How well does each method restore detail? The centre of your photo is shrunk to 64 px, "
                        "enlarged back by each method, and scored against the original.")
            with gr.Row():
                cmp_image = CheckedImage(label="photo (the Upscale tab's, or another)", type="filepath",
                                         image_mode=None, sources=["upload", "clipboard"], height=200,
                                         elem_id="cmp-image")
                cmp_stage = gr.Radio(COMPARE_CHOICES, value="64to128", label="enlarge by", elem_id="cmp-stage")
                cmp_condition = gr.Dropdown([(v, k) for k, v in CONDITION_LABELS.items()], value="clean",
                                            label="make the small input look like a real photo",
                                            elem_id="cmp-condition")
                cmp_models = gr.CheckboxGroup(MODEL_CHOICES, value=[v for _, v in MODEL_CHOICES], label="models",
                                              elem_id="cmp-models")
                go_cmp = gr.Button("Compare", variant="primary", elem_id="compare-button")
            cmp_status = gr.Markdown("", elem_id="cmp-status")
            cmp_gallery = gr.Gallery(label="input, bilinear, bicubic, learned, truth", columns=4, height="auto",
                                     object_fit="contain", elem_id="cmp-gallery")
            cmp_table = gr.Markdown("", elem_id="cmp-metrics")
        with gr.Tab("Batch"):
            batch_files = gr.File(label="images", file_count="multiple", file_types=["image"], elem_id="batch-files")
            with gr.Row():
                batch_scale = gr.Radio(SCALE_CHOICES, value="2x", label="enlarge by", elem_id="batch-scale")
                batch_model = gr.Radio(MODEL_CHOICES, value=_page_value(page_model), label="model",
                                       elem_id="batch-model")
                go_batch = gr.Button("Upscale all", variant="primary", elem_id="batch-button")
            batch_status = gr.Markdown("", elem_id="batch-status")
            batch_zip = gr.DownloadButton("Download all (zip)", visible=False, elem_id="batch-zip")
        with gr.Tab("GIF / video"):
            gr.Markdown("An animated GIF, WebP or PNG, or a short MP4, WebM or MOV video: every frame upscaled, "
                        "each frame's timing and a video's sound kept.")
            with gr.Row():
                with gr.Column(scale=1, min_width=300):
                    video_file = gr.File(label="animation or video", file_types=motion_serving.ACCEPTED,
                                         elem_id="video-file")
                    video_scale = gr.Radio(SCALE_CHOICES, value="2x", label="enlarge by", elem_id="video-scale")
                    video_model = gr.Radio(MODEL_CHOICES, value=_page_value(server().motion_model), label="model",
                                           elem_id="video-model")
                    with gr.Row():
                        go_video = gr.Button("Upscale every frame", variant="primary", elem_id="video-button")
                        stop_video = gr.Button("Cancel", elem_id="video-cancel")
                    video_status = gr.Markdown("", elem_id="video-status")
                    video_download = gr.DownloadButton("Download", visible=False, elem_id="video-download")
                with gr.Column(scale=3):
                    video_frame = gr.ImageSlider(label="first frame: bilinear | learned", type="filepath",
                                                 format="png", elem_id="video-frame")
        with gr.Accordion("About", open=False, elem_id="about"):
            gr.Markdown(_about(), elem_id="weights-status")

        # The page's events: results and messages on the page, nothing in the API list.
        page = dict(api_visibility="private", concurrency_id="model")
        refused = gr.State("")  # the last upload's refusal, repeated if Upscale is pressed without an image
        image.upload(page_check_upload, [image, scale, in_browser], [image, status, shrink, refused],
                     preprocess=False, api_visibility="private")
        # a result on screen always belongs to the inputs beside it
        results = [slider, download, crop_bilinear, crop_learned, crop_where, result_files, result_note]
        image.change(page_image_changed, [image, scale, in_browser, refused],
                     [*results, status, shrink, cmp_image, refused], preprocess=False, api_visibility="private")
        model.change(page_model_changed, [model, image, scale, in_browser], [*results, strength, status],
                     api_visibility="private")
        scale.change(page_scale_changed, [image, scale, in_browser], [status, shrink], api_visibility="private")
        # a result made with other settings is not shown as this one, nor its "Done"
        scale.change(clear_results, None, results, api_visibility="private")  # (its advice: page_scale_changed)
        for control in (x2_stage, strength):
            control.change(page_setting_changed, [image, scale, in_browser], [*results, status],
                           api_visibility="private")
        for control in (image, scale, x2_stage, strength, model):  # the same for browser mode's view
            control.change(None, js="() => { window.catUpscaler && window.catUpscaler.clear(); }")
        up_outputs = [slider, download, status, crop_bilinear, crop_learned, crop_where, result_files]
        # on a phone the result sits below the controls: brought into view with its note
        # (after the page has drawn the new note: a moment after the event's outputs arrive)
        show_result = ("() => setTimeout(() => { const note = document.querySelector('#result-note'); "
                       "if (note && note.innerText.trim() && note.getBoundingClientRect().top > window.innerHeight * 0.5) "
                       "note.scrollIntoView({block: 'start'}); }, 200)")
        go.click(page_upscale_pressed, [image, scale, model, x2_stage, strength, refused], [*up_outputs, result_note],
                 **page).then(None, js=show_result)
        # Browser mode: the server only exports the network (once) and says where it is; the
        # page's script (web/browser_mode.js) does the rest, without the queue.
        in_browser.change(page_in_browser_changed, [in_browser, image, scale, refused],
                          [go, go_browser, server_view, browser_view, status, shrink], api_visibility="private")
        go_browser.click(page_browser_plan, [image, scale, model, x2_stage, strength, refused], [browser_plan, status],
                         api_visibility="private", concurrency_limit=None).then(
            None, [image, browser_plan], None, js="(image, plan) => { window.catUpscaler.run(image, plan); }")
        # in browser mode the shrunk copy runs in the browser: its plan says where the copy is
        shrink.click(page_shrink_and_upscale, [image, scale, model, x2_stage, strength, in_browser],
                     [*up_outputs, shrink, browser_plan, result_note], **page).then(
            None, [in_browser, browser_plan], None,
            js="(on, plan) => { if (on && plan && plan.image) window.catUpscaler.run(null, plan); }").then(
            None, js=show_result)
        # a click on the input moves the crops, and brings them into view (they sit below the result)
        image.select(page_pick_crop, [result_files], [crop_bilinear, crop_learned, crop_where],
                     api_visibility="private").then(
            None, js="() => setTimeout(() => document.querySelector('#crop-learned')?.scrollIntoView({block: 'nearest'}), 200)")
        cmp_image.upload(page_check_compare_upload, cmp_image, [cmp_image, cmp_status], preprocess=False,
                         api_visibility="private")
        go_cmp.click(page_compare_models, [cmp_image, cmp_stage, cmp_models, cmp_condition],
                     [cmp_gallery, cmp_table, cmp_status], **page)
        for control in (cmp_stage, cmp_models, cmp_condition):
            control.change(lambda: (None, "", ""), None, [cmp_gallery, cmp_table, cmp_status], api_visibility="private")
        # a new photo clears the old comparison (and says why it cannot be used, whichever of
        # the two events ends last); one emptied by a refusal keeps the reason
        cmp_image.change(lambda img: (None, "", page_check_compare_upload(img)[1] if img else gr.update()),
                         cmp_image, [cmp_gallery, cmp_table, cmp_status], preprocess=False, api_visibility="private")
        go_batch.click(page_batch, [batch_files, batch_scale, batch_model], [batch_zip, batch_status], **page)
        for control in (batch_files, batch_scale, batch_model):  # a report belongs to the inputs beside it
            control.change(lambda: (gr.update(visible=False), ""), None, [batch_zip, batch_status],
                           api_visibility="private")
        go_video.click(page_video, [video_file, video_scale, video_model], [video_frame, video_download, video_status],
                       **page)
        # outside the queue's one job at a time: a Cancel must get through while the job runs
        stop_video.click(page_video_cancel, None, video_status, api_visibility="private", concurrency_limit=None)
        video_file.change(lambda: (None, gr.update(visible=False), ""), None,
                          [video_frame, video_download, video_status], api_visibility="private")

        _add_api()
    # One concurrency group: UPSCALER_CONCURRENCY bounds the jobs of every button and
    # endpoint together (and so the server's memory).
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=MAX_QUEUE)
    _poll_queue_less(demo)
    return demo


class ApiStrength(gr.Number):
    """The API's denoise_strength: a number whose example on the "Use via API" page is its
    own value, 1 (Gradio shows a Number's minimum otherwise, and 0 with the default model
    is a refusal). ``example_payload`` is the hook Gradio's docs name for that page."""

    def example_payload(self):
        return self.value

    def get_block_name(self) -> str:  # the ordinary Number frontend
        return "number"


class ApiImages(gr.File):
    """The API's file inputs, whose example on the "Use via API" page is a file the endpoint
    takes (Gradio's own sample image; ``ApiVideo``: its sample video) rather than a File's
    generic PDF, which the batch and video endpoints refuse. ``example_payload`` is the hook
    Gradio names for that page. (No ``__init__`` of ours: Gradio reads the component's
    settings from its constructor's signature.)"""

    sample = gr.Image

    def example_payload(self):
        one = self.sample().example_payload()
        return one if self.file_count == "single" else [one]

    def example_value(self):
        one = self.sample().example_value()
        return one if self.file_count == "single" else [one]

    def get_block_name(self) -> str:  # the ordinary File frontend
        return "file"


class ApiVideo(ApiImages):
    sample = gr.Video


def _add_api():
    """The API: one hidden set of inputs and outputs, typed so gradio_client sends files and
    named so the "Use via API" page says what each one is. ``scale`` takes 2, "2" or "2x"
    (the page documents it as a string); ``model`` takes "clean" as well as "default"."""
    with gr.Row(visible=False):
        api_image = CheckedImage(type="filepath", image_mode=None, label="image")
        api_stage = gr.Radio(list(STAGES), value="64to128", label="stage")
        api_scale = gr.Dropdown([2, 4, 8], value=2, allow_custom_value=True, label="scale")
        api_model = gr.Dropdown([*FAMILIES, *ALIASES], value=DEFAULT_MODEL, label="model")
        api_strength = ApiStrength(value=1.0, minimum=0, maximum=1, label="denoise_strength")
        api_condition = gr.Radio(list(CONDITIONS), value="clean", label="condition")
        api_images = ApiImages(file_count="multiple", label="images")
        api_video = ApiVideo(file_types=motion_serving.ACCEPTED, label="video")
        api_pair = gr.ImageSlider(type="filepath", format="png", label="bilinear | learned")
        api_file = gr.File(label="download")
        api_truth = [gr.Image(type="filepath", format="png", label=name) for name in ("bilinear", "learned", "truth")]
        api_metrics = gr.JSON(label="scores")
        api_text = gr.Textbox(label="report")
        api_button = gr.Button()
    api = dict(concurrency_id="model")
    api_button.click(upscale, [api_image, api_stage, api_model, api_strength], [api_pair, api_file],
                     api_name="upscale", **api)
    api_button.click(upscale_by, [api_image, api_scale, api_model, api_strength], [api_pair, api_file],
                     api_name="upscale_by", **api)
    api_button.click(upscale_batch, [api_images, api_scale, api_model, api_strength], [api_file, api_text],
                     api_name="upscale_batch", **api)
    api_button.click(compare, [api_image, api_stage, api_model, api_condition], [*api_truth, api_metrics],
                     api_name="compare", **api)
    api_button.click(_video_for_api, [api_video, api_scale, api_model, api_strength], [api_file, api_text],
                     api_name="upscale_video", api_description="Every frame of an animated GIF / WebP / PNG or "
                     "an MP4 / WebM / MOV video upscaled; each frame's timing and a video's sound kept.", **api)


def _poll_queue_less(demo):
    """Gradio's queue looks for new jobs every millisecond, also while a job runs: on a
    2-core Space those wake-ups take CPU and the GIL from the network. At 20 ms, x8 end to
    end over gradio_client went from 1.46 to 1.37 times the bare network (median of 12
    requests each, alternating servers, an ad-hoc A/B on the 2-core machine); a job waits
    at most 20 ms more to start. ``sleep_when_free`` is private: where an upgrade removes
    it nothing changes here, and tests/test_private_apis.py fails, so someone looks."""
    queue = getattr(demo, "_queue", None)
    if queue is not None and getattr(queue, "sleep_when_free", QUEUE_POLL_S) < QUEUE_POLL_S:
        queue.sleep_when_free = QUEUE_POLL_S


def create_app() -> gr.Blocks:
    """The demo, ready to launch: the networks loaded (once per process), the page built."""
    server()
    return build_demo()


def launch(demo: gr.Blocks, **kwargs):
    """``demo.launch`` with the page's styles and script and the server's limits.
    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are read by launch() itself. Cross-origin
    isolation gives browser mode its WebAssembly threads (UPSCALER_ISOLATE=0: off)."""
    isolate = os.environ.get("UPSCALER_ISOLATE", "1") != "0"
    return demo.launch(max_file_size=MAX_FILE_SIZE, show_error=True, css=(WEB / "page.css").read_text(),
                       head=f"<script>{browser.SCRIPT.read_text()}</script>",
                       app_kwargs={"middleware": [Middleware(browser.CrossOriginIsolation)]} if isolate else None,
                       **kwargs)


if __name__ == "__main__":
    launch(create_app())
