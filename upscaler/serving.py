"""What one demo request does, without any UI: the app (``app.py``) wires these to Gradio.
(The server *process* -- its torch threads, memory and disk pruning -- is ``process.py``.)

* ``upscale_upload``: a user's file through ``pipeline.upscale_file`` (the same path as the
  command line's), plus the bilinear image beside it and an 8-bit copy for the page;
  returns the files and the facts about the result (sizes, times, device) for the status
  line.
* ``compare_image``: the fixed protocol (``protocol.py``) on one photo: the small input,
  bilinear, bicubic, each learned result and the ground truth, with scores.
* ``crop_1to1``, ``locator``: the 1:1 crops and where they come from (where they look:
  ``focus.crop_centre``).
* ``zip_files``: a batch's results in one download.

Every refusal is an ``ImageRejected`` whose message is meant for the person.
"""
import dataclasses
import time
import zipfile
from pathlib import Path

from PIL import Image

from .conditions import CONDITIONS, degraded_input
from .images import ImageRejected, classical_upscale, display_mode, open_checked, oriented, save_image
from .models import strength_tag
from .pipeline import Pipeline, upscale_file
from .protocol import classical, eval_pair, ground_truth, score_pair
from .stages import STACK_STAGE, get_stage

# One line each, for the "advanced" choice of the network behind 2x.
STAGE_HELP = {
    "64to128": "trained to enlarge 64 px crops to 128: small details, the best all-round 2x (measured)",
    "128to256": "trained on 128 -> 256 px: medium-sized structures (sharp's is tuned to follow 64to128 "
                "in the 4x; alone it scores below bicubic)",
    "256to512": "trained on 256 -> 512 px: large, smooth structures",
    STACK_STAGE: "the three 2x stages stacked and fine-tuned together as one 8x network",
}


@dataclasses.dataclass
class Result:
    bilinear: str        # file: bilinear at the output size (8-bit, for the page)
    learned: str         # file: the learned result for the page (8-bit)
    download: str        # file: the learned result, full size and depth, with the user's metadata
    input_size: tuple
    output_size: tuple
    network_seconds: float
    total_seconds: float
    device: str
    shrunk_from: tuple | None = None
    frames: int = 1  # an animation's frame count (only its first was upscaled)

    def summary(self, model_label: str) -> str:
        (w, h), (W, H) = self.input_size, self.output_size
        # "model" first: a label such as "sharp (perceptual), invented detail 0.5" has commas of its own
        text = (f"Done: {w}x{h} -> {W}x{H} (x{W // w if w else '?'}), model {model_label}; "
                f"network {self.network_seconds:.2f} s, total {self.total_seconds:.2f} s on {self.device}.")
        if self.shrunk_from:
            text += (f" Your image was {self.shrunk_from[0]}x{self.shrunk_from[1]}; it was shrunk to {w}x{h} "
                     f"first so that the result fits the limit.")
        if self.frames > 1:
            text += (f" It is an animation of {self.frames} frames: this is its first frame; the GIF / video tab "
                     f"upscales every frame.")
        return text


def download_name(upload: str, scale: int, model: str, strength: float | None = None, suffix: str = ".png") -> str:
    """``cat.jpg``, 4, "photo" -> ``cat-x4-photo.png``; with a blend strength (one that is
    not the model itself), 0.3 -> ``cat-x4-photo-d0.3.png``: two strengths never share a name."""
    stem = Path(str(upload)).stem or "image"
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:80]
    tag = "" if strength is None else f"-{strength_tag(strength)}"
    return f"{stem}-x{scale}-{model}{tag}{suffix}"


def upscale_upload(path, pipeline: Pipeline, upscalers: list, model: str, out_dir: Path, max_input_pixels: int,
                   max_output_pixels: int, shrink_to_fit: bool = False, progress=None,
                   strength: float | None = None) -> Result:
    """Upscale the image file at ``path`` through ``upscalers`` (one per pipeline stage) for
    the page: the full result with the user's metadata (the download), the bilinear image
    at the same size, and an 8-bit copy where the result is not 8-bit. ``strength``: the
    blend strength that ran, if any (it goes into the file name).
    Raises ImageRejected with a message for the user."""
    started = time.perf_counter()
    out_dir = Path(out_dir)

    def page_files(img, learned):
        # Written while the download is written (pipeline.upscale_file's ``beside``): the PNG
        # encoders release the GIL. Encoding the bilinear image while the network ran took a
        # core from the network's two threads (benchmarks/app_latency.py: where the time goes).
        bilinear = save_image(classical_upscale(img, learned.size, Image.BILINEAR),
                              out_dir / download_name(path, pipeline.scale, "bilinear"))
        shown = display_mode(learned)
        return bilinear, (None if shown is learned else save_image(shown, out_dir / "learned-8bit.png"))

    done = upscale_file(path, upscalers, out_dir / download_name(path, pipeline.scale, model, strength),
                        max_input_pixels=max_input_pixels, max_output_pixels=max_output_pixels,
                        shrink_to_fit=shrink_to_fit, progress=progress, beside=page_files)
    bilinear, shown = done.beside
    return Result(str(bilinear), str(shown or done.path), str(done.path), done.image.size, done.result.size,
                  done.network_seconds, time.perf_counter() - started, str(upscalers[0].device), done.shrunk_from,
                  done.frames)


def compare_image(path, stage, upscalers: dict, max_input_pixels: int, out_dir: Path, condition: str = "clean"):
    """The fixed protocol on one photo. ``upscalers``: {model name: Upscaler} for ``stage``.
    ``condition`` makes the small input look like a real photo (a name in
    ``conditions.CONDITIONS``, e.g. "jpeg50"); the truth stays the clean photo.
    -> (files {name: path} with "input", "bilinear", "bicubic", each model, "truth";
        scores {name: {"psnr", "ssim"}})."""
    st = get_stage(stage)
    if condition not in CONDITIONS:
        raise ImageRejected(f"unknown input condition {condition!r}: use one of {', '.join(CONDITIONS)}")
    img = display_mode(oriented(open_checked(path, max_input_pixels))).convert("RGB")
    if min(img.size) < 16:
        raise ImageRejected(f"the image is {img.width}x{img.height}; Compare needs at least 16 pixels a side")
    lr, truth = eval_pair(img, st)
    if condition != "clean":
        lr = degraded_input(ground_truth(img), st.input_size, condition, seed=0)
    results = {name: classical(name, st.factor)(lr) for name in ("bilinear", "bicubic")}
    for model, up in upscalers.items():
        results[model] = up(lr)
    scores = {name: score_pair(out, truth, st.factor, perceptual=True) for name, out in results.items()}
    out_dir = Path(out_dir)
    files = {"input": save_image(lr, out_dir / "input.png")}
    files.update({name: save_image(out, out_dir / f"{name}.png") for name, out in results.items()})
    files["truth"] = save_image(truth, out_dir / "truth.png")
    return {k: str(v) for k, v in files.items()}, scores


def crop_1to1(paths: dict, centre, size: int) -> dict:
    """The same ``size`` x ``size`` window (clipped to the image) of each image file, at
    full resolution: what a person judges. ``centre`` is (x, y) in the images' pixels."""
    out = {}
    for name, path in paths.items():
        img = Image.open(path)
        half = size // 2
        x = min(max(int(centre[0]) - half, 0), max(img.width - size, 0))
        y = min(max(int(centre[1]) - half, 0), max(img.height - size, 0))
        out[name] = img.crop((x, y, min(x + size, img.width), min(y + size, img.height)))
    return out


def locator(img: Image.Image, centre, window: float, max_side: int = 200) -> Image.Image:
    """A thumbnail of ``img`` with a red frame around the ``window``-sided square at
    ``centre`` (in ``img``'s pixels): where the 1:1 crops come from."""
    from PIL import ImageDraw

    scale = min(1.0, max_side / max(img.size))
    thumb = display_mode(img).convert("RGB").resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                                                     Image.BILINEAR)
    half = window * scale / 2
    cx, cy = centre[0] * scale, centre[1] * scale
    box = [max(cx - half, 0), max(cy - half, 0), min(cx + half, thumb.width - 1), min(cy + half, thumb.height - 1)]
    ImageDraw.Draw(thumb).rectangle(box, outline=(255, 0, 0), width=2)
    return thumb


# The columns of the Compare table: score, heading, format, whether higher is better.
COLUMNS = [("psnr", "PSNR, dB (higher is better)", "{:.2f}", True),
           ("ssim", "SSIM (higher is better, 1 = identical)", "{:.4f}", True),
           ("lpips", "LPIPS (lower = closer to the original, as people judge)", "{:.3f}", False)]


def metrics_table(scores: dict, labels: dict | None = None) -> str:
    """Markdown: PSNR, SSIM and (where measured) LPIPS per method, the best of each in
    bold, in plain words."""
    labels = labels or {}
    columns = [c for c in COLUMNS if all(c[0] in s for s in scores.values())]
    best = {key: (max if higher else min)(s[key] for s in scores.values()) for key, _, _, higher in columns}
    lines = ["| method | " + " | ".join(head for _, head, _, _ in columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, s in scores.items():
        cells = [f"**{fmt.format(s[key])}**" if s[key] == best[key] else fmt.format(s[key])
                 for key, _, fmt, _ in columns]
        lines.append(f"| {labels.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def zip_files(paths, out_dir: Path, name="upscaled.zip") -> tuple:
    """One zip of ``paths`` (stored, not deflated: PNGs are compressed already) -> (its path,
    each file's name in it, in order). Two files of the same name (``cat.jpg`` from two
    folders) both go in: the second and later ones get ``-2``, ``-3`` ... before the suffix,
    so unpacking never overwrites a result, and the report can say which is which."""
    target = Path(out_dir) / name
    used, names = set(), []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as z:
        for p in paths:
            names.append(unique_name(Path(p).name, used))
            z.write(p, names[-1])
    return str(target), names


def unique_name(name: str, used: set) -> str:
    """``name``, or ``stem-2.suffix``, ``stem-3.suffix`` ... the first not in ``used``
    (compared case-insensitively, as on Windows and macOS disks); adds it to ``used``."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = name, 1
    while candidate.lower() in used:
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    used.add(candidate.lower())
    return candidate



__all__ = ["STAGE_HELP", "Result", "compare_image", "crop_1to1", "download_name", "locator",
           "metrics_table", "unique_name", "upscale_upload", "zip_files"]
