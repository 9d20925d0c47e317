"""ONNX export: ``model.onnx`` beside ``model.safetensors`` in the weights layout, for
onnxruntime (Python, chaiNNer) and onnxruntime-web.

* Dynamic batch, height and width: one file serves any image size (within the network's
  ``size_multiple``: the seed network needs sides that are multiples of 4, so callers pad,
  as ``Upscaler`` does).
* Opset 17: run by onnxruntime's CPU provider and by onnxruntime-web's WebAssembly and
  WebGPU back ends.
* The file's metadata says what the network is (``model``, ``stage``, ``factor``,
  ``size_multiple``, ``value_range``, ``receptive_field``), as the classes describe
  themselves in ``models.py``: a caller needs nothing else to run it.
* Made with torch's TorchScript-based exporter (``dynamo=False``): it exports the bilinear
  upsampling with dynamic sizes directly and needs no extra packages. (torch 2.13 marks it
  deprecated in favour of the torch.export-based one.)

``check_onnx`` runs the file with onnxruntime against the torch network on several input
sizes and returns the largest absolute difference (float32).
"""
import json
import shutil
import warnings
from pathlib import Path

import torch

from .atomic import written_whole
from .inference import _pad_to, _round_up
from .models import from_model_range, to_model_range
from .stages import get_stage
from .weights import WEIGHTS_NAME, load_model, resolve_weights

OPSET = 17
ONNX_NAME = "model.onnx"
# Input sizes each export is checked on: odd sizes, a non-square one, a batch of two.
CHECK_SIZES = ((1, 37, 45), (2, 64, 64), (1, 30, 101))


def export_onnx(model: str, stage, output_dir, weights=None, repo_id=None, revision=None) -> Path:
    """Write ``<output_dir>/<model>/<stage>/model.onnx`` (with the network's config.json and
    model.safetensors beside it when the folder does not hold them yet) -> its path."""
    stage = get_stage(stage)
    net, _ = load_model(model, stage, weights, repo_id, revision)
    net = net.float().eval()
    folder = Path(output_dir) / model / stage.name
    folder.mkdir(parents=True, exist_ok=True)
    source, _ = resolve_weights(model, stage, weights, repo_id, revision)
    for name in ("config.json", WEIGHTS_NAME):  # a complete weights folder, ready to push
        if (source / name).is_file() and not (folder / name).exists():
            shutil.copyfile(source / name, folder / name)
    path = folder / ONNX_NAME
    write_onnx(net, path, {"model": model, "stage": stage.name})
    return path


def write_onnx(net, path, facts: dict | None = None) -> Path:
    """``net`` (float32, eval) as ONNX at ``path``, written under a temporary name and
    renamed; ``facts`` (e.g. model and stage names), when given, go into the file's
    metadata with what the network says of itself."""
    path = Path(path)
    m = net.size_multiple
    example = torch.rand(1, 3, _round_up(48, m), _round_up(40, m))
    with written_whole(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the exporter's notice about itself (see above)
        torch.onnx.export(net, (example,), str(tmp), input_names=["image"], output_names=["upscaled"],
                          dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                        "upscaled": {0: "batch", 2: "out_height", 3: "out_width"}},
                          opset_version=OPSET, dynamo=False)
        if facts is not None:
            _describe(tmp, net, **facts)
    return path


def _describe(path: Path, net, model: str, stage: str):
    import onnx

    proto = onnx.load(str(path))
    facts = {"model": model, "stage": stage, "factor": net.factor, "size_multiple": net.size_multiple,
             "value_range": json.dumps(list(net.value_range)), "receptive_field": net.receptive_field,
             "input": "float32 NCHW RGB in value_range; H and W multiples of size_multiple"}
    del proto.metadata_props[:]
    for k, v in facts.items():
        proto.metadata_props.add(key=k, value=str(v))
    onnx.save(proto, str(path))


def check_onnx(path, model: str, stage, weights=None, sizes=CHECK_SIZES) -> float:
    """Largest |onnxruntime - torch| over images of ``sizes`` ((batch, h, w); padded to the
    network's size multiple, as Upscaler pads), float32, in [0, 1] image units."""
    import onnxruntime as ort

    net, _ = load_model(model, stage, weights)
    net = net.float().eval()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    for n, h, w in sizes:
        x = torch.rand(n, 3, h, w, generator=g)
        x = _pad_to(x, _round_up(h, net.size_multiple), _round_up(w, net.size_multiple))
        x = to_model_range(x, net)
        with torch.no_grad():
            want = from_model_range(net(x), net).numpy()
        got = from_model_range(torch.from_numpy(session.run(None, {"image": x.numpy()})[0]), net).numpy()
        if got.shape != want.shape:
            raise AssertionError(f"onnxruntime gave {got.shape}, torch {want.shape}")
        worst = max(worst, float(abs(got - want).max()))
    return worst
