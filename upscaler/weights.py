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
# The weights shipped with the code: weights/ in a clone (or an editable install), and
# upscaler/bundled_weights/ in an installed package (pyproject.toml maps one to the other).
_INSTALLED = Path(__file__).resolve().parent / "bundled_weights"
BUNDLED_WEIGHTS = _INSTALLED if _INSTALLED.is_dir() else Path(__file__).resolve().parent.parent / "weights"


class WeightsError(RuntimeError):
    """Weights are missing, unreadable, or do not fit the model they are loaded into."""


class HubUnreachable(WeightsError):
    """The Hub could not be asked: offline mode, no network, a timeout, a server error.
    Not the weights' fault: a fallback is reasonable."""


class WeightsNotFound(WeightsError):
    """The repo, revision or file does not exist (or is not ours to read)."""


class WeightsInvalid(WeightsError):
    """The files are there but do not load strictly into the model's class."""


# Where the app and ``load_serving`` look first: a Hub repo at a pinned revision.
DEFAULT_REPO_ID = os.environ.get("UPSCALER_REPO_ID", "image-upscaler/cat-upscaler")
DEFAULT_REVISION = os.environ.get("UPSCALER_REVISION", "v1")


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


def training_runs(training: dict | None) -> list[dict]:
    """The training runs that made a network, first run first. ``config.json``'s
    ``training`` block is the last run; a run that continued from earlier weights
    (``train_accelerate.py --init-weights``) holds their block under ``continues``."""
    runs = []
    while training:
        runs.append(training)
        training = training.get("continues")
    return runs[::-1]


def whole_curve(training: dict | None) -> list[dict]:
    """The learning curve across all of a network's runs, samples counted from the first."""
    curve, offset = [], 0
    for run in training_runs(training):
        curve += [{**point, "samples": point["samples"] + offset} for point in run.get("curve") or []]
        offset += run.get("samples_seen") or 0
    return curve


def fetch_from_hub(repo_id: str, model: str, stage: str, revision: str | None = None) -> Path:
    """Download ``model/stage/{config.json, model.safetensors}`` from a Hub repo; return
    the local folder holding them (inside the HF cache). Honours HF_HUB_OFFLINE and
    HF_ENDPOINT like every huggingface_hub call. Raises ``HubUnreachable`` or
    ``WeightsNotFound``."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{model}/{stage} from the Hub repo {repo_id!r} (revision {revision or 'main'})"
    try:
        paths = [hf_hub_download(repo_id, f"{model}/{stage}/{name}", revision=revision)
                 for name in (CONFIG_NAME, WEIGHTS_NAME)]
    except LocalEntryNotFoundError as e:  # offline, or the network failed and nothing is cached
        # (a subclass of EntryNotFoundError, so it is caught first)
        raise HubUnreachable(f"could not fetch {where}: the Hub is unreachable and nothing is cached") from e
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError, GatedRepoError) as e:
        raise WeightsNotFound(f"could not fetch {where}: {type(e).__name__}: {_first_line(e)}") from e
    except HfHubHTTPError as e:  # the Hub answered: busy or down (5xx, 429) is not the weights' fault
        status = getattr(getattr(e, "response", None), "status_code", None)
        error = HubUnreachable if status is None or status >= 500 or status == 429 else WeightsNotFound
        raise error(f"could not fetch {where}: HTTP {status}: {_first_line(e)}") from e
    except network_errors() as e:  # the connection failed mid-download, or timed out
        raise HubUnreachable(f"could not fetch {where}: {type(e).__name__}: {_first_line(e)}") from e
    # Anything else (a bug here or in a library) is raised as it is: turning it into
    # "unreachable" would silently switch the Hub off for every network.
    return Path(paths[1]).parent


def network_errors() -> tuple:
    """The exceptions that mean "the network failed": the standard library's, and the HTTP
    client's that huggingface_hub uses (httpx in 1.x, its fork httpx2 in later versions)."""
    import importlib

    errors = [ConnectionError, TimeoutError]
    for name in ("httpx", "httpx2"):
        try:
            errors.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [""])[0][:300]


def resolve_weights(model: str, stage, weights=None, repo_id=None, revision=None) -> tuple[Path, str]:
    """-> (folder with config.json + model.safetensors, where it came from in words:
    ``hub:<repo>@<revision>``, ``local:<folder>`` or ``bundled``)."""
    stage = get_stage(stage).name
    if weights is not None and repo_id is not None:
        raise ValueError("give either weights (a local folder) or repo_id, not both")
    if repo_id is not None:
        return fetch_from_hub(repo_id, model, stage, revision), f"hub:{repo_id}@{revision or 'main'}"
    if weights is not None:
        return Path(weights) / model / stage, f"local:{weights}"
    return bundled_weights_dir() / model / stage, "bundled"


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
        raise WeightsNotFound(f"no {WEIGHTS_NAME} for model {model!r}, stage {stage!r} in {folder}{hint}")
    config_file = folder / CONFIG_NAME
    if config_file.is_file():
        try:
            config = json.loads(config_file.read_text())
        except (OSError, ValueError) as e:
            raise WeightsInvalid(f"unreadable {config_file}: {e}") from e
        for key, want in (("model", model), ("stage", stage)):
            if key in config and config[key] != want:
                raise WeightsInvalid(f"{config_file} is for {key} {config[key]!r}, not {want!r}")
    try:
        # from_pretrained on a local folder reads config.json + model.safetensors only;
        # strict=True turns missing/unexpected keys into errors, shapes always are.
        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loading weights from..."
            net = cls.from_pretrained(folder, strict=True, map_location=map_location)
    except Exception as e:
        raise WeightsInvalid(f"the weights in {folder} do not load into {cls.__name__} "
                           f"(model {model!r}, stage {stage!r}): {type(e).__name__}: {e}") from e
    return net.eval(), source


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in ("1", "true", "yes", "on")


def load_serving(models, stages, repo_id=DEFAULT_REPO_ID, revision=DEFAULT_REVISION):
    """The serving policy, for the app: each network from the Hub repo at the pinned
    revision; where that fails, the bundled weights. -> (nets, sources, message):

    * nets: {(model, stage name): net} for every network that loaded (one that loads
      from neither place is left out, and the message says so);
    * sources: {(model, stage name): "hub:<repo>@<rev>" or "bundled"};
    * message: one sentence for people about where the weights came from.

    Once the Hub is found unreachable it is not asked again for the other networks.
    ``HF_HUB_OFFLINE=1`` or an empty ``repo_id`` skip the Hub."""
    nets, sources, problems = {}, {}, []
    hub_ok = bool(repo_id) and not is_offline()
    for model in models:
        for stage in map(get_stage, stages):
            key = (model, stage.name)
            if hub_ok:
                try:
                    nets[key], sources[key] = load_model(model, stage, repo_id=repo_id, revision=revision)
                    continue
                except HubUnreachable as e:
                    problems.append(str(e))
                    hub_ok = False  # don't wait for the network once per network
                except WeightsError as e:  # missing there, or not loading strictly
                    problems.append(str(e))
            try:
                nets[key], sources[key] = load_model(model, stage)
            except WeightsError as e:  # start anyway; this network answers with the reason
                problems.append(str(e))
    missing = len(list(models)) * len(list(stages)) - len(nets)
    from_hub = sorted({s for s in sources.values() if s.startswith("hub:")})
    if missing:
        message = f"{missing} network(s) have no usable weights and will refuse requests ({problems[-1][:200]})."
    elif from_hub and len(from_hub) == 1 and all(s == from_hub[0] for s in sources.values()):
        message = f"Weights from the Hub: {repo_id}@{revision}."
    elif is_offline():
        message = "Offline (HF_HUB_OFFLINE=1): serving the bundled weights."
    elif not repo_id:
        message = "No Hub repo configured: serving the bundled weights."
    elif from_hub:
        message = (f"Some weights from the Hub ({repo_id}@{revision}), the rest bundled: {problems[0][:200]}")
    else:
        message = (f"Could not use the Hub weights ({repo_id}@{revision}): {problems[0][:200]}. "
                   f"Serving the bundled weights instead.")
    return nets, sources, message
