"""Where weights come from, and the one layout they have everywhere.

    <root>/<model>/<stage>/config.json        constructor arguments (+ model, stage, factor)
    <root>/<model>/<stage>/model.safetensors  the weights

``<root>`` is a local folder (what ``train_accelerate.py --output-dir`` writes), a Hub
model repo (fetched file by file with ``hf_hub_download`` at a pinned revision), or the
``weights/`` folder bundled with this repository (the offline default).

Only safetensors are ever read. ``PyTorchModelHubMixin.from_pretrained`` on a repo id
would fall back to a pickled ``pytorch_model.bin`` and loads non-strictly by default, so
we download the two files ourselves and load them from a local folder, strictly.
"""
import contextlib
import io
import json
import os
from pathlib import Path

from .models import model_class
from .stages import get_stage

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
BUNDLED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


class WeightsError(RuntimeError):
    """Weights are missing, unreadable, or do not fit the model they are loaded into."""


def bundled_weights_dir() -> Path:
    return Path(os.environ.get("UPSCALER_WEIGHTS_DIR", BUNDLED_WEIGHTS))


def save_model(net, root, model: str, stage: str, extra: dict | None = None) -> Path:
    """Write ``net`` into ``root/model/stage`` (config.json + model.safetensors)."""
    folder = Path(root) / model / stage
    config = dict(getattr(net, "_hub_mixin_config", None) or {})
    config.update(model=model, stage=stage, factor=net.factor, architecture=type(net).__name__)
    config.update(extra or {})
    net.save_pretrained(folder, config=config)
    (folder / "README.md").unlink(missing_ok=True)  # the mixin's generic card; ours lives at the root
    return folder


def fetch_from_hub(repo_id: str, model: str, stage: str, revision: str | None = None) -> Path:
    """Download ``model/stage/{config.json, model.safetensors}`` from a Hub repo; return
    the local folder holding them (inside the HF cache). Honours HF_HUB_OFFLINE and
    HF_ENDPOINT like every huggingface_hub call."""
    from huggingface_hub import hf_hub_download

    paths = [
        hf_hub_download(repo_id, f"{model}/{stage}/{name}", revision=revision)
        for name in (CONFIG_NAME, WEIGHTS_NAME)
    ]
    return Path(paths[1]).parent


def resolve_weights(model: str, stage, weights=None, repo_id=None, revision=None) -> tuple[Path, str]:
    """-> (folder with config.json + model.safetensors, a human-readable source)."""
    stage = get_stage(stage).name
    if weights is not None and repo_id is not None:
        raise ValueError("give either weights (a local folder) or repo_id, not both")
    if repo_id is not None:
        try:
            folder = fetch_from_hub(repo_id, model, stage, revision)
        except Exception as e:  # offline, missing repo/file, auth...: one clear error
            raise WeightsError(f"could not fetch {model}/{stage} from the Hub repo {repo_id!r}"
                               f" (revision {revision or 'main'}): {type(e).__name__}: {e}") from e
        return folder, f"hub:{repo_id}@{revision or 'main'}"
    root = Path(weights) if weights is not None else bundled_weights_dir()
    source = f"local:{root}" if weights is not None else f"bundled:{root}"
    return root / model / stage, source


def load_model(model: str, stage, weights=None, repo_id=None, revision=None, map_location="cpu"):
    """Load one network, strictly, from safetensors. Returns ``(net.eval(), source)``."""
    stage = get_stage(stage).name
    folder, source = resolve_weights(model, stage, weights, repo_id, revision)
    cls = model_class(model, stage)
    weights_file = folder / WEIGHTS_NAME
    if not weights_file.is_file():
        hint = ""
        if (folder / "pytorch_model.bin").exists():
            hint = " (a pickled pytorch_model.bin is there: it is never loaded, convert it to safetensors)"
        raise WeightsError(f"no {WEIGHTS_NAME} for model {model!r}, stage {stage!r} in {folder}{hint}")
    config_file = folder / CONFIG_NAME
    if config_file.is_file():
        try:
            config = json.loads(config_file.read_text())
        except (OSError, ValueError) as e:
            raise WeightsError(f"unreadable {config_file}: {e}") from e
        for key, want in (("model", model), ("stage", stage)):
            if key in config and config[key] != want:
                raise WeightsError(f"{config_file} is for {key} {config[key]!r}, not {want!r}")
    try:
        # from_pretrained on a local folder reads config.json + model.safetensors only;
        # strict=True turns missing/unexpected keys into errors, shapes always are.
        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loading weights from..."
            net = cls.from_pretrained(folder, strict=True, map_location=map_location)
    except Exception as e:
        raise WeightsError(f"the weights in {folder} do not load into {cls.__name__} "
                           f"(model {model!r}, stage {stage!r}): {type(e).__name__}: {e}") from e
    return net.eval(), source
