"""What one demo request does, without any UI: the app (``app.py``) wires these to Gradio.

* ``Pipeline``: a scale (2, 4, 8) as the networks that make it. 2x is one 2x stage, 4x
  chains two (as ``benchmarks/quality.py`` scores it), 8x is the fine-tuned 8x stack.
* ``upscale_file``: open a user's file (``images.open_checked``), check or shrink it to the
  output limit, upscale it, make the bilinear image beside it, and write both as files,
  keeping the user's ICC profile, DPI and EXIF. Returns the files and the facts about
  the result (sizes, times, device) for the status line.
* ``compare_image``: the fixed protocol (``protocol.py``) on one photo: the small input,
  bilinear, bicubic, each learned result and the ground truth, with scores.
* ``zip_files``: a batch's results in one download.

Every refusal is an ``ImageRejected`` whose message is meant for the person.
"""
import contextvars
import ctypes
import ctypes.util
import dataclasses
import functools
import os
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from .images import (
    ImageRejected,
    check_output_size,
    classical_upscale,
    display_mode,
    file_facts,
    fit_to_output,
    open_checked,
    oriented,
    save_image,
)
from .metrics import psnr_ssim
from .degradations import CONDITIONS, degraded_input
from .protocol import classical, eval_pair, ground_truth
from .stages import STACK_STAGE, TWO_X_STAGES, get_stage

SCALES = (2, 4, 8)
# Which 2x stage serves 2x, and which two chain for 4x: the best by measurement on
# Set5/Set14/BSD100 (benchmarks/quality.py, README "Quality").
DEFAULT_X2_STAGE = "64to128"
X4_STAGES = ("64to128", "128to256")
# One line each, for the "advanced" choice of the network behind 2x.
STAGE_HELP = {
    "64to128": "trained to enlarge 64 px crops to 128: small details, the best all-round 2x (measured)",
    "128to256": "trained on 128 -> 256 px: medium-sized structures",
    "256to512": "trained on 256 -> 512 px: large, smooth structures",
    STACK_STAGE: "the three 2x stages stacked and fine-tuned together as one 8x network",
}


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """The stages a scale runs through, in order (each a key of the upscaler table)."""

    scale: int
    stages: tuple

    @classmethod
    def for_scale(cls, scale, x2_stage: str = DEFAULT_X2_STAGE) -> "Pipeline":
        try:
            scale = int(str(scale).lower().rstrip("x"))
        except ValueError:
            scale = None
        if scale not in SCALES:
            raise ImageRejected(f"scale must be 2, 4 or 8 (got {scale!r})")
        if get_stage(x2_stage).name not in TWO_X_STAGES:
            raise ImageRejected(f"the 2x network must be one of {', '.join(TWO_X_STAGES)}")
        return cls(scale, {2: (x2_stage,), 4: X4_STAGES, 8: (STACK_STAGE,)}[scale])

    @classmethod
    def for_stage(cls, stage) -> "Pipeline":
        st = get_stage(stage)
        return cls(st.factor, (st.name,))


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

    def summary(self, model_label: str) -> str:
        (w, h), (W, H) = self.input_size, self.output_size
        text = (f"Done: {w}x{h} -> {W}x{H} (x{W // w if w else '?'}), {model_label} model, "
                f"network {self.network_seconds:.2f} s, total {self.total_seconds:.2f} s on {self.device}.")
        if self.shrunk_from:
            text += (f" Your image was {self.shrunk_from[0]}x{self.shrunk_from[1]}; it was shrunk to {w}x{h} "
                     f"first so that the result fits the limit.")
        return text


def download_name(upload: str, scale: int, model: str, suffix: str = ".png") -> str:
    """``cat.jpg``, 4, "default" -> ``cat-x4-default.png``."""
    stem = Path(str(upload)).stem or "image"
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:80]
    return f"{stem}-x{scale}-{model}{suffix}"


def upscale_file(path, pipeline: Pipeline, upscalers: list, model: str, out_dir: Path, max_input_pixels: int,
                 max_output_pixels: int, shrink_to_fit: bool = False, progress=None) -> Result:
    """Upscale the image file at ``path`` through ``upscalers`` (one per pipeline stage).
    Raises ImageRejected with a message for the user."""
    t0 = time.perf_counter()
    original = open_checked(path, max_input_pixels)
    facts = file_facts(original)  # ICC, DPI, EXIF: read before orientation is applied
    img = oriented(original)
    shrunk_from = None
    if shrink_to_fit:
        fitted = fit_to_output(img, pipeline.scale, max_output_pixels)
        if fitted is not img:
            shrunk_from, img = img.size, fitted
    check_output_size(img.size, pipeline.scale, max_output_pixels, hint="shrink it to fit, or use a smaller scale")
    out_dir = Path(out_dir)
    size = (img.width * pipeline.scale, img.height * pipeline.scale)
    t_net = time.perf_counter()
    learned = img
    for i, up in enumerate(upscalers):
        step = (lambda k, n, i=i: progress((i + k / n) / len(upscalers))) if progress else None
        learned = up(learned, progress=step)
    network_seconds = time.perf_counter() - t_net
    # Writing the two PNGs is most of a large request's time beyond the network. They are
    # encoded at once, after the network (resizing and deflating release the GIL; see
    # png.py): encoding the bilinear image while the network ran took a core from the
    # network's two threads (benchmarks/app_latency.py prints where the time goes).
    with ThreadPoolExecutor(2) as pool:
        bilinear_path = pool.submit(lambda: save_image(classical_upscale(img, size, Image.BILINEAR),
                                                       out_dir / download_name(path, pipeline.scale, "bilinear")))
        shown = display_mode(learned)
        download = save_image(learned, out_dir / download_name(path, pipeline.scale, model), facts)
        shown_path = download if shown is learned else save_image(shown, out_dir / "learned-8bit.png")
        bilinear_path = bilinear_path.result()
    return Result(str(bilinear_path), str(shown_path), str(download), img.size, learned.size, network_seconds,
                  time.perf_counter() - t0, str(upscalers[0].device), shrunk_from)


def compare_image(path, stage, upscalers: dict, max_input_pixels: int, out_dir: Path, condition: str = "clean"):
    """The fixed protocol on one photo. ``upscalers``: {model name: Upscaler} for ``stage``.
    ``condition`` makes the small input look like a real photo (a name in
    ``degradations.CONDITIONS``, e.g. "jpeg50"); the truth stays the clean photo.
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
    scores = {name: dict(zip(("psnr", "ssim"), psnr_ssim(out, truth, st.factor))) for name, out in results.items()}
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


def detail_centre(img: Image.Image, window: int) -> tuple:
    """(x, y) in ``img``'s pixels: the centre of the ``window``-sided square with the most
    local detail (the highest variance of luma), where a 1:1 crop shows a difference.
    (A photo's centre is often plain fur or background, identical in both results.)"""
    import numpy as np

    small = img.convert("L")
    step = max(1, max(small.size) // 256)  # a coarse grid is enough to find the spot
    if step > 1:
        small = small.resize((small.width // step, small.height // step), Image.BOX)
    a = np.asarray(small, dtype=np.float64)
    k = int(max(1, min(window // step, *a.shape)))
    # box sums of x and x^2 over every k x k window, from 2-D cumulative sums
    def box(v):
        c = np.pad(v.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    var = box(a * a) / k ** 2 - (box(a) / k ** 2) ** 2
    y, x = np.unravel_index(int(np.argmax(var)), var.shape)
    return ((x + k / 2) * step, (y + k / 2) * step)


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


def metrics_table(scores: dict, labels: dict | None = None) -> str:
    """Markdown: PSNR and SSIM per method, the best of each in bold, in plain words."""
    labels = labels or {}
    best_p = max(s["psnr"] for s in scores.values())
    best_s = max(s["ssim"] for s in scores.values())
    lines = ["| method | PSNR, dB (higher is better) | SSIM (higher is better, 1 = identical) |", "|---|---:|---:|"]
    for name, s in scores.items():
        p = f"**{s['psnr']:.2f}**" if s["psnr"] == best_p else f"{s['psnr']:.2f}"
        q = f"**{s['ssim']:.4f}**" if s["ssim"] == best_s else f"{s['ssim']:.4f}"
        lines.append(f"| {labels.get(name, name)} | {p} | {q} |")
    return "\n".join(lines)


def zip_files(paths, out_dir: Path, name="upscaled.zip") -> str:
    """One zip of ``paths`` (stored, not deflated: PNGs are compressed already). Two files
    of the same name (``cat.jpg`` from two folders) both go in: the second and later ones
    get ``-2``, ``-3`` ... before the suffix, so unpacking never overwrites a result."""
    target = Path(out_dir) / name
    used = set()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as z:
        for p in paths:
            z.write(p, unique_name(Path(p).name, used))
    return str(target)


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


def new_output_dir(root: Path, ttl_seconds: float) -> Path:
    """A fresh folder for one request's files under ``root``; folders older than
    ``ttl_seconds`` are removed on the way (a public demo must not fill the disk)."""
    import shutil

    root.mkdir(parents=True, exist_ok=True)  # recreated if something cleaned the temp dir under us
    cutoff = time.time() - ttl_seconds
    for old in root.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:  # removed by a request running beside this one
            pass
    return Path(tempfile.mkdtemp(dir=root))


# How long the app keeps files, in seconds (UPSCALER_OUTPUT_TTL / UPSCALER_CACHE_TTL override
# them): a result's download link lives as long as its file; Gradio's cache holds uploads.
OUTPUT_TTL_S = 1200
CACHE_TTL_S = 1200

# Memory. glibc's allocator can keep what a request freed for the next request to reuse, or
# hand it back to the operating system and fault it in again next time. On the 2-core VM
# the second made an 8x request's network 10-25% slower: by default glibc maps buffers over
# its (moving) threshold fresh for each request, unmaps a thread arena's heaps as they empty
# and trims the top of its heap on free, and handing everything back after every request
# (malloc_trim) does the rest. What must not happen either is freed memory piling up over
# weeks (benchmarks/soak.py with no measure: RSS 1.14x to 1.42x over 500 requests). So the
# app tunes the allocator for reuse (tune_malloc), and hands freed memory back only when
# the process has grown more than KEEP_FREED_BYTES since the last time (FreedMemory).
MALLOC_ARENAS = 1  # glibc's default: up to 8 per core, one per thread that allocates
MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit; image buffers up to it come from the heap
KEEP_FREED_BYTES = 512 << 20  # an 8x of a phone-sized photo keeps about 250 MB for reuse
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # mallopt's parameters, from malloc.h


@functools.lru_cache(maxsize=1)
def _libc():
    """glibc, or None (musl, macOS, Windows: the memory functions below do nothing there)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def resident_bytes() -> int | None:
    """This process's resident set size (Linux), or None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def tune_malloc() -> bool:
    """Set glibc's allocator up for a long-running server that makes big images again and
    again (what ``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_``
    would do); -> whether it could. Call it before the server's threads start (app.py does, at
    import):
    * MALLOC_ARENAS arena (the main one): otherwise each thread that allocates (Gradio's
      workers, the PNG writer's) gets its own, whose freed memory the others do not reuse
      and whose heaps glibc unmaps as they empty;
    * buffers up to MMAP_THRESHOLD come from the heap and are reused, instead of being
      mapped, faulted in and unmapped for every request;
    * the top of the heap goes back only past KEEP_FREED_BYTES (FreedMemory does the rest)."""
    libc = _libc()
    if libc is None:
        return False
    return all([libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS), libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                libc.mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES)])


class TorchThreads:
    """Runs a server's torch work on its own threads: ``jobs`` of them (the jobs it runs at
    once), made once and kept. ``run(fn, ...)`` calls ``fn`` on one and returns what it
    returns (or raises what it raised); called from one of them, it calls ``fn`` there.

    Why: torch's CPU build runs on libgomp, which gives every thread that runs a parallel op
    its own team of worker threads, kept for as long as that thread lives. Once a process has
    more of them than cores, every barrier sleeps instead of spinning: with the weights loaded
    on the main thread and requests on Gradio's worker threads, the 8x network took 12-20%
    longer in the server than in a script on the 2-core VM. On these threads it takes the same.
    """

    def __init__(self, jobs: int = 1):
        self.jobs = jobs
        self._local = threading.local()
        self._start()
        os.register_at_fork(after_in_child=self._start)  # a forked child (ZeroGPU) has none of the threads

    def _start(self):
        self._pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="torch")

    def _call(self, fn, args, kwargs):
        self._local.inside = True
        return fn(*args, **kwargs)

    def run(self, fn, /, *args, **kwargs):
        if getattr(self._local, "inside", False):
            return fn(*args, **kwargs)
        context = contextvars.copy_context()  # Gradio's progress bar finds its request in context variables
        return self._pool.submit(context.run, self._call, fn, args, kwargs).result()


class FreedMemory:
    """Call after each request: when the process has grown more than ``keep`` bytes since
    the last release (or since it was made), give the memory the allocator holds freed back
    to the operating system (glibc's ``malloc_trim``). Returns whether it did."""

    def __init__(self, keep: int = KEEP_FREED_BYTES):
        self.keep, self.floor = keep, resident_bytes()
        self._lock = threading.Lock()

    def release_if_grown(self) -> bool:
        libc, rss = _libc(), resident_bytes()
        if libc is None or rss is None or (self.floor is not None and rss - self.floor <= self.keep):
            return False
        if not self._lock.acquire(blocking=False):  # another request is releasing it now
            return False
        try:
            libc.malloc_trim(0)
            self.floor = resident_bytes()
            return True
        finally:
            self._lock.release()


def prune_stray_files(folder: Path, ttl_seconds: float, pattern: str = "tmp*") -> int:
    """Remove files matching ``pattern`` directly in ``folder`` (not in its subfolders)
    older than ``ttl_seconds``; -> how many. Gradio 6's ``gr.File`` preprocessing leaves
    one empty ``tmpXXXX`` file in its cache per file it receives (``NamedTemporaryFile(
    delete=False)``, never used), which its ``delete_cache`` does not remove: over weeks a
    public demo would pile up millions of them (benchmarks/soak.py found them)."""
    cutoff, removed = time.time() - ttl_seconds, 0
    try:
        candidates = list(Path(folder).glob(pattern))
    except OSError:
        return 0
    for path in candidates:
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


__all__ = ["CACHE_TTL_S", "OUTPUT_TTL_S", "FreedMemory", "TorchThreads", "tune_malloc", "prune_stray_files", "resident_bytes", "SCALES", "Pipeline", "Result", "compare_image", "crop_1to1", "detail_centre", "download_name",
           "locator", "metrics_table", "new_output_dir", "unique_name", "upscale_file", "zip_files"]
