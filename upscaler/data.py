"""Training data: any image dataset -> batches of (low-res, high-res) pairs on the training device.

Sources: a Hub dataset through ``datasets.load_dataset`` (default: the cat half of
``microsoft/cats_vs_dogs``, rows with ``labels == 0``) or a local folder loaded as
``imagefolder``.

Why it looks like this: making pairs one sample at a time with PIL (JPEG decode, two
resizes, flips) in DataLoader workers starved a GPU at about 250 samples/s. So:

1. ``DecodedImages``: every photo is decoded **once** into one uint8 file, memory-mapped,
   keyed by the dataset's fingerprint (a second run, or a second process, maps the same
   file). Unreadable photos are skipped and counted here, once.
2. ``PairMaker``: each step's pairs are made as tensor operations on the training device:
   a random square of 60-100% of the photo's short side, resized to the stage's output
   size (its "world": 128 px for 64to128, 512 for 256to512 and 64to512); a random
   ``patch`` x ``patch`` crop of that world is the HR target, with random flips and
   transposes; its bicubic downscale by the stage's factor is the LR input.
   Only the part of the photo under the patch is cut out and resized: the same scale
   distribution as resizing the whole world and cropping it, at a fraction of the work
   (the patch's edge pixels see slightly less filter context than they would in the world).
   With ``content_scale="all"`` the photo is seen at any size between the world and its
   own resolution instead, so a stage also learns the content scales of larger photos.

Every resize is ``pil_bicubic``: torch's antialiased bicubic run as PIL runs it
(horizontal pass, round to 8 bits, vertical pass, round), so the LR inputs training sees
match ``PIL.Image.BICUBIC``, which the evaluation protocol uses (``protocol.py``), to
about 0.001 dB (``tests/test_data.py``).

With ``degradations`` (the ``photo`` family), the LR input is instead made by
``degradations.degrade``: blur, the downscale method, noise and JPEG, per sample, on the
same device. Without it the pairs are exactly the clean bicubic ones above.

Randomness is keyed by (seed, process, step), never drawn from a global generator: a run
killed and resumed from a checkpoint sees exactly the batches an uninterrupted run would.
"""
import hashlib
import io
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .degradations import Degradations, degrade
from .images import oriented
from .resize import pil_bicubic
from .stages import Stage

CATS_DATASET = "microsoft/cats_vs_dogs"
# How big the content of a training patch is (PairMaker._hr_patch): "world" = the stage's own
# scale (the reference design), "all" = anything from it down to the photo's own pixels.
CONTENT_SCALES = ("world", "all")
CATS_LABEL_COLUMN, CATS_LABEL_VALUE = "labels", 0  # 0 = cat in microsoft/cats_vs_dogs


# ------------------------------------------------------------------------ sources
def load_images(dataset_name=None, data_dir=None, split="train", image_column="image",
                label_column=None, label_value=None, cache_dir=None):
    """A ``datasets.Dataset`` with one ``image`` column, not yet decoded."""
    import datasets

    if data_dir is not None:
        ds = datasets.load_dataset("imagefolder", data_dir=str(data_dir), split=split, cache_dir=cache_dir)
    else:
        ds = datasets.load_dataset(dataset_name or CATS_DATASET, split=split, cache_dir=cache_dir)
    if label_column is not None and label_value is not None:
        if label_column not in ds.column_names:
            raise ValueError(f"label column {label_column!r} not in dataset columns {ds.column_names}")
        ds = ds.filter(lambda v: v == label_value, input_columns=label_column)
    if image_column not in ds.column_names:
        raise ValueError(f"image column {image_column!r} not in dataset columns {ds.column_names}")
    if image_column != "image":
        ds = ds.rename_column(image_column, "image")
    ds = ds.select_columns(["image"])
    # Decode ourselves, so one unreadable file is a skipped photo, not a crash.
    return ds.cast_column("image", datasets.Image(decode=False))


def split_held_out(ds, size: int):
    """-> (training images, ``size`` held-out images): the same split whatever the seed or the
    stage, so every run holds out the same photos and can be compared on them."""
    split = ds.train_test_split(test_size=size, seed=1234, shuffle=True)
    return split["train"], split["test"]


def open_image(value) -> Image.Image | None:
    """A datasets image cell ({'bytes', 'path'}) or a PIL image -> RGB PIL image, or None
    if it cannot be read."""
    try:
        if isinstance(value, Image.Image):
            img = value
        elif value.get("bytes") is not None:
            img = Image.open(io.BytesIO(value["bytes"]))
        else:
            img = Image.open(value["path"])
        img = oriented(img)
        img.load()
        return img.convert("RGB")
    except Exception:
        return None


# ------------------------------------------------------------------ decoded cache
class DecodedImages:
    """Every readable photo of a dataset as uint8 HxWx3, decoded once.

    Stored as one flat memory-mapped file plus an index (offset, height, width per
    photo), under ``cache_dir/upscaler-decoded/<fingerprint>/``. The first process
    builds it (write to a temporary name, then rename); every later run or process maps
    it. ``len()`` counts readable photos; ``skipped`` counts the unreadable ones.
    """

    def __init__(self, folder: Path):
        index = json.loads((folder / "index.json").read_text())
        self.folder = folder
        self.skipped = index["skipped"]
        self.entries = index["entries"]  # [offset, height, width]
        size = sum(h * w * 3 for _, h, w in self.entries)
        self.pixels = np.memmap(folder / "pixels.u8", dtype=np.uint8, mode="r", shape=(max(size, 1),))

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, i) -> np.ndarray:
        offset, h, w = self.entries[i]
        return self.pixels[offset:offset + h * w * 3].reshape(h, w, 3)

    @classmethod
    def build(cls, ds, cache_dir=None, num_workers=0) -> "DecodedImages":
        """Decode ``ds`` (from ``load_images``) once, or map the cache of an earlier run."""
        import datasets

        root = Path(cache_dir) if cache_dir else Path(datasets.config.HF_DATASETS_CACHE)
        key = getattr(ds, "_fingerprint", None) or hashlib.sha1(repr(ds).encode()).hexdigest()
        folder = root / "upscaler-decoded" / key
        if (folder / "index.json").is_file():
            return cls(folder)
        tmp = folder.with_name(f"{key}.tmp-{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        entries, skipped, offset = [], 0, 0
        column = ds.with_format(None)  # the raw cells: {'bytes', 'path'}

        def decode(i):
            img = open_image(column[i]["image"])
            return None if img is None else np.asarray(img, dtype=np.uint8)

        with open(tmp / "pixels.u8", "wb") as fh, ThreadPoolExecutor(max(num_workers, 1)) as pool:
            for a in pool.map(decode, range(len(ds))):  # PIL decodes without the GIL
                if a is None:
                    skipped += 1
                    continue
                fh.write(np.ascontiguousarray(a).tobytes())
                entries.append([offset, a.shape[0], a.shape[1]])
                offset += a.size
        (tmp / "index.json").write_text(json.dumps({"skipped": skipped, "entries": entries}))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished the same cache first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        return cls(folder)


# ------------------------------------------------------------------------- pairs
def steps_per_epoch(num_images: int, batch_size: int, accumulation: int = 1, world: int = 1) -> int:
    """Optimizer steps in an epoch: every photo once across all processes, whole steps only."""
    return num_images // (batch_size * accumulation * world)


class PairMaker:
    """Makes each step's training batch on ``device`` from a ``DecodedImages``.

    ``batch(step, micro)`` -> (lr, hr), float tensors in [0, 1], N x 3 x p/f x p/f and
    N x 3 x p x p: micro-batch ``micro`` of optimizer step ``step``. Photos are visited in a
    shuffled order per epoch (an epoch = every photo once across all processes); process
    ``rank`` takes every ``world``-th photo of that order, ``batch_size * accumulation`` of
    them per step. Each sample's crop, flips and transposes are keyed by (seed, process,
    step, its place in the step), so the samples of a step are the same however they are cut
    into micro-batches: batch 4 x accumulation 2 sees exactly what batch 8 sees (the
    degradations, drawn per micro-batch, are the exception).
    """

    def __init__(self, images: DecodedImages, stage: Stage, patch: int, batch_size: int, device,
                 seed=0, rank=0, world=1, min_scale=0.6, degradations: Degradations | None = None,
                 accumulation: int = 1, content_scale: str = "world"):
        self.per_step = batch_size * accumulation  # photos a process takes per optimizer step
        if len(images) < self.per_step * world:
            raise ValueError(f"{len(images)} readable training images cannot fill one step of "
                             f"{world} process(es) x batch {batch_size} x accumulation {accumulation}")
        self.images, self.stage, self.device = images, stage, torch.device(device)
        self.f = stage.factor
        self.patch = min(patch, stage.output_size) // self.f * self.f
        self.batch_size, self.seed, self.rank, self.world, self.min_scale = batch_size, seed, rank, world, min_scale
        self.degradations = degradations
        if content_scale not in CONTENT_SCALES:
            raise ValueError(f"content_scale {content_scale!r}: use one of {', '.join(CONTENT_SCALES)}")
        self.content_scale = content_scale
        self.steps_per_epoch = steps_per_epoch(len(images), batch_size, accumulation, world)

    def _generator(self, *key) -> torch.Generator:
        digest = hashlib.sha256("-".join(map(str, (self.seed, *key))).encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))

    def indices(self, step: int, micro: int = 0) -> list[int]:
        epoch, pos = divmod(step, self.steps_per_epoch)
        order = torch.randperm(len(self.images), generator=self._generator("epoch", epoch))
        mine = order[self.rank::self.world]
        start = pos * self.per_step + micro * self.batch_size
        return mine[start:start + self.batch_size].tolist()

    def batch(self, step: int, micro: int = 0):
        out = self.stage.output_size
        hrs = []
        for k, i in enumerate(self.indices(step, micro)):
            g = self._generator("sample", self.rank, step, micro * self.batch_size + k)
            hr = self._hr_patch(self.images[i], g, out)
            flip_w, flip_h, transpose = (torch.rand(3, generator=g) < 0.5).tolist()
            hr = hr.flip(3) if flip_w else hr
            hr = hr.flip(2) if flip_h else hr
            hrs.append(hr.transpose(2, 3) if transpose else hr)
        hr = torch.cat(hrs)
        if self.degradations is None:
            lr = pil_bicubic(hr, (self.patch // self.f, self.patch // self.f))
        else:  # its own stream: the crops above are the same with or without degradations
            lr = degrade(hr, self.f, self._generator("degrade", self.rank, step, micro), self.degradations)
        return lr.div_(255), hr.div_(255)

    def _hr_patch(self, photo: np.ndarray, g: torch.Generator, out: int) -> torch.Tensor:
        """One HR patch, 1 x 3 x p x p on the device, 0..255.

        "world" (the reference design's scale): the world is a random square of side ``s``
        (60-100% of the photo's short side) seen at ``out`` pixels (the stage's output size),
        so a 64to128 patch shows a whole cat shrunk to 128 px.
        "all": the photo seen with a short side drawn log-uniformly between ``out`` and its
        own (never enlarged), so a patch shows anything from the whole cat to fur at the
        camera's own resolution: what a 2x network meets on a 500 px upload.
        Either way the patch is a random p x p window of that view. Resizing the whole view
        and then cropping would resize up to 16x more pixels than the patch holds, so the
        window of the photo under the patch is cut out first and resized alone: the same
        scale distribution, the same filter; only the patch's edge pixels see slightly less
        context."""
        h, w = photo.shape[:2]
        r = torch.rand(3, generator=g).tolist()
        short = min(h, w)
        if self.content_scale == "all" and short > out:
            seen = math.exp(math.log(out) + r[0] * (math.log(short) - math.log(out)))  # the view's short side
            window = max(round(self.patch * short / seen), 1)  # photo pixels under the patch
        else:
            side = short * (self.min_scale + (1 - self.min_scale) * r[0])
            window = max(round(side * self.patch / out), 1)
        left, top = int(r[1] * (w - window + 1)), int(r[2] * (h - window + 1))
        region = np.ascontiguousarray(photo[top:top + window, left:left + window])
        x = torch.from_numpy(region).to(self.device, non_blocking=True).permute(2, 0, 1)[None].float()
        return pil_bicubic(x, (self.patch, self.patch))
