"""The cats/val table: every stage, classical interpolation vs. the learned models,
under the fixed protocol of ``protocol.py``.

Rows: bilinear, bicubic, lanczos, each model found in the weights root, and for 64to512
the model's three 2x stages chained without fine-tuning.
"""
import json
import warnings
from pathlib import Path

from PIL import Image

from .inference import Upscaler
from .models import FAMILIES
from .pipeline import chain
from .protocol import CLASSICAL, classical, eval_pair, image_files, score
from .stages import STACK_STAGE, STAGES, TWO_X_STAGES
from .weights import WeightsNotFound, load_model


def evaluate(data_dir, weights=None, models=tuple(FAMILIES), stages=tuple(STAGES), limit=None,
             progress=True, perceptual=True, **upscaler_kwargs):
    """-> {"stages": {stage: {row: {"psnr": .., "ssim": .., "lpips": ..}}}, "images": n}.
    LPIPS (AlexNet) with ``perceptual``, where its weights are (``lpips.py``)."""
    from tqdm.auto import tqdm

    files = image_files(data_dir)[:limit]
    photos = [Image.open(f).convert("RGB") for f in files]
    result = {"images": len(photos), "data": str(data_dir), "stages": {}}
    for stage_name in stages:
        stage = STAGES[stage_name]
        pairs = [eval_pair(p, stage) for p in photos]
        methods = {name: classical(name, stage.factor) for name in CLASSICAL}
        for model in models:
            # Missing weights skip their row, with a warning; weights that are there but do
            # not load (WeightsInvalid) stop the evaluation: a table quietly missing a row
            # must not be published (--update-card).
            try:
                net, _ = load_model(model, stage, weights=weights)
            except WeightsNotFound as e:
                warnings.warn(f"skipping {model}/{stage_name}: {e}", stacklevel=2)
                continue
            methods[model] = Upscaler(net, stage, **upscaler_kwargs)
            if stage_name == STACK_STAGE:
                try:
                    parts = [Upscaler(load_model(model, s, weights=weights)[0], s, **upscaler_kwargs)
                             for s in TWO_X_STAGES]
                    methods[f"{model} (2x stages chained, no fine-tuning)"] = chain(*parts)
                except WeightsNotFound as e:
                    warnings.warn(f"skipping the chained row of {model}: {e}", stacklevel=2)
        result["stages"][stage_name] = {
            name: score(fn, pairs, stage.factor, perceptual=perceptual,
                        progress=lambda p, n=name: tqdm(p, desc=f"{stage_name} {n}", disable=not progress, leave=False))
            for name, fn in methods.items()}
    return result


def merge(earlier, result, models):
    """``result`` laid over an ``earlier`` evaluation of the same photos: the rows of the
    re-scored ``models`` (and the classical ones) are replaced, every other row is kept. So
    ``evaluate --models sharp --update-card`` after retraining one family does not re-run the
    others. An earlier evaluation of other photos is not merged: ``result`` alone."""
    if earlier is None or (earlier.get("data"), earlier.get("images")) != (result["data"], result["images"]):
        return result
    stages = {}
    for stage_name, rows in earlier["stages"].items():
        rescored = stage_name in result["stages"]
        stages[stage_name] = {name: r for name, r in rows.items()
                              if not (rescored and name.split(" ")[0] in models)}
    for stage_name, rows in result["stages"].items():
        stages.setdefault(stage_name, {}).update(rows)
    return {**earlier, **result, "stages": stages}


def save(result, path):
    Path(path).write_text(json.dumps(result, indent=2))
