"""Is the training loop feeding the hardware? Samples/s of the real ``train_accelerate.py``
loop beside the same network's bare train step on random tensors, in one process.

    python benchmarks/train_speed.py                       # every device present
    python benchmarks/train_speed.py --devices cpu --steps-2x 100 --steps-8x 20

For each device (cpu, and cuda when present), model (default, photo, seed) and stage
(64to128, 64to512); the photo rows make their inputs with the degradations
(``upscaler/degradations.py``: blur, resize method, noise, JPEG on the device):
* real loop: ``train_accelerate.main`` on the training photos (decoded once, pairs made on
  the device), steady state as the script measures it (from the end of the first tenth of
  the steps to the last, minus validation and checkpoint time), read from its summary.
  ``--init-weights`` points at the bundled weights, which the 8x stack is built from; the
  2x stages then continue from theirs, at the same cost per step as a fresh network;
* bare step: the same network, batch, loss, AdamW and precision on random tensors already
  on the device, timed over as many steps;
* ratio = real / bare: how much of the hardware the data pipeline leaves to the network
  (targets: >= 0.6 on the 2-core CPU, >= 0.5 on a GPU).
bf16 autocast on CUDA and on CPUs with native bf16, as weights/train.sh trains; fp32 elsewhere.
"""
import argparse
import contextlib
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from upscaler.inference import cpu_has_native_bf16, describe_device
from upscaler.models import get_family, to_model_range
from upscaler.stages import STAGES
from upscaler.weights import BUNDLED_WEIGHTS

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "cats" / "train"
BATCH = {"cpu": 16, "cuda": 64}


def load_train_script():
    """train_accelerate.py is a script, not a module of the package: load it from its file."""
    spec = importlib.util.spec_from_file_location("train_accelerate", ROOT / "train_accelerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def real_loop(train, device, model, stage, steps, batch, precision, data, workdir) -> float:
    from accelerate.state import AcceleratorState, GradientState, PartialState

    out = Path(workdir) / f"{device}-{model}-{stage}"
    argv = ["--train-data-dir", str(data), "--output-dir", str(out), "--model", model, "--stage", stage,
            "--max-steps", str(steps), "--train-batch-size", str(batch), "--validation-steps", str(10 ** 9),
            "--checkpointing-steps", str(10 ** 9), "--num-val-images", "4", "--mixed-precision", precision,
            "--init-weights", str(BUNDLED_WEIGHTS), "--dataloader-num-workers", str(os.cpu_count())]
    if device == "cpu":
        argv.append("--cpu")
    with contextlib.redirect_stdout(sys.stderr):  # the run's own log is not part of the table
        train.main(argv)
    for state in (AcceleratorState, GradientState, PartialState):  # the next run may use another device
        state._reset_state()
    summary = json.loads((out / "logs" / model / stage / "train_summary.json").read_text())
    return summary["samples_per_second"]


def bare_step(device, model, stage, steps, batch, precision, patch) -> float:
    st = STAGES[stage]
    net = get_family(model).build(stage).to(device).train()  # the network the real loop trains
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    loss_fn = F.mse_loss if net.loss == "mse" else F.l1_loss
    x = torch.rand(batch, 3, patch // st.factor, patch // st.factor, device=device)
    y = torch.rand(batch, 3, patch, patch, device=device)
    dtype = torch.bfloat16 if precision == "bf16" else None

    def step():
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(net(to_model_range(x, net)), to_model_range(y, net))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(max(3, steps // 10)):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", nargs="+", default=["cpu", *(["cuda"] if torch.cuda.is_available() else [])])
    ap.add_argument("--models", nargs="+", default=["default", "photo", "seed"])
    ap.add_argument("--stages", nargs="+", default=["64to128", "64to512"])
    ap.add_argument("--steps-2x", type=int, default=150, help="steps of each 2x run")
    ap.add_argument("--steps-8x", type=int, default=30, help="steps of each 64to512 run")
    ap.add_argument("--data", default=str(DATA), help="a folder of training photos")
    args = ap.parse_args(argv)

    train = load_train_script()
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for device in args.devices:
            native = device == "cuda" or cpu_has_native_bf16()
            precision = "bf16" if native else "no"
            steps_scale = 10 if device == "cuda" else 1
            for model in args.models:
                for stage in args.stages:
                    steps = (args.steps_8x if stage == "64to512" else args.steps_2x) * steps_scale
                    batch = BATCH[device]
                    patch = train.DEFAULT_PATCH[stage]
                    real = real_loop(train, device, model, stage, steps, batch, precision, args.data, workdir)
                    bare = bare_step(device, model, stage, steps, batch, precision, patch)
                    rows.append((device, model, stage, batch, patch, precision, real, bare))

    names = {"cpu": describe_device("cpu")}
    if torch.cuda.is_available():
        names["cuda"] = describe_device("cuda")
    print(f"torch {torch.__version__}; " + "; ".join(f"{k}: {v}" for k, v in names.items() if k in args.devices))
    print()
    print("| device | model | inputs | stage | batch | HR patch | precision | real loop, samples/s "
          "| bare step, samples/s | ratio |")
    print("|---|---|---|---|---:|---:|---|---:|---:|---:|")
    for device, model, stage, batch, patch, precision, real, bare in rows:
        inputs = "degraded" if get_family(model).degradations != "none" else "clean"
        print(f"| {device} | {model} | {inputs} | {stage} | {batch} | {patch} | {precision} | {real:.0f} | "
              f"{bare:.0f} | {real / bare:.2f} |")


if __name__ == "__main__":
    main()
