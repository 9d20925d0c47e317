"""Train the upscaler: the three 2x stages, then the fine-tuned 8x stack.

    accelerate launch train_accelerate.py --stage 64to128 --train-data-dir ../shared/data/cats/train \
        --max-steps 2000 --output-dir weights
    accelerate launch train_accelerate.py --stage all ...            # the whole recipe, in order
    torchrun --nproc_per_node 2 train_accelerate.py ...              # 2 CPU processes (gloo)
    accelerate launch --multi_gpu --num_processes 8 train_accelerate.py ...

One training step: a batch of (LR, HR) pairs made on the fly (``upscaler/data.py``) ->
the network -> MSE or L1 -> ``accelerator.backward`` -> AdamW + warmup/cosine schedule.
Every ``--validation-steps``: PSNR/SSIM on the validation images of the model and of
bilinear and bicubic, and a figure like the reference's (bilinear / learned / truth).
Every ``--checkpointing-steps``: ``accelerator.save_state`` (model, optimizer, schedule,
RNG), written to a temporary folder and renamed, so a crash mid-write never leaves a
"latest" checkpoint that cannot be loaded. ``--resume-from-checkpoint latest`` picks up
at the saved step. At the end: ``save_pretrained`` into ``<output-dir>/<model>/<stage>/``
and, with ``--push-to-hub``, an upload of the weights and a model card (never the
checkpoints).
"""
import argparse
import json
import logging
import math
import os
import re
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from PIL import Image
from tqdm.auto import tqdm

from upscaler import data as sr_data
from upscaler.figures import comparison_grid
from upscaler.hub import push_weights, write_model_card
from upscaler.inference import Upscaler, tensor_to_pil
from upscaler.metrics import psnr_ssim
from upscaler.models import model_class, to_model_range
from upscaler.stages import STACK_STAGE, STAGES, TWO_X_STAGES, get_stage
from upscaler.weights import load_model, save_model

logger = get_logger(__name__)

# HR patch size per stage (the LR input is patch / factor). The 8x stack sees a 256 px
# target from a 32 px input: enough context for all three stages, cheap on a CPU.
DEFAULT_PATCH = {"64to128": 128, "128to256": 128, "256to512": 128, "64to512": 256}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("what to train")
    g.add_argument("--stage", default="64to128", choices=[*STAGES, "all"],
                   help="a 2x stage, the 8x stack (64to512: loads the three stage weights "
                        "from --init-weights and fine-tunes end to end), or 'all' in order")
    g.add_argument("--model", default="default", choices=["default", "seed"])
    g.add_argument("--num-features", type=int, default=32, help="default model: channels")
    g.add_argument("--num-convs", type=int, default=4, help="default model: body convolutions")
    g.add_argument("--init-weights", default=None,
                   help="weights root holding the three 2x stages for 64to512 (default: --output-dir)")

    g = p.add_argument_group("data")
    g.add_argument("--dataset-name", default=sr_data.CATS_DATASET,
                   help="a Hub dataset id for datasets.load_dataset (ignored with --train-data-dir)")
    g.add_argument("--dataset-split", default="train")
    g.add_argument("--image-column", default="image")
    g.add_argument("--label-column", default="labels",
                   help="keep only rows whose label equals --label-value (Hub datasets)")
    g.add_argument("--label-value", type=int, default=0, help="0 = cat in microsoft/cats_vs_dogs")
    g.add_argument("--train-data-dir", default=None, help="a local image folder (imagefolder)")
    g.add_argument("--val-data-dir", default=None,
                   help="validation images; default: a fixed split held out of the training data")
    g.add_argument("--val-split-size", type=int, default=48, help="images held out when no --val-data-dir")
    g.add_argument("--num-val-images", type=int, default=48)
    g.add_argument("--patch-size", type=int, default=None, help="HR patch (default: per stage)")
    g.add_argument("--dataloader-num-workers", type=int, default=0)
    g.add_argument("--cache-dir", default=None, help="datasets cache")

    g = p.add_argument_group("optimisation")
    g.add_argument("--loss", default=None, choices=["mse", "l1"], help="default: mse for seed, l1 for default")
    g.add_argument("--learning-rate", type=float, default=None,
                   help="default: 1e-3 (2x stages), 2e-4 (fine-tuning 64to512)")
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--lr-warmup-steps", type=int, default=None, help="default: min(100, max_steps / 10)")
    g.add_argument("--train-batch-size", type=int, default=16, help="per process")
    g.add_argument("--max-steps", type=int, default=None, help="optimizer steps per stage")
    g.add_argument("--num-epochs", type=int, default=10, help="used when --max-steps is not given")
    g.add_argument("--gradient-accumulation-steps", type=int, default=1)
    g.add_argument("--mixed-precision", default=None, choices=["no", "fp16", "bf16"],
                   help="default: what `accelerate launch` / `accelerate config` says")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is present")

    g = p.add_argument_group("output")
    g.add_argument("--output-dir", default="weights-out", help="weights root: <dir>/<model>/<stage>/")
    g.add_argument("--logging-dir", default=None, help="default: <output-dir>/logs")
    g.add_argument("--report-to", default=None, help="an accelerate tracker: tensorboard, wandb, ...")
    g.add_argument("--checkpointing-steps", type=int, default=500)
    g.add_argument("--checkpoints-total-limit", type=int, default=2)
    g.add_argument("--resume-from-checkpoint", default=None,
                   help="'latest' or a checkpoint folder (of this --model and --stage)")
    g.add_argument("--validation-steps", type=int, default=500)
    g.add_argument("--push-to-hub", action="store_true")
    g.add_argument("--hub-model-id", default=None)
    g.add_argument("--hub-private", action="store_true")
    g.add_argument("--hub-revision", default=None, help="branch to push to (default: main)")
    args = p.parse_args(argv)
    if args.push_to_hub and not args.hub_model_id:
        p.error("--push-to-hub needs --hub-model-id")
    if args.max_steps is not None and args.max_steps < 1:
        p.error("--max-steps must be at least 1")
    return args


# ------------------------------------------------------------------- checkpoints
def checkpoint_root(args, stage):
    return Path(args.output_dir) / "checkpoints" / args.model / stage


def list_checkpoints(root: Path):
    """Complete checkpoints, oldest first. Half-written ones end in '.tmp' and are ignored."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), d) for d in root.iterdir() if (m := re.fullmatch(r"checkpoint-(\d+)", d.name))]
    return [d for _, d in sorted(found)]


def save_checkpoint(accelerator, args, stage, step):
    """save_state into checkpoint-N.tmp, then an atomic rename to checkpoint-N."""
    root = checkpoint_root(args, stage)
    final, tmp = root / f"checkpoint-{step}", root / f"checkpoint-{step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))  # every process writes its own RNG state
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / "step.json").write_text(json.dumps({"step": step}))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in list_checkpoints(root)[:-args.checkpoints_total_limit]:
            shutil.rmtree(old, ignore_errors=True)
        logger.info(f"saved {final}")
    accelerator.wait_for_everyone()


def find_resume(args, stage):
    if not args.resume_from_checkpoint:
        return None
    if args.resume_from_checkpoint == "latest":
        found = list_checkpoints(checkpoint_root(args, stage))
        return found[-1] if found else None
    path = Path(args.resume_from_checkpoint)
    if not path.is_dir():
        raise SystemExit(f"--resume-from-checkpoint: no such folder {path}")
    return path


# -------------------------------------------------------------------------- data
def build_data(args, stage, accelerator, state):
    with accelerator.main_process_first():  # the first process builds the datasets cache
        if args.train_data_dir:
            ds = sr_data.load_images(data_dir=args.train_data_dir, cache_dir=args.cache_dir)
        else:
            ds = sr_data.load_images(args.dataset_name, split=args.dataset_split, image_column=args.image_column,
                                     label_column=args.label_column, label_value=args.label_value,
                                     cache_dir=args.cache_dir)
        if args.val_data_dir:
            val_ds = sr_data.load_images(data_dir=args.val_data_dir, cache_dir=args.cache_dir)
        else:  # a fixed split: the same images whatever the seed or the stage
            split = ds.train_test_split(test_size=args.val_split_size, seed=1234, shuffle=True)
            ds, val_ds = split["train"], split["test"]
    patch = args.patch_size or DEFAULT_PATCH[stage.name]
    ds.set_transform(sr_data.make_train_transform(stage, patch, state))
    loader = torch.utils.data.DataLoader(ds, batch_size=args.train_batch_size, shuffle=True, drop_last=True,
                                         collate_fn=sr_data.collate, num_workers=args.dataloader_num_workers)
    val = []
    for i in range(min(args.num_val_images, len(val_ds))):
        img = sr_data.open_image(val_ds[i]["image"])
        if img is not None:
            val.append(sr_data.eval_pair(img, stage))
    return ds, loader, val


# ------------------------------------------------------------------------- model
def build_model(args, stage_name):
    cls = model_class(args.model, stage_name)
    kwargs = dict(num_features=args.num_features, num_convs=args.num_convs) if args.model == "default" else {}
    if stage_name != STACK_STAGE:
        return cls(**kwargs)
    # The 8x stack starts from the three independently trained 2x stages.
    root = args.init_weights or args.output_dir
    parts = [load_model(args.model, s, weights=root)[0] for s in TWO_X_STAGES]
    return cls.from_stages(*parts)


# -------------------------------------------------------------------- validation
def classical_scores(val, stage):
    """PSNR/SSIM of bilinear and bicubic on the validation pairs: fixed for a stage, so
    computed once, not at every validation."""
    f = stage.factor
    return {name: [psnr_ssim(lr.resize(hr.size, method), hr, f) for lr, hr in val]
            for name, method in (("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC))}


@torch.no_grad()
def validate(accelerator, net, model, val, baselines, stage, step, log_dir):
    """PSNR/SSIM (Y, border = factor) of the model beside the baselines; a figure."""
    was_training = net.training
    up = Upscaler(net, model=model, stage=stage.name, device=accelerator.device, dtype="float32",
                  channels_last=False, tile=0)
    outs = [tensor_to_pil(up.upscale_tensor(sr_data.to_tensor(lr)[None])) for lr, _ in val]
    net.train(was_training)
    rows = {"model": [psnr_ssim(out, hr, stage.factor) for out, (_, hr) in zip(outs, val)], **baselines}
    metrics = {"step": step}
    for name, vals in rows.items():
        metrics[f"psnr_{name}"] = round(sum(v[0] for v in vals) / len(vals), 3)
        metrics[f"ssim_{name}"] = round(sum(v[1] for v in vals) / len(vals), 4)
    n = min(4, len(val))
    grid = comparison_grid([v[0] for v in val[:n]], outs[:n], [v[1] for v in val[:n]])
    grid.save(log_dir / f"grid-step{step:06d}.png")
    with open(log_dir / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(metrics) + "\n")
    return metrics


# ------------------------------------------------------------------------- train
def train_stage(args, accelerator, stage_name):
    stage = get_stage(stage_name)
    log_dir = Path(args.logging_dir or Path(args.output_dir) / "logs") / args.model / stage_name
    resume = find_resume(args, stage_name)
    if accelerator.is_main_process:
        log_dir.mkdir(parents=True, exist_ok=True)

    # Seeds each sample's crop; the process index keeps processes' crops apart.
    data_state = {"seed": f"{args.seed}-{accelerator.process_index}", "epoch": 0}
    train_ds, loader, val = build_data(args, stage, accelerator, data_state)
    if not val:
        raise SystemExit("no readable validation images")
    baselines = classical_scores(val, stage) if accelerator.is_main_process else None
    net = build_model(args, stage_name)
    loss_name = args.loss or ("mse" if args.model == "seed" else "l1")
    loss_fn = F.mse_loss if loss_name == "mse" else F.l1_loss
    lr = args.learning_rate or (2e-4 if stage_name == STACK_STAGE else 1e-3)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=args.weight_decay)

    updates_per_epoch = math.ceil(len(loader) / accelerator.num_processes / args.gradient_accumulation_steps)
    max_steps = args.max_steps or args.num_epochs * max(updates_per_epoch, 1)
    warmup = args.lr_warmup_steps if args.lr_warmup_steps is not None else min(100, max_steps // 10)

    def schedule(step):  # linear warmup, then cosine to 0
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, max_steps - warmup))))

    # accelerate steps a prepared scheduler once per process per update: count in those units
    n = accelerator.num_processes
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: schedule(s // n))
    net, optimizer, loader, scheduler = accelerator.prepare(net, optimizer, loader, scheduler)

    global_step, first_epoch, skip_batches = 0, 0, 0
    if resume is not None:
        accelerator.print(f"resuming from {resume}")
        accelerator.load_state(str(resume))
        global_step = int(json.loads((resume / "step.json").read_text())["step"])
        updates_per_epoch = max(math.ceil(len(loader) / args.gradient_accumulation_steps), 1)
        first_epoch = global_step // updates_per_epoch
        skip_batches = (global_step % updates_per_epoch) * args.gradient_accumulation_steps
    elif args.resume_from_checkpoint:
        accelerator.print(f"no checkpoint for {args.model}/{stage_name} yet: starting a new run")

    accelerator.print(f"*** distributed: {accelerator.distributed_type}, backend: {accelerator.state.backend}")
    accelerator.print(f"*** {args.model}/{stage_name}: {len(train_ds)} training images, {len(val)} validation, "
                      f"{accelerator.num_processes} process(es) x batch {args.train_batch_size} x accumulation "
                      f"{args.gradient_accumulation_steps}, {max_steps} steps, loss {loss_name}, lr {lr}")
    progress = tqdm(range(max_steps), initial=global_step, desc=f"{args.model}/{stage_name}",
                    disable=not accelerator.is_local_main_process)
    unwrapped = accelerator.unwrap_model(net)
    t0, last_batch, metrics, epoch, skipped = time.time(), None, None, first_epoch, 0
    while global_step < max_steps:
        net.train()
        data_state["epoch"] = epoch
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        epoch_loader = accelerator.skip_first_batches(loader, skip_batches) if skip_batches else loader
        skip_batches = 0
        for batch in epoch_loader:
            skipped += int(batch["skipped"])
            if batch["lr"].numel() == 0:  # every image of this batch was unreadable
                if last_batch is None:
                    continue
                batch = last_batch
            last_batch = batch
            with accelerator.accumulate(net):
                x = to_model_range(batch["lr"], unwrapped)  # [-1, 1] for the seed's Tanh
                target = to_model_range(batch["hr"], unwrapped)
                loss = loss_fn(net(x), target)
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            if not accelerator.sync_gradients:
                continue
            global_step += 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            accelerator.log({"loss": loss.item(), "lr": scheduler.get_last_lr()[0]}, step=global_step)
            if global_step % args.checkpointing_steps == 0 or global_step == max_steps:
                save_checkpoint(accelerator, args, stage_name, global_step)
            if global_step % args.validation_steps == 0 or global_step == max_steps:
                if accelerator.is_main_process:
                    metrics = validate(accelerator, unwrapped, args.model, val, baselines, stage, global_step,
                                       log_dir)
                    accelerator.print(f"step {global_step}: " + json.dumps(metrics))
                    accelerator.log({k: v for k, v in metrics.items() if k != "step"}, step=global_step)
                accelerator.wait_for_everyone()
            if global_step >= max_steps:
                break
        epoch += 1
    progress.close()
    wall = time.time() - t0

    skipped = int(accelerator.reduce(torch.tensor(skipped, device=accelerator.device), "sum").item())
    if skipped:
        logger.warning(f"skipped {skipped} unreadable image read(s) while training {stage_name}",
                       main_process_only=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        summary = {
            "stage": stage_name, "model": args.model,
            "command": " ".join(["train_accelerate.py", *sys.argv[1:]]),
            "steps": global_step, "world_size": accelerator.num_processes,
            "batch_size_per_process": args.train_batch_size,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "loss": loss_name, "learning_rate": lr, "patch_size": args.patch_size or DEFAULT_PATCH[stage_name],
            "mixed_precision": accelerator.mixed_precision, "wall_seconds_this_run": round(wall, 1),
            "skipped_images": skipped, "resumed_from": str(resume) if resume else None,
            "val": metrics,
        }
        folder = save_model(unwrapped, args.output_dir, args.model, stage_name, extra={"training": summary})
        (log_dir / "train_summary.json").write_text(json.dumps(summary, indent=2))
        accelerator.print(f"saved {folder}  ({wall:.0f} s)")
    accelerator.wait_for_everyone()
    accelerator.free_memory(net, optimizer, scheduler, loader)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    for noisy in ("httpx", "datasets", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # torchrun / accelerate launch on a machine without GPUs: accelerate joins the process
    # group only when told it is a CPU run (it then uses gloo).
    multi_cpu = int(os.environ.get("WORLD_SIZE", 1)) > 1 and not torch.cuda.is_available()
    accelerator = Accelerator(
        cpu=args.cpu or multi_cpu,
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=args.report_to,
        project_config=ProjectConfiguration(project_dir=args.output_dir,
                                            logging_dir=args.logging_dir or str(Path(args.output_dir) / "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
    )
    set_seed(args.seed, device_specific=True)  # different crops per process, same start weights (DDP syncs them)
    if args.report_to:
        accelerator.init_trackers("upscaler", config={k: v for k, v in vars(args).items() if v is not None})
    stages = [*TWO_X_STAGES, STACK_STAGE] if args.stage == "all" else [args.stage]
    for stage_name in stages:
        train_stage(args, accelerator, stage_name)
    if accelerator.is_main_process:
        write_model_card(args.output_dir)
        if args.push_to_hub:
            url = push_weights(args.output_dir, args.hub_model_id, private=args.hub_private, revision=args.hub_revision)
            accelerator.print(f"pushed to {url}")
    accelerator.end_training()  # without it, torchrun/gloo processes abort on exit


if __name__ == "__main__":
    main()
