"""Training data: any image dataset -> (low-res, high-res) pairs made on the fly.

Sources: a Hub dataset through ``datasets.load_dataset`` (default: the cat half of
``microsoft/cats_vs_dogs``) or a local folder loaded as ``imagefolder``.

How a pair is made, matching how we evaluate (``evaluate.py``: centre square ->
512x512 -> each stage's input size, all PIL bicubic with antialiasing):
a random square of 60-100% of the photo's short side is resized to the stage's output
size (its "world": 128 px for 64to128, 512 for 256to512 and 64to512); a random
``patch`` x ``patch`` crop of that is the HR target, and its PIL-bicubic downscale by the
stage's factor is the LR input. Random flips and transposes. Validation pairs are
deterministic: the centre square, whole.
"""
import random

import numpy as np
import torch
from PIL import Image

from .images import oriented
from .stages import Stage

CATS_DATASET = "microsoft/cats_vs_dogs"


def load_images(dataset_name=None, data_dir=None, split="train", image_column="image",
                label_column=None, label_value=None, cache_dir=None):
    """A ``datasets.Dataset`` with an ``image`` column (other columns dropped)."""
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
    # Each row's position seeds its random crop (see make_train_transform).
    ds = ds.add_column("index", list(range(len(ds))))
    # Decode lazily ourselves, so one unreadable file is a skipped sample, not a crash.
    return ds.cast_column("image", datasets.Image(decode=False))


def open_image(value) -> Image.Image | None:
    """A datasets image cell ({'bytes', 'path'}) -> RGB PIL image, or None if unreadable."""
    import io

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


def centre_square(img: Image.Image) -> Image.Image:
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def to_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


def random_pair(img: Image.Image, stage: Stage, patch: int, rng=random, min_scale=0.6):
    """-> (lr 3x(p/f)x(p/f), hr 3xpxp) float tensors in [0, 1]."""
    f = stage.factor
    w, h = img.size
    side = max(int(min(w, h) * rng.uniform(min_scale, 1.0)), 1)
    left, top = rng.randint(0, w - side), rng.randint(0, h - side)
    world = img.crop((left, top, left + side, top + side)).resize(
        (stage.output_size, stage.output_size), Image.BICUBIC)
    patch = min(patch, stage.output_size) // f * f
    px = rng.randint(0, (stage.output_size - patch) // f) * f
    py = rng.randint(0, (stage.output_size - patch) // f) * f
    hr = world.crop((px, py, px + patch, py + patch))
    if rng.random() < 0.5:
        hr = hr.transpose(Image.FLIP_LEFT_RIGHT)
    if rng.random() < 0.5:
        hr = hr.transpose(Image.FLIP_TOP_BOTTOM)
    if rng.random() < 0.5:
        hr = hr.transpose(Image.TRANSPOSE)
    lr = hr.resize((patch // f, patch // f), Image.BICUBIC)
    return to_tensor(lr), to_tensor(hr)


def eval_pair(img: Image.Image, stage: Stage):
    """The fixed evaluation protocol: centre square -> 512x512 ground truth -> stage sizes.
    -> (lr, hr) PIL images."""
    gt512 = centre_square(img).resize((512, 512), Image.BICUBIC)
    hr = gt512.resize((stage.output_size,) * 2, Image.BICUBIC) if stage.output_size != 512 else gt512
    lr = gt512.resize((stage.input_size,) * 2, Image.BICUBIC)
    return lr, hr


def make_train_transform(stage: Stage, patch: int, state: dict | None = None):
    """For ``Dataset.set_transform``: a batch of rows -> lr/hr tensors.

    The crop and flips of a row come from ``random.Random((seed, epoch, index))``, not
    from the global RNG: accelerate's dataloader reads one batch ahead, so global RNG
    state at a checkpoint would not match the batches trained on. Keyed this way, a
    resumed run sees exactly the pairs an uninterrupted one would. ``state`` holds
    ``seed`` and the current ``epoch`` (the training loop updates it).
    Unreadable images become None entries, dropped and counted by ``collate``."""
    state = state if state is not None else {"seed": 0, "epoch": 0}

    def transform(batch):
        lrs, hrs = [], []
        indices = batch.get("index") or [None] * len(batch["image"])
        for cell, index in zip(batch["image"], indices):
            img = open_image(cell)
            if img is None:
                lrs.append(None)  # keep one entry per input; collate() drops it
                hrs.append(None)
                continue
            rng = random.Random(f"{state['seed']}-{state['epoch']}-{index}") if index is not None else random
            lr, hr = random_pair(img, stage, patch, rng=rng)
            lrs.append(lr)
            hrs.append(hr)
        return {"lr": lrs, "hr": hrs}

    return transform


def collate(examples):
    """Stack the readable examples and count the unreadable ones. The count travels with
    the batch because the transform may run in a DataLoader worker process, whose
    counters the training process never sees."""
    good = [e for e in examples if e.get("lr") is not None]
    skipped = len(examples) - len(good)
    if not good:
        return {"lr": torch.empty(0), "hr": torch.empty(0), "skipped": skipped}
    return {"lr": torch.stack([e["lr"] for e in good]), "hr": torch.stack([e["hr"] for e in good]),
            "skipped": skipped}
