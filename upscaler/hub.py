"""Publishing: the model card, and the upload of a weights root to a Hub model repo.

Only the weights layout travels (``<model>/<stage>/{config.json, model.safetensors}``),
the card (``README.md``), the evaluation table and the figures; never the training
checkpoints or logs that ``train_accelerate.py`` keeps beside them.
"""
import json
from pathlib import Path

from .models import FAMILIES
from .protocol import format_table
from .stages import STAGES
from .weights import training_runs

NEVER_UPLOADED = ["checkpoints/*", "logs/*"]


def files_to_upload(root) -> list[str]:
    """Exact paths: the card, the evaluation, the figures, and each network's two files.
    (Glob patterns would be wrong here: fnmatch's '*' also matches '/', so
    '*/*/model.safetensors' would pick up checkpoints/<model>/<stage>/... as well.)"""
    root = Path(root)
    paths = [p for p in ("README.md", "evaluation.json") if (root / p).is_file()]
    paths += sorted(f"figures/{p.name}" for p in (root / "figures").glob("*.png"))
    for model, stage, _ in _configs(root):
        paths += [f"{model}/{stage}/config.json", f"{model}/{stage}/model.safetensors"]
        if (root / model / stage / "model.onnx").is_file():  # upscaler export, for onnxruntime and chaiNNer
            paths.append(f"{model}/{stage}/model.onnx")
    return paths


def _configs(root: Path):
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in ("checkpoints", "logs")):
        for stage in STAGES:
            cfg = model_dir / stage / "config.json"
            if cfg.is_file():
                yield model_dir.name, stage, json.loads(cfg.read_text())


def model_card(root) -> str:
    """A model card built from what is actually in ``root``: each network's config and
    training record, and ``evaluation.json`` if ``python -m upscaler evaluate`` wrote one."""
    root = Path(root)
    rows = list(_configs(root))
    lines = [
        "---",
        "license: mit",
        "library_name: pytorch",
        "pipeline_tag: image-to-image",
        "tags: [image-upscaling, super-resolution, pytorch_model_hub_mixin]",
        "datasets: [microsoft/cats_vs_dogs]",
        "---",
        "",
        "# Cat photo upscaler: 2x stages and a fine-tuned 8x stack",
        "",
        "Small CNNs that upscale photos by 2 (three stages trained independently at 64->128, "
        "128->256 and 256->512 px) and by 8 (the three stacked and fine-tuned end to end, 64->512).",
        "Model families in that layout:",
        "",
        *(f"* `{name}`: `{f.two_x.__name__}` / `{f.eight_x.__name__}`. {f.description} Images in "
          f"{list(f.two_x.value_range)}, input sides padded to a multiple of {f.two_x.size_multiple}."
          for name, f in FAMILIES.items()),
        "",
        "Layout: `<model>/<stage>/config.json` + `model.safetensors` (safetensors only).",
        "",
        "```python",
        "from upscaler import load_upscaler",
        'up = load_upscaler("64to512", repo_id="<this repo>", revision="<commit>")',
        'big = up(PIL.Image.open("cat.jpg"))',
        "```",
        "",
        "## Training",
        "",
        "Data: cat photos (the cat half of `microsoft/cats_vs_dogs`, Kaggle's Asirra images; "
        "research/demo use, copyright with the photographers), decoded once. Pairs made on the training "
        "device: a random window of a square of 60-100% of the short side, seen at the stage's output "
        "size, resized to the patch (bicubic, PIL-exact), its bicubic downscale as input; flips and "
        "transposes. An EMA of the weights is kept and shipped when it validates better.",
        "",
        "Each row ran as `accelerate launch --mixed_precision <precision> <command>` "
        "(`weights/train.sh` in the code repository); wall time on the machine that trained it. "
        "A stage with two rows was trained, then continued from those weights (`--init-weights`).",
        "",
        "| model | stage | architecture | loss | precision | steps | processes x batch | lr | wall s | command |",
        "|---|---|---|---|---|---:|---|---:|---:|---|",
    ]
    for model, stage, cfg in rows:
        for t in training_runs(cfg.get("training")) or [{}]:  # a continued network: one row per run
            loss = " + ".join([t.get("loss", "?"), *perceptual_terms(t.get("perceptual"))])
            lines.append(f"| {model} | {stage} | {cfg.get('architecture', '?')} | {loss} | "
                         f"{t.get('mixed_precision', '?')} | {t.get('steps', '?')} | "
                         f"{t.get('world_size', '?')} x {t.get('batch_size_per_process', '?')} | "
                         f"{t.get('learning_rate', '?')} | {t.get('wall_seconds_this_run', '?')} | "
                         f"`{t.get('command', '?')}` |")
    lines += ["", "## Validation during training (held-out split of the training photos)", "",
              "| model | stage | shipped weights | PSNR-Y | PSNR-Y bicubic | PSNR-Y bilinear | SSIM-Y |",
              "|---|---|---|---:|---:|---:|---:|"]
    for model, stage, cfg in rows:
        t = cfg.get("training") or {}
        v, shipped = t.get("val") or {}, t.get("shipped_weights", "model")  # "model" (raw) or "ema"
        # a stage trained on the earlier stages' results (--input-from) was validated in that chain
        where = f"{stage} (in the chain from 64 px)" if t.get("input_from") else stage
        lines.append(f"| {model} | {where} | {'EMA' if shipped == 'ema' else 'raw'} | {v.get(f'psnr_{shipped}', '?')} | "
                     f"{v.get('psnr_bicubic', '?')} | {v.get('psnr_bilinear', '?')} | {v.get(f'ssim_{shipped}', '?')} |")
    ev = root / "evaluation.json"
    if ev.is_file():
        evaluation = json.loads(ev.read_text())
        where = "/".join(Path(str(evaluation.get("data", "the evaluation photos"))).parts[-2:])
        lines += ["", f"## Evaluation on {where} ({evaluation['images']} photos never trained on)", "",
                  "Protocol: centre square resized to 512x512 (PIL bicubic) is the ground truth; the input "
                  "is that image downscaled to the stage's input size; PSNR / SSIM on Y (BT.601, "
                  "16-235), border = scale.", "", format_table(evaluation)]
    lines += ["", "## Limits", "",
              "Trained on cat photos only: expect the largest gains on similar photos. No upscaler can "
              "recover detail that a 64-pixel input does not hold: at 8x, fine texture in the output "
              "is the network's guess. Do not use it where fidelity to the original matters.", ""]
    return "\n".join(lines)


def perceptual_terms(record) -> list:
    """The names of the perceptual loss terms a run used (its ``training.perceptual``)."""
    if not record:
        return []
    names = {"feature_weight": "VGG16 features", "texture_weight": "texture", "grid_weight": "grid penalty",
             "grid4_weight": "period-4 grid penalty", "gan_weight": "GAN", "ldl_weight": "LDL"}
    # a record from before a term existed has no key for it: it did not use it
    terms = [name for key, name in names.items() if record.get(key)]
    if record.get("gan_weight") and record.get("disc") == "vgg":
        terms[terms.index("GAN")] = "GAN (discriminator on VGG16 features)"
    return terms


def write_model_card(root) -> Path:
    path = Path(root) / "README.md"
    path.write_text(model_card(root))
    return path


def push_weights(root, repo_id: str, private: bool = False, revision: str | None = None,
                 commit_message: str = "Upload upscaler weights") -> str:
    """Create the repo if needed and upload the weights layout, card and evaluation."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if revision:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    info = api.upload_folder(folder_path=str(root), repo_id=repo_id, repo_type="model", revision=revision,
                             allow_patterns=files_to_upload(root), ignore_patterns=NEVER_UPLOADED,
                             commit_message=commit_message)
    return str(getattr(info, "commit_url", info))
