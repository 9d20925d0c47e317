"""The Gradio demo (also a Hugging Face Space): bilinear vs. learned, side by side.

UI wiring only: the logic (weights policy, limits, upscaling, scoring) lives in the
``upscaler`` package.

    python app.py                        # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / _PORT)

Weights: fetched once at start-up from the Hub repo ``UPSCALER_REPO_ID`` at the pinned
revision ``UPSCALER_REVISION`` with ``hf_hub_download``; if the Hub is unreachable, the
repo or a file is missing, or a file does not load strictly, the bundled ``weights/``
serve instead and the page says so. ``HF_HUB_OFFLINE=1`` skips the network.

API (``gradio_client``): ``/upscale(image, stage, model="default")`` -> (bilinear, learned)
image pair and the learned PNG file; ``/compare(image, stage, model="default")`` ->
bilinear, learned, ground truth and their PSNR/SSIM.
"""
import atexit
import functools
import logging
import os
import shutil
import tempfile
import time
import traceback
from pathlib import Path

import gradio as gr
import torch
from PIL import Image

from upscaler.images import DEFAULT_MAX_PIXELS, ImageRejected, check_output_size, classical_upscale, display_mode, open_checked, oriented
from upscaler.inference import DTYPES, Upscaler, pick_device
from upscaler.metrics import psnr_ssim
from upscaler.models import DEFAULT_MODEL, FAMILIES
from upscaler.protocol import eval_pair
from upscaler.stages import STAGES
from upscaler.weights import DEFAULT_REPO_ID, DEFAULT_REVISION, load_serving

log = logging.getLogger("app")

# Limits that fit a 2-vCPU / 16 GB Space: at most 4096x4096 pixels out, whatever the stage.
MAX_OUTPUT_PIXELS = int(os.environ.get("UPSCALER_MAX_OUTPUT_PIXELS", 4096 * 4096))
MAX_INPUT_PIXELS = int(os.environ.get("UPSCALER_MAX_INPUT_PIXELS", DEFAULT_MAX_PIXELS))  # Compare only shrinks
MAX_FILE_SIZE = os.environ.get("UPSCALER_MAX_FILE_SIZE", "20mb")
CONCURRENCY = int(os.environ.get("UPSCALER_CONCURRENCY", 1))  # jobs at once, both endpoints together
MAX_QUEUE = int(os.environ.get("UPSCALER_MAX_QUEUE", 24))
# float32 / bfloat16 / float16, or unset: chosen per device (upscaler.inference.pick_dtype).
DTYPE = os.environ.get("UPSCALER_DTYPE") or None
if DTYPE not in (None, *DTYPES):
    raise SystemExit(f"UPSCALER_DTYPE={DTYPE!r}: use {', '.join(DTYPES[:-1])} or {DTYPES[-1]} (or leave it unset).")
EXAMPLES = Path(__file__).parent / "examples"

try:  # ZeroGPU Spaces: ask for a GPU per call; elsewhere a no-op
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn):
        return fn


# Every result image is written here as a PNG and handed to Gradio as a path, which Gradio
# copies into its cache atomically. A PIL image it would encode and rewrite in place at a
# path named by the content's hash, so while two users get the same result (the same
# example at the same stage), one of them can fetch a half-written or empty file
# (gradio 6.31; reproduced in a stress run). Our copies are needed only until Gradio has
# copied them, so each request removes those older than OUTPUT_TTL: a public demo must not
# fill the disk with old results. Gradio's cache is pruned by delete_cache (below).
OUTPUTS = Path(tempfile.mkdtemp(prefix="upscaler-outputs-"))
OUTPUT_TTL = 600  # seconds
atexit.register(shutil.rmtree, OUTPUTS, ignore_errors=True)


def _output_dir() -> Path:
    """A fresh folder for one request's images; old ones are removed on the way."""
    OUTPUTS.mkdir(exist_ok=True)  # recreated if something cleaned the temp dir under us
    cutoff = time.time() - OUTPUT_TTL
    for old in OUTPUTS.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:  # removed by a request running beside this one
            pass
    return Path(tempfile.mkdtemp(dir=OUTPUTS))


def _saved(img: Image.Image, folder: Path, name: str) -> str:
    path = folder / name
    img.save(path)  # PNG: lossless, and 16-bit stays 16-bit
    return str(path)


# ------------------------------------------------------------------ weights, once
def load_all():
    """-> ({(model, stage name): Upscaler}, message about where the weights came from)."""
    device = pick_device()
    nets, sources, message = load_serving(FAMILIES, STAGES, DEFAULT_REPO_ID, DEFAULT_REVISION)
    upscalers = {key: Upscaler(net, key[1], device=device, dtype=DTYPE, model=key[0], source=sources[key])
                 for key, net in nets.items()}
    log.warning("%s sources: %s", message, sorted(set(sources.values())))
    return upscalers, f"{message} Device: {device}."


UPSCALERS, WEIGHTS_MESSAGE = load_all()


# ------------------------------------------------------------------------ handlers
def _check(image, stage, model):
    if image is None:
        raise gr.Error("Upload an image first.")
    if stage not in STAGES:
        raise gr.Error(f"Unknown stage {stage!r}: use one of {', '.join(STAGES)}.")
    model = {f.label: name for name, f in FAMILIES.items()}.get(model, model)  # a label is accepted too
    if model not in FAMILIES:
        raise gr.Error(f"Unknown model {model!r}: use one of {', '.join(FAMILIES)}.")
    if (model, stage) not in UPSCALERS:
        raise gr.Error(f"The {model} model has no usable weights for {stage} on this server.")
    return STAGES[stage], model


def _open(path):
    try:
        return open_checked(path, MAX_INPUT_PIXELS)
    except ImageRejected as e:
        raise gr.Error(f"Cannot use this file: {e}") from None


def _guarded(fn):
    """No traceback reaches a user: unexpected errors are logged and reported plainly."""
    @functools.wraps(fn)  # keeps the signature: the API's parameter names come from it
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except MemoryError:
            raise gr.Error("Out of memory for this image: try a smaller one or a 2x stage.") from None
        except Exception as e:
            log.error("handler failed: %s", traceback.format_exc())
            raise gr.Error(f"Upscaling failed ({type(e).__name__}). Try another image.") from None
    return wrapper


@gpu
@_guarded
def upscale(image, stage="64to128", model=DEFAULT_MODEL, progress=gr.Progress()):
    """Upscale the whole image by the stage's factor: (bilinear, learned) and the learned PNG."""
    st, model = _check(image, stage, model)
    img = oriented(_open(image))  # transposed once here; later calls find no EXIF rotation left
    try:
        check_output_size(img.size, st.factor, MAX_OUTPUT_PIXELS)
    except ImageRejected as e:
        raise gr.Error(f"{e}. Use a smaller image or a 2x stage.") from None
    up = UPSCALERS[model, stage]
    with torch.inference_mode():
        learned = up(img, progress=lambda i, n: progress(i / n, desc=f"tile {i}/{n}"))
    bilinear = classical_upscale(img, learned.size, Image.BILINEAR)
    folder = _output_dir()
    download = _saved(learned, folder, f"upscaled-x{st.factor}-{model}.png")  # full size and bit depth
    shown = display_mode(learned)  # the same image unless it is 16-bit, CMYK...: then 8-bit RGB(A)
    shown_path = download if shown is learned else _saved(shown, folder, "learned-8bit.png")
    return (_saved(bilinear, folder, "bilinear.png"), shown_path), download


@gpu
@_guarded
def compare(image, stage="64to128", model=DEFAULT_MODEL):
    """The reference's figure, live: centre square as ground truth at the stage's output size,
    downscaled to its input size, upscaled back; bilinear, learned and truth with PSNR/SSIM."""
    st, model = _check(image, stage, model)
    img = display_mode(oriented(_open(image))).convert("RGB")
    if min(img.size) < 16:
        raise gr.Error(f"The image is {img.width}x{img.height}; Compare needs at least 16 pixels a side.")
    lr, truth = eval_pair(img, st)
    with torch.inference_mode():
        learned = UPSCALERS[model, stage](lr)
    bilinear = lr.resize(truth.size, Image.BILINEAR)
    metrics = {}
    for name, out in (("bilinear", bilinear), ("bicubic", lr.resize(truth.size, Image.BICUBIC)), (model, learned)):
        p, s = psnr_ssim(out, truth, st.factor)
        metrics[name] = {"psnr_y_db": round(p, 2), "ssim_y": round(s, 4)}
    folder = _output_dir()
    return (_saved(bilinear, folder, "bilinear.png"), _saved(learned, folder, "learned.png"),
            _saved(truth, folder, "truth.png"), metrics)


# ---------------------------------------------------------------------------- page
STAGE_CHOICES = [(s.label, s.name) for s in STAGES.values()]
MODEL_CHOICES = [(f.label, name) for name, f in FAMILIES.items()]


class CheckedImage(gr.Image):
    """gr.Image whose upload step turns unreadable files into a readable message.
    (``is_template`` makes Gradio use the ordinary Image frontend.)"""

    is_template = True

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except Exception as e:
            if isinstance(e, Image.DecompressionBombError):
                raise gr.Error("Cannot use this file: it declares more pixels than it can plausibly hold "
                               "(a decompression bomb).") from None
            raise gr.Error("Cannot use this file: it is not an image that can be read "
                           "(PNG, JPEG, WebP, GIF, BMP, TIFF...).") from None


def build_demo():
    examples = sorted(str(p) for p in EXAMPLES.glob("*.jpg"))
    with gr.Blocks(title="Cat upscaler", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(
            "# Cat upscaler\nSmall CNNs trained on cat photos: three 2x stages (64->128, 128->256, 256->512) "
            "and the three stacked and fine-tuned as one 8x network. **Upscale** enlarges your whole image; "
            "**Compare** shrinks a centre crop to the stage's input size and shows how well each method "
            "restores it.\n\n"
            f"Limits: files up to {MAX_FILE_SIZE.upper()} and {MAX_INPUT_PIXELS / 1e6:.0f} megapixels; Upscale makes "
            f"at most {MAX_OUTPUT_PIXELS / 1e6:.1f} megapixels (up to {int((MAX_OUTPUT_PIXELS / 4) ** .5)} px "
            f"square in for x2, {int((MAX_OUTPUT_PIXELS / 64) ** .5)} px square for x8)."
        )
        gr.Markdown(f"*{WEIGHTS_MESSAGE}*", elem_id="weights-status")
        with gr.Row():
            with gr.Column(scale=1):
                image = CheckedImage(label="your image", type="filepath", image_mode=None, format="png",
                                     sources=["upload", "clipboard"], elem_id="input-image")
                stage = gr.Radio(STAGE_CHOICES, value="64to128", label="stage")
                model = gr.Radio(MODEL_CHOICES, value=DEFAULT_MODEL, label="model")
                if examples:
                    gr.Examples(examples, inputs=[image], label="examples (cats from the validation set)")
            with gr.Column(scale=2):
                with gr.Tab("Upscale"):
                    go = gr.Button("Upscale", variant="primary", elem_id="upscale-button")
                    slider = gr.ImageSlider(label="bilinear | learned (drag to compare)", type="pil", format="png",
                                            elem_id="upscale-slider")
                    download = gr.File(label="learned result, full size (PNG)", elem_id="upscale-file")
                with gr.Tab("Compare"):
                    go_cmp = gr.Button("Compare", variant="primary", elem_id="compare-button")
                    with gr.Row():
                        out_bilinear = gr.Image(label="bilinear", format="png", type="pil", elem_id="cmp-bilinear")
                        out_learned = gr.Image(label="learned", format="png", type="pil", elem_id="cmp-learned")
                        out_truth = gr.Image(label="ground truth", format="png", type="pil", elem_id="cmp-truth")
                    metrics = gr.JSON(label="PSNR / SSIM on Y (higher is better)", elem_id="cmp-metrics")
        # One concurrency group: UPSCALER_CONCURRENCY bounds the jobs of both buttons together
        # (and so the server's memory), not each button separately.
        go.click(upscale, [image, stage, model], [slider, download], api_name="upscale", concurrency_id="model")
        go_cmp.click(compare, [image, stage, model], [out_bilinear, out_learned, out_truth, metrics],
                     api_name="compare", concurrency_id="model")
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=MAX_QUEUE)
    return demo


demo = build_demo()

if __name__ == "__main__":
    # GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are read by launch() itself.
    demo.launch(max_file_size=MAX_FILE_SIZE, show_error=True)
