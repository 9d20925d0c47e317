"""Train the upscaler: the three 2x stages, then the fine-tuned 8x stack.

    accelerate launch train_accelerate.py --stage 64to128 --train-data-dir ../shared/data/cats/train \
        --max-steps 2000 --output-dir weights
    accelerate launch train_accelerate.py --stage all ...            # the whole recipe, in order
    torchrun --nproc_per_node 2 train_accelerate.py ...              # 2 CPU processes (gloo)
    accelerate launch --multi_gpu --num_processes 8 train_accelerate.py ...

Data: every photo is decoded once into a memory-mapped cache; each step's (LR, HR) pairs
are then made as tensor operations on the training device (``upscaler/data.py``), so a
GPU is not left waiting for JPEG decodes and PIL resizes.

One training step: a batch of pairs -> the network -> MSE or L1 ->
``accelerator.backward`` -> AdamW + warmup/cosine schedule -> an exponential moving
average (EMA) of the weights. Every ``--validation-steps``: PSNR/SSIM on the validation
images of the network, of its EMA and of bilinear and bicubic, and a figure like the
reference's (bilinear / learned / truth). The learning curve (validation PSNR against
samples seen) goes into the saved config.json; the EMA weights are saved when they
validate better than the raw ones.
Every ``--checkpointing-steps``: ``accelerator.save_state`` (model, optimizer, schedule,
RNG), written to a temporary folder and renamed, so a crash mid-write never leaves a
"latest" checkpoint that cannot be loaded. ``--resume-from-checkpoint latest`` picks up
at the saved step. At the end: ``save_pretrained`` into ``<output-dir>/<model>/<stage>/``
and, with ``--push-to-hub``, an upload of the weights and a model card (never the
checkpoints).
"""
import argparse
import copy
import hashlib
import json
import logging
import math
import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import ProjectConfiguration, set_seed
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from upscaler import data as sr_data
from upscaler.adversarial import (GRID_WINDOW, TEXTURE_WINDOW, VGG16_TAP_RELUS, FeatureLoss, UNetDiscriminatorSN,
                                  VGGFeatureDiscriminator, artifact_map, GRID_LOSSES, discriminator_loss,
                                  generator_loss)
from upscaler.degradations import NAMED as NAMED_DEGRADATIONS
from upscaler.conditions import degrade_image
from upscaler.figures import comparison_grid
from upscaler.hub import push_weights, write_model_card
from upscaler.images import tensor_to_pil, to_tensor
from upscaler.inference import Upscaler, describe_device
from upscaler.metrics import checkerboard, crispness
from upscaler.models import DEFAULT_MODEL, FAMILIES, from_model_range, get_family, to_model_range
from upscaler.protocol import classical, classical_scores, eval_pair, lpips_metric, mean_scores, score_pair
from upscaler.stages import STACK_STAGE, STAGES, TWO_X_STAGES, Stage, get_stage
from upscaler.weights import load_model, resolve_weights, save_model

logger = get_logger(__name__)

# HR patch size per stage (the LR input is patch / factor). The 8x stack sees a 256 px
# target from a 32 px input: enough context for all three stages, cheap on a CPU.
DEFAULT_PATCH = {"64to128": 128, "128to256": 128, "256to512": 128, "64to512": 256}
# The discriminator's width: half Real-ESRGAN's 64, which a 2-core run can afford.
DISC_FEATURES = 32


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("what to train")
    g.add_argument("--stage", default="64to128", choices=[*STAGES, "all"],
                   help="a 2x stage, the 8x stack (64to512: loads the three stage weights "
                        "from --init-weights and fine-tunes end to end), or 'all' in order")
    g.add_argument("--model", default=DEFAULT_MODEL, choices=list(FAMILIES))
    g.add_argument("--arch-args", default=None,
                   help='JSON constructor arguments for the 2x network, e.g. \'{"num_features": 48}\' '
                        "(default: the class's defaults)")
    g.add_argument("--init-model", default=None,
                   help="the family whose weights --init-weights holds, when it is not --model: e.g. "
                        "--model photo --init-model default fine-tunes the clean weights on degraded "
                        "inputs (the layouts must match)")
    g.add_argument("--init-weights", default=None,
                   help="a weights root (a folder like weights/) to start from. 64to512 loads the three "
                        "2x stages from it (default: --output-dir). A 2x stage given it continues from "
                        "that stage's weights, e.g. to fine-tune the shipped ones on your photos "
                        "(default: a fresh network). With --stage all, the 8x stack starts from the "
                        "stages this run trained")

    g = p.add_argument_group("data")
    g.add_argument("--dataset-name", default=sr_data.CATS_DATASET,
                   help="a Hub dataset id for datasets.load_dataset (ignored with --train-data-dir)")
    g.add_argument("--dataset-split", default="train")
    g.add_argument("--image-column", default="image")
    g.add_argument("--label-column", default=sr_data.CATS_LABEL_COLUMN,
                   help="keep only rows whose label equals --label-value (Hub datasets)")
    g.add_argument("--label-value", type=int, default=sr_data.CATS_LABEL_VALUE,
                   help="0 = cat in microsoft/cats_vs_dogs")
    g.add_argument("--train-data-dir", default=None, help="a local image folder (imagefolder)")
    g.add_argument("--val-data-dir", default=None,
                   help="validation images; default: a fixed split held out of the training data")
    g.add_argument("--val-split-size", type=int, default=48, help="images held out when no --val-data-dir")
    g.add_argument("--num-val-images", type=int, default=48)
    g.add_argument("--patch-size", type=int, default=None, help="HR patch (default: per stage)")
    g.add_argument("--degradations", default=None, choices=list(NAMED_DEGRADATIONS),
                   help="how LR inputs are made: 'none' = clean bicubic pairs, 'photo' = blur, resize "
                        "method, noise and JPEG (upscaler/degradations.py). Default: the family's "
                        "(photo for --model photo, none otherwise). Validation inputs get the same, "
                        "seeded per image")
    g.add_argument("--input-from", default=None, metavar="WEIGHTS",
                   help="train on the earlier stages' results: 128to256's input is made by WEIGHTS' 64to128 "
                        "(frozen) from an input 4x smaller, as the demo's 4x chains them (EarlierStages)")
    g.add_argument("--input-from-share", type=float, default=1.0,
                   help="with --input-from: the share of each batch made through the earlier stages; the rest "
                        "are the stage's own pairs, so that it stays good alone")
    g.add_argument("--content-scale", default=None, choices=list(sr_data.CONTENT_SCALES),
                   help="what a training patch shows: 'world' = the stage's own scale (the whole photo "
                        "seen at its output size, as the reference design trains), 'all' = anything from "
                        "that down to the photo's own pixels (for networks that meet larger photos). "
                        "Default: the family's")
    g.add_argument("--dataloader-num-workers", type=int, default=0,
                   help="threads that decode the photos, once, into the cache (0 = 1 thread)")
    g.add_argument("--cache-dir", default=None,
                   help="datasets cache, and the decoded-photo cache (default: the datasets cache)")

    g = p.add_argument_group("optimisation")
    g.add_argument("--loss", default=None, choices=["mse", "l1"], help="default: the network's recipe (net.loss)")
    g.add_argument("--learning-rate", type=float, default=None,
                   help="default: 1e-3 (2x stages), 2e-4 (fine-tuning 64to512)")
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--lr-warmup-steps", type=int, default=None, help="default: min(100, max_steps / 10)")
    g.add_argument("--train-batch-size", type=int, default=16, help="per process")
    g.add_argument("--max-steps", type=int, default=None, help="optimizer steps per stage")
    g.add_argument("--num-epochs", type=int, default=10, help="used when --max-steps is not given")
    g.add_argument("--gradient-accumulation-steps", type=int, default=1)
    g.add_argument("--ema-decay", type=float, default=0.999,
                   help="EMA of the weights (0 = off); the EMA is saved when it validates better")
    g.add_argument("--mixed-precision", default=None, choices=["no", "fp16", "bf16"],
                   help="default: what `accelerate launch` / `accelerate config` says")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is present")

    g = p.add_argument_group("perceptual (GAN) training: the default for families marked adversarial (sharp)")
    g.add_argument("--gan", default=None, choices=["on", "off"],
                   help="add the feature, adversarial and LDL losses (default: the family's recipe)")
    g.add_argument("--feature-weight", type=float, default=1.0, help="L1 on VGG16 features (FeatureLoss)")
    g.add_argument("--texture-weight", type=float, default=0.0,
                   help="L1 on windowed Gram matrices of VGG16 features (EnhanceNet's texture loss)")
    g.add_argument("--texture-taps", type=int, nargs="+", default=[0, 1, 2], choices=[0, 1, 2],
                   help="the VGG16 maps the texture term compares: 0, 1, 2 = ReLU 2, 4, 7 (strides 1, 2, 4)")
    g.add_argument("--texture-pool", type=int, default=2, choices=[1, 2],
                   help="the texture term sees the images averaged over N x N pixels (2: a grid every "
                        "second pixel earns nothing; 1: full resolution)")
    g.add_argument("--grid-weight", type=float, default=0.0,
                   help="penalty on a period-2 grid the truth does not have (--grid-loss)")
    g.add_argument("--grid-loss", choices=["excess", "error"], default="excess",
                   help="excess: period-2 amplitude beyond the truth's (adversarial.grid_excess); error: L1 "
                        "against the truth's signed period-2 components (adversarial.grid_error), which also "
                        "charges a grid fainter than the truth's fine detail")
    g.add_argument("--grid-window", type=int, default=None,
                   help="tile side in pixels of the grid penalty (default: adversarial.GRID_WINDOW, 16 "
                        "for excess, 64 for error)")
    g.add_argument("--grid4-weight", type=float, default=0.0,
                   help="the grid penalty at period 4 (0 = off): for a stage trained with --input-from")
    g.add_argument("--grid4-loss", choices=["excess", "error"], default="error",
                   help="at period 4: excess over the truth's amplitude per 16-px tile, or L1 against its "
                        "signed components per 64-px tile")
    g.add_argument("--gan-weight", type=float, default=0.1, help="the relativistic GAN loss (0 = off)")
    g.add_argument("--ldl-weight", type=float, default=1.0, help="L1 on LDL's artefact map (0 = off)")
    g.add_argument("--disc", choices=["unet", "vgg"], default="unet",
                   help="unet: Real-ESRGAN's U-Net on pixels (UNetDiscriminatorSN); vgg: small heads on the "
                        "frozen VGG16 maps of the feature loss (VGGFeatureDiscriminator), which learn sooner")
    g.add_argument("--disc-features", type=int, default=DISC_FEATURES,
                   help="discriminator width: the U-Net's (Real-ESRGAN: 64) or each VGG head's")
    g.add_argument("--disc-taps", default=",".join(map(str, VGGFeatureDiscriminator.DEFAULT_TAPS)),
                   help="--disc vgg: the VGG16 maps its heads judge, as indices of ReLU 2,4,7,10,13 (0-4); "
                        "0 adds a head at the image's own resolution")
    g.add_argument("--disc-learning-rate", type=float, default=4e-4)

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
    if args.init_model and not args.init_weights:
        p.error("--init-model needs --init-weights")
    if args.arch_args and args.init_weights and args.stage != STACK_STAGE:
        p.error("--arch-args and --init-weights both set: a 2x stage that continues from weights "
                "takes its layout from their config.json")
    if not 0 < args.input_from_share <= 1:
        p.error("--input-from-share must be in (0, 1]")
    if args.input_from_share != 1 and not args.input_from:
        p.error("--input-from-share needs --input-from")
    if args.disc == "vgg" and not (gan_on(args) and args.gan_weight):
        p.error("--disc vgg is the adversarial term's discriminator: it needs a --gan-weight above 0"
                + ("" if gan_on(args) else f", and --gan on ({args.model} trains without it)"))
    try:
        taps = tuple(sorted({int(t) for t in args.disc_taps.split(",")}))
    except ValueError:
        taps = ()
    if not taps or not set(taps) <= set(range(len(VGG16_TAP_RELUS))):
        p.error(f"--disc-taps: indices of VGG16 maps, 0 to 4, separated by commas (got {args.disc_taps!r})")
    args.disc_taps = taps
    if args.disc != "vgg" and args.disc_taps != VGGFeatureDiscriminator.DEFAULT_TAPS:
        p.error("--disc-taps picks the VGG16 maps of --disc vgg")
    if args.grid4_weight and not gan_on(args):
        p.error(f"--grid4-weight is a perceptual term: {args.model} trains without them (add --gan on)")
    if args.input_from and args.stage not in TWO_X_STAGES[1:]:
        p.error(f"--input-from trains a stage on the results of the ones before it: use it with "
                f"--stage {' or '.join(TWO_X_STAGES[1:])}")
    args.grid_window = args.grid_window or GRID_WINDOW[args.grid_loss]
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


def save_checkpoint(accelerator, args, stage, step, ema=None):
    """save_state (+ the EMA) into checkpoint-N.tmp, then an atomic rename to checkpoint-N.

    A write that fails (a full disk, a quota) leaves the previous checkpoint as the latest:
    the half-written folder is removed and the run stops with a message that says how to
    go on, instead of a traceback, or a "latest" that cannot be loaded.
    On many processes a write can fail on one of them only (each writes its RNG state, the
    main one the rest): they agree on the outcome through one reduction, and all stop with
    the message. A process that stopped alone would leave the others waiting for it in
    the next collective until the timeout."""
    root = checkpoint_root(args, stage)
    final, tmp = root / f"checkpoint-{step}", root / f"checkpoint-{step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    error = None
    try:
        accelerator.save_state(str(tmp))  # every process writes its own RNG state
        if accelerator.is_main_process:
            if ema is not None:
                ema.save(tmp / "ema.safetensors")
            # the discriminator's kind too: a checkpoint of one cannot resume the other
            (tmp / "step.json").write_text(json.dumps({"step": step, **(disc_kind(args) if gan_on(args) else {})}))
    except OSError as e:
        error = e
    failed = accelerator.reduce(torch.tensor([int(error is not None)], device=accelerator.device), "sum")
    if failed.item():
        accelerator.wait_for_everyone()  # every process is done with the folder before it goes
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        kept = list_checkpoints(root)
        why = (f"{error.strerror or error}" if error is not None
               else f"the write failed on {int(failed.item())} other process(es)")
        raise SystemExit(
            f"error: could not write the checkpoint at step {step} into {root} ({why}). "
            + (f"The previous one, {kept[-1].name}, is kept. " if kept else "No earlier checkpoint exists. ")
            + "Free some space (or pass another --output-dir), then run the same command with "
              "--resume-from-checkpoint latest to go on from there.") from None
    if accelerator.is_main_process:
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
class EarlierStages:
    """``--input-from WEIGHTS``: a 2x stage trained on what the stages before it make.

    The demo's 4x runs 64to128, then 128to256 on its result. Trained alone, 128to256 only
    sees real photos shrunk 2x; in the chain it meets 64to128's result, smoother than any of
    them, and its own fine detail is what the 4x shows. So here the pairs are made at the
    chain's factor (for 128to256: the HR patch shrunk and degraded 4x), and the earlier
    stages, frozen, from WEIGHTS, make this stage's input from it, rounded to 8 bits as
    between the demo's stages. ``chain`` is the stage the pairs are made for."""

    def __init__(self, args, stage, device):
        before = TWO_X_STAGES[:TWO_X_STAGES.index(stage.name)]
        self.nets = [load_model(args.model, name, weights=args.input_from)[0].to(device).eval().requires_grad_(False)
                     for name in before]
        first = get_stage(before[0])
        self.chain = Stage(f"{first.input_size}to{stage.output_size}", first.input_size, stage.output_size,
                           f"{first.input_size} -> {stage.output_size} (the chain's pairs)")

    @torch.no_grad()
    def __call__(self, x):
        """[0, 1] inputs (N x 3 x h x w) -> [0, 1] inputs of this stage (earlier factors larger)."""
        for net in self.nets:
            x = from_model_range(net(to_model_range(x, net)), net).clamp(0, 1).mul(255).round().div(255)
        return x

    def image(self, img):
        return tensor_to_pil(self(to_tensor(img)[None].to(next(self.nets[0].parameters()).device)))


class ChainPairs:
    """The batches of a stage trained in the chain (``--input-from``): ``chain``'s pairs with
    their inputs made by the earlier stages, then, with ``--input-from-share`` below 1,
    ``own``'s, the stage's own pairs (real photos shrunk 2x), so that it stays good alone."""

    def __init__(self, chain, own, earlier, steps_per_epoch: int):
        self.chain, self.own, self.earlier = chain, own, earlier
        self.images, self.patch, self.steps_per_epoch = chain.images, chain.patch, steps_per_epoch
        through = chain.batch_size
        self.share = through / (through + (own.batch_size if own is not None else 0))  # as run, not as asked

    def batch(self, step: int, micro: int = 0):
        lr, hr = self.chain.batch(step, micro)
        lr = self.earlier(lr)
        if self.own is not None:
            own_lr, own_hr = self.own.batch(step, micro)
            lr, hr = torch.cat([lr, own_lr]), torch.cat([hr, own_hr])
        return lr, hr


def build_data(args, stage, accelerator, earlier=None):
    """-> (this process's pairs, validation pairs as PIL images, skipped photos).

    The pairs are a PairMaker, or with ``earlier`` (EarlierStages) a ChainPairs; then each
    validation input is the earlier stages' result too."""
    with accelerator.main_process_first():  # the first process builds the caches
        if args.train_data_dir:
            ds = sr_data.load_images(data_dir=args.train_data_dir, cache_dir=args.cache_dir)
        else:
            ds = sr_data.load_images(args.dataset_name, split=args.dataset_split, image_column=args.image_column,
                                     label_column=args.label_column, label_value=args.label_value,
                                     cache_dir=args.cache_dir)
        if args.val_data_dir:
            val_ds = sr_data.load_images(data_dir=args.val_data_dir, cache_dir=args.cache_dir)
        else:
            ds, val_ds = sr_data.split_held_out(ds, args.val_split_size)
        images = sr_data.DecodedImages.build(ds, args.cache_dir, num_workers=args.dataloader_num_workers)
    spec = NAMED_DEGRADATIONS[degradations_name(args)]
    made_for = earlier.chain if earlier is not None else stage

    # one patch side for every maker: a multiple of the chain's factor, so their truths match
    patch = (args.patch_size or DEFAULT_PATCH[stage.name]) // made_for.factor * made_for.factor

    def pair_maker(for_stage, batch_size, seed):
        return sr_data.PairMaker(images, for_stage, patch, batch_size,
                                 accelerator.device, seed=seed, rank=accelerator.process_index,
                                 world=accelerator.num_processes, degradations=spec,
                                 accumulation=args.gradient_accumulation_steps, content_scale=content_scale_name(args))

    if earlier is None:
        pairs = pair_maker(stage, args.train_batch_size, args.seed)
    else:  # the chain's share of each batch, then the stage's own pairs (their own seed: other photos)
        through = max(1, round(args.train_batch_size * args.input_from_share))
        own = args.train_batch_size - through
        # an epoch counted in whole batches (the chain's share and the stage's own together)
        per_epoch = sr_data.steps_per_epoch(len(images), args.train_batch_size, args.gradient_accumulation_steps,
                                            accelerator.num_processes)
        pairs = ChainPairs(pair_maker(made_for, through, args.seed),
                           pair_maker(stage, own, args.seed + 1) if own else None, earlier, per_epoch)
    val = []
    for i in range(min(args.num_val_images, len(val_ds))):
        img = sr_data.open_image(val_ds[i]["image"])
        if img is not None:
            lr, hr = eval_pair(img, made_for)
            if spec is not None:  # the same degraded input for every run and step: seeded by the image
                lr = degrade_image(hr, made_for.factor, spec, seed=10_000 + i)
            val.append((earlier.image(lr) if earlier is not None else lr, hr))
    return pairs, val, images.skipped


def degradations_name(args) -> str:
    return args.degradations or get_family(args.model).degradations


def content_scale_name(args) -> str:
    return args.content_scale or get_family(args.model).content_scale


def gan_on(args) -> bool:
    return args.gan == "on" if args.gan else get_family(args.model).adversarial


def disc_kind(source) -> dict:
    """Which discriminator a run (its args) or a checkpoint (its step.json) has: a checkpoint
    of one cannot resume another. Checkpoints that name none hold the U-Net; --disc vgg ones
    that name no taps, the default taps. The width counts too, as the weights' shapes follow
    it; checkpoints saved before widths were recorded name none, and are not checked for it."""
    get = source.get if isinstance(source, dict) else lambda key, default: getattr(source, key, default)
    kind = {"disc": get("disc", "unet")}
    if get("disc_features", None) is not None:
        kind["disc_features"] = int(get("disc_features", None))
    if kind["disc"] == "vgg":
        kind["disc_taps"] = list(get("disc_taps", None) or VGGFeatureDiscriminator.DEFAULT_TAPS)
    return kind


def describe_disc(kind: dict) -> str:
    taps = f" --disc-taps {','.join(map(str, kind['disc_taps']))}" if "disc_taps" in kind else ""
    width = f" --disc-features {kind['disc_features']}" if "disc_features" in kind else ""
    return f"--disc {kind['disc']}{taps}{width}"


class PerceptualLosses:
    """Real-ESRGAN's recipe in small (``upscaler/adversarial.py``): the pixel loss plus L1 on
    VGG16 features, the relativistic GAN loss of a discriminator (a U-Net on pixels, or heads
    on the frozen VGG16 maps: ``--disc``) and LDL's artefact term; the discriminator takes its
    own step after the generator's. Its network and
    optimizer go through ``accelerator.prepare``, so ``save_state`` checkpoints them and
    resume is exact."""

    def __init__(self, args, accelerator):
        self.args, self.accelerator = args, accelerator
        texture = {"texture_taps": args.texture_taps, "texture_pool": args.texture_pool}
        # (parse_args lets --disc vgg through only with a GAN weight)
        needs_vgg = args.feature_weight or args.texture_weight or args.disc == "vgg"
        self.features = FeatureLoss(**texture).to(accelerator.device) if needs_vgg else None
        disc = (VGGFeatureDiscriminator(args.disc_features, args.disc_taps) if args.disc == "vgg"
                else UNetDiscriminatorSN(args.disc_features))
        optimizer = torch.optim.Adam(disc.parameters(), lr=args.disc_learning_rate, betas=(0.9, 0.99))
        self.disc, self.optimizer = accelerator.prepare(disc, optimizer)
        # The generator's step asks the discriminator without training it: the bare module,
        # so that DDP does not wait for gradients that never come.
        self.judge = accelerator.unwrap_model(self.disc)
        self.disc_maps = None  # for --disc vgg: (the results' maps, detached; the truths'), per batch
        self.last = {}

    def generator(self, sr, hr, pixel, ema_sr):
        """The generator's loss for results ``sr`` of truths ``hr`` (``pixel``: its pixel loss)."""
        a, parts = self.args, {"pixel": pixel}
        maps = None
        if a.disc == "vgg":
            # One VGG16 pass of each serves the feature loss, the generator's adversarial term
            # and (detached) the discriminator's step: the same maps, computed once.
            feature_depth = self.features.depth if a.feature_weight or a.texture_weight else 0
            depth = max(feature_depth, self.judge.depth)
            with torch.no_grad():
                hr_maps = self.features.taps(hr, depth)
            maps = (self.features.taps(sr, depth), hr_maps)
            self.disc_maps = ([m.detach() for m in maps[0]], hr_maps)
        if a.feature_weight or a.texture_weight:  # (the VGG16 may be here for --disc vgg alone)
            if a.texture_weight:
                feature, texture = self.features(sr, hr, with_texture=True, maps=maps)
                parts["texture"] = a.texture_weight * texture
            else:
                feature = self.features(sr, hr, maps=maps)
            parts["feature"] = a.feature_weight * feature
        if a.grid_weight:
            parts["grid"] = a.grid_weight * GRID_LOSSES[a.grid_loss](sr, hr, a.grid_window)
        if a.grid4_weight:
            parts["grid4"] = a.grid4_weight * GRID_LOSSES[a.grid4_loss](sr, hr, GRID_WINDOW[a.grid4_loss], period=4)
        if a.ldl_weight and ema_sr is not None:
            weight = artifact_map(hr, sr.detach(), ema_sr)
            parts["ldl"] = a.ldl_weight * F.l1_loss(weight * sr, weight * hr)
        if a.gan_weight:
            self.judge.requires_grad_(False)
            real_seen, fake_seen = (maps[1], maps[0]) if maps else (hr, sr)
            with torch.no_grad():
                real = self.judge(real_seen)
            parts["gan"] = a.gan_weight * generator_loss(real, self.judge(fake_seen))
            self.judge.requires_grad_(True)
        self.last = {k: v.detach() for k, v in parts.items()}
        return sum(parts.values())

    def discriminator_step(self, sr, hr):
        """After ``generator`` on the same batch. It judges the images, or for ``--disc vgg``
        their VGG16 maps, which the generator's step computed."""
        if not self.args.gan_weight:
            return
        fake, real = self.disc_maps if self.args.disc == "vgg" else (sr.detach(), hr)
        loss = discriminator_loss(self.disc(real), self.disc(fake))
        self.accelerator.backward(loss)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.last["disc"] = loss.detach()

    def record(self) -> dict:
        a = self.args
        record = {"feature_weight": a.feature_weight, "texture_weight": a.texture_weight, "grid_weight": a.grid_weight,
                  "gan_weight": a.gan_weight, "gan_loss": "relativistic average",
                  "ldl_weight": a.ldl_weight, "disc": a.disc, "disc_features": a.disc_features,
                  **({"disc_taps": "VGG16 ReLU " + ",".join(str(VGG16_TAP_RELUS[t]) for t in a.disc_taps)}
                     if a.disc == "vgg" else {}),
                  "disc_learning_rate": a.disc_learning_rate, "feature_layers": "VGG16 ReLU 2,4,7,10,13 (0.1,0.1,1,1,1)"}
        if a.grid4_weight:
            record["grid4_weight"], record["grid4_loss"] = a.grid4_weight, a.grid4_loss
            record["grid4_window"] = GRID_WINDOW[a.grid4_loss]
        if a.grid_weight:
            record["grid_loss"] = a.grid_loss
            record["grid_window"] = a.grid_window
        if a.texture_weight:  # what the texture term compared, only for a run that used it
            record["texture"] = ("Gram matrices of VGG16 ReLU " + ",".join(str(VGG16_TAP_RELUS[t]) for t in a.texture_taps)
                                 + f" over {TEXTURE_WINDOW * a.texture_pool}-px windows of the image averaged over "
                                 f"{a.texture_pool}x{a.texture_pool} (EnhanceNet)")
        return record



class EMA:
    """An exponential moving average of a network's weights (float buffers such as
    BatchNorm's running statistics are copied). Each checkpoint holds it as
    ``ema.safetensors``, so resume is exact.
    The decay ramps up as (1 + n) / (10 + n) so that early averages do not remember the
    random initialisation."""

    def __init__(self, net, decay: float):
        self.decay, self.updates = decay, 0
        self.net = copy.deepcopy(net).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net):
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for mine, theirs in zip(self.net.parameters(), net.parameters()):
            mine.lerp_(theirs.detach(), 1 - d)
        for mine, theirs in zip(self.net.buffers(), net.buffers()):
            mine.copy_(theirs)

    def save(self, path):
        save_file(self.net.state_dict(), str(path), metadata={"updates": str(self.updates)})

    def load(self, path):
        with safe_open(str(path), "pt") as fh:
            self.updates = int(fh.metadata()["updates"])
        self.net.load_state_dict(load_file(str(path), device=str(next(self.net.parameters()).device)))


# ------------------------------------------------------------------------- model
def build_model(args, stage_name):
    family = get_family(args.model)
    if stage_name != STACK_STAGE:
        if args.init_weights is None:
            # A fresh network: the stage's part of the family's 8x layout, with --arch-args on
            # top. Its initial weights are drawn from a generator seeded by (seed, stage), so
            # a stage trained inside --stage all starts where the same stage trained alone does.
            torch.manual_seed(stage_seed(args.seed, stage_name))
            return family.build(stage_name, **json.loads(args.arch_args or "{}"))
        return load_model(args.init_model or args.model, stage_name, weights=args.init_weights)[0]
    # The 8x stack starts from the three independently trained 2x stages: with --stage all,
    # the ones this run has just written.
    root = args.output_dir if args.stage == "all" else (args.init_weights or args.output_dir)
    source = args.model if args.stage == "all" else (args.init_model or args.model)
    parts = [load_model(source, s, weights=root)[0] for s in TWO_X_STAGES]
    return family.eight_x.from_stages(*parts)


def stage_seed(seed: int, stage_name: str) -> int:
    """The seed of a stage's initial weights: the same for a stage whatever ran before it."""
    return int.from_bytes(hashlib.sha256(f"{seed}-{stage_name}".encode()).digest()[:8], "little")


def earlier_training(args, stage_name):
    """The ``training`` block of the weights a 2x stage continued from (None for a fresh start)."""
    if args.init_weights is None or stage_name == STACK_STAGE:
        return None
    config = resolve_weights(args.init_model or args.model, stage_name, weights=args.init_weights)[0] / "config.json"
    # weights from elsewhere may come without a record (load_model accepts a missing config.json)
    return json.loads(config.read_text()).get("training") if config.is_file() else None


# -------------------------------------------------------------------- validation
@torch.no_grad()
def validate(accelerator, nets, val, baselines, stage, step, samples, log_dir):
    """PSNR/SSIM (Y, border = factor) of each network in ``nets`` ({"model": .., "ema": ..})
    beside the baselines, and LPIPS (AlexNet; lower is better) where its weights are; a
    figure of the first one."""
    metrics, outs = {"step": step, "samples": samples}, {}
    for name, net in nets.items():  # Upscaler works on a copy: the training network is untouched
        up = Upscaler(net, stage, device=accelerator.device, dtype="float32", channels_last=False, tile=0)
        outs[name] = [tensor_to_pil(up.upscale_tensor(to_tensor(lr)[None])) for lr, _ in val]
    if lpips_metric() is not None:  # LPIPS of bicubic too: the curve's perceptual baseline
        outs["bicubic"] = [classical("bicubic", stage.factor)(lr) for lr, _ in val]
    for name, images in outs.items():
        mean = mean_scores(score_pair(o, hr, stage.factor, perceptual=True) for o, (_, hr) in zip(images, val))
        if name != "bicubic":  # its PSNR and SSIM are the baselines' below
            metrics[f"psnr_{name}"], metrics[f"ssim_{name}"] = mean["psnr"], mean["ssim"]
        if "lpips" in mean:
            metrics[f"lpips_{name}"] = mean["lpips"]
        # fine detail against the truth's (median, as benchmarks/perceptual.py): what a GAN adds
        metrics[f"crisp_{name}"] = round(statistics.median(crispness(o, hr) for o, (_, hr) in zip(images, val)), 3)
        # a grid of period 2 or 4 pixels, against the truth's (1 = none added): what a loss
        # that rewards fine detail of any kind can teach a pixel-shuffle network
        if all(min(hr.size) >= 16 for _, hr in val):
            metrics[f"grid_{name}"] = round(statistics.median(checkerboard(o, hr) for o, (_, hr) in zip(images, val)), 3)
    for name, row in baselines.items():
        metrics[f"psnr_{name}"], metrics[f"ssim_{name}"] = row["psnr"], row["ssim"]
    n = min(4, len(val))
    grid = comparison_grid([v[0] for v in val[:n]], outs["model"][:n], [v[1] for v in val[:n]])
    grid.save(log_dir / f"grid-step{step:06d}.png")
    with open(log_dir / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(metrics) + "\n")
    return metrics


def portable(arg) -> str:
    """A path as it is recorded in config.json and the model card: relative to the folder
    the run was started from, so that the record names no machine's directories."""
    arg = str(arg)
    return os.path.relpath(arg) if os.path.isabs(arg) and os.path.exists(arg) else arg


def trim_curve(metrics_file: Path, last_step: int):
    """The learning curve belongs to one run. A new run (``last_step`` 0) starts it afresh,
    instead of appending to an earlier run's points in the same output folder; a resumed
    run keeps the points up to its checkpoint, and the killed process's later ones go
    (they are made again)."""
    if metrics_file.is_file():
        lines = metrics_file.read_text().splitlines()
        kept = [line for line in lines if json.loads(line)["step"] <= last_step]
        metrics_file.write_text("".join(line + "\n" for line in kept))


# ------------------------------------------------------------------------- train
def train_stage(args, accelerator, stage_name):
    stage = get_stage(stage_name)
    log_dir = Path(args.logging_dir or Path(args.output_dir) / "logs") / args.model / stage_name
    resume = find_resume(args, stage_name)
    resumed = json.loads((resume / "step.json").read_text()) if resume else {"step": 0}
    held, asked = disc_kind(resumed), disc_kind(args)
    if "disc_features" not in held:  # an older checkpoint: its width is not known, its kind and taps are
        asked.pop("disc_features")
    if resume and gan_on(args) and held != asked:
        held, asked = describe_disc(held), describe_disc(asked)
        raise SystemExit(f"error: {resume} holds a discriminator of {held}, and this run asks for {asked}. "
                         f"Resume with the same one, or start afresh: another --output-dir, or no "
                         f"--resume-from-checkpoint.")
    start_step = int(resumed["step"])
    if accelerator.is_main_process:
        log_dir.mkdir(parents=True, exist_ok=True)
        trim_curve(log_dir / "metrics.jsonl", start_step)

    earlier = EarlierStages(args, stage, accelerator.device) if args.input_from else None
    pairs, val, skipped = build_data(args, stage, accelerator, earlier)
    if not val:
        raise SystemExit("no readable validation images")
    baselines = classical_scores(val, stage.factor) if accelerator.is_main_process else None
    net = build_model(args, stage_name)
    continues = earlier_training(args, stage_name)  # read beside the weights, not hours later
    loss_name = args.loss or net.loss
    loss_fn = F.mse_loss if loss_name == "mse" else F.l1_loss
    lr = args.learning_rate or (2e-4 if stage_name == STACK_STAGE else 1e-3)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=args.weight_decay)

    accum = args.gradient_accumulation_steps
    max_steps = args.max_steps or args.num_epochs * max(pairs.steps_per_epoch, 1)  # optimizer steps
    warmup = args.lr_warmup_steps if args.lr_warmup_steps is not None else min(100, max_steps // 10)

    def schedule(step):  # linear warmup, then cosine to 0
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, max_steps - warmup))))

    # accelerate steps a prepared scheduler once per process per update: count in those units
    n = accelerator.num_processes
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: schedule(s // n))
    net, optimizer, scheduler = accelerator.prepare(net, optimizer, scheduler)
    unwrapped = accelerator.unwrap_model(net)
    gan = PerceptualLosses(args, accelerator) if gan_on(args) else None  # prepared after the generator
    if gan is not None and tuple(unwrapped.value_range) != (0.0, 1.0):
        raise SystemExit(f"--gan on needs a network that works in [0, 1]; {args.model}'s reads "
                         f"{tuple(unwrapped.value_range)}")
    ema = EMA(unwrapped, args.ema_decay) if args.ema_decay > 0 else None

    global_step = start_step
    if resume is not None:
        accelerator.print(f"resuming from {resume}")
        accelerator.load_state(str(resume))
        if ema is not None:
            ema.load(resume / "ema.safetensors")
    elif args.resume_from_checkpoint:
        accelerator.print(f"no checkpoint for {args.model}/{stage_name} yet: starting a new run")

    samples_per_step = args.train_batch_size * n * accum
    accelerator.print(f"*** distributed: {accelerator.distributed_type}, backend: {accelerator.state.backend}")
    accelerator.print(f"*** {args.model}/{stage_name}: {len(pairs.images)} training images, {len(val)} validation, "
                      f"{n} process(es) x batch {args.train_batch_size} x accumulation {accum}, "
                      f"{max_steps} steps, loss {loss_name}, lr {lr}, EMA {args.ema_decay or 'off'}")
    progress = tqdm(range(max_steps), initial=global_step, desc=f"{args.model}/{stage_name}",
                    disable=not accelerator.is_local_main_process)
    # Throughput of the loop in steady state: from the step where this run's first tenth
    # ends to the last step, minus the time spent validating and checkpointing.
    window_start = global_step + max(1, (max_steps - global_step) // 10)
    t0, t_window, pauses, metrics = time.time(), None, 0.0, None
    nets_to_validate = {"model": unwrapped, **({"ema": ema.net} if ema is not None else {})}
    net.train()
    while global_step < max_steps:
        step_loss = 0.0  # this process's mean over the step's micro-batches
        for micro in range(accum):
            x, target = pairs.batch(global_step, micro)  # keyed by the step: exact resume
            with accelerator.accumulate(net, *([gan.disc] if gan else [])):
                x = to_model_range(x, unwrapped)
                sr, truth = net(x), to_model_range(target, unwrapped)
                loss = loss_fn(sr, truth)
                if gan is not None:
                    with torch.no_grad():  # LDL tells artefacts from detail by the EMA's result
                        ema_sr = ema.net(x) if ema is not None and args.ldl_weight else None
                    loss = gan.generator(sr, truth, loss, ema_sr)
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                if gan is not None:
                    gan.discriminator_step(sr, truth)
            step_loss += loss.detach() / accum
        global_step += 1
        if ema is not None:
            ema.update(unwrapped)
        if global_step == window_start:
            t_window, pauses = time.time(), 0.0
        progress.update(1)
        if global_step % 10 == 0 or global_step == max_steps:  # .item() waits for the GPU: not every step
            # the step's loss over every process and micro-batch (a collective: every process logs here)
            logged = accelerator.reduce(step_loss, "mean").item()
            parts = {k: accelerator.reduce(v, "mean").item() for k, v in gan.last.items()} if gan else {}
            progress.set_postfix(loss=f"{logged:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}",
                                 **{k: f"{v:.4f}" for k, v in parts.items()})
            accelerator.log({"loss": logged, "lr": scheduler.get_last_lr()[0],
                             **{f"loss_{k}": v for k, v in parts.items()}}, step=global_step)
        t_pause = time.time()
        if global_step % args.checkpointing_steps == 0 or global_step == max_steps:
            save_checkpoint(accelerator, args, stage_name, global_step, ema)
        if global_step % args.validation_steps == 0 or global_step == max_steps:
            if accelerator.is_main_process:
                metrics = validate(accelerator, nets_to_validate, val, baselines, stage, global_step,
                                   global_step * samples_per_step, log_dir)
                accelerator.print(f"step {global_step}: " + json.dumps(metrics))
                accelerator.log({k: v for k, v in metrics.items() if k != "step"}, step=global_step)
            accelerator.wait_for_everyone()
            net.train()
        pauses += time.time() - t_pause
    progress.close()
    if accelerator.device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.time() - t0
    throughput = None
    if t_window is not None and global_step > window_start:
        busy = time.time() - t_window - pauses
        throughput = round((global_step - window_start) * samples_per_step / max(busy, 1e-9), 1)

    if skipped:
        logger.warning(f"skipped {skipped} unreadable image(s) in the training data of {stage_name}",
                       main_process_only=True)
    accelerator.wait_for_everyone()
    # The trained weights through accelerate's own call: under FSDP or DeepSpeed the wrapped
    # module holds shards, and this gathers them (every process takes part).
    trained_state = accelerator.get_state_dict(net)
    if accelerator.is_main_process:
        metrics_file = log_dir / "metrics.jsonl"
        curve = [json.loads(line) for line in metrics_file.read_text().splitlines()] if metrics_file.is_file() else []
        curve = curve[-200:]  # trim_curve left this run's points only, all <= global_step
        if metrics is None:  # resumed from the final checkpoint: no step ran in this process
            metrics = next((c for c in reversed(curve) if c["step"] == global_step), None) or validate(
                accelerator, nets_to_validate, val, baselines, stage, global_step, global_step * samples_per_step,
                log_dir)
            curve = curve or [metrics]
        # The EMA ships when it validates better: by PSNR, or for a GAN by LPIPS (lower),
        # which is what such a run is for.
        if gan is not None and "lpips_ema" in metrics:
            shipped = "ema" if ema is not None and metrics["lpips_ema"] < metrics["lpips_model"] else "model"
        else:
            shipped = "ema" if ema is not None and metrics["psnr_ema"] > metrics["psnr_model"] else "model"
        summary = {
            "stage": stage_name, "model": args.model,
            "command": " ".join(["train_accelerate.py", *map(portable, sys.argv[1:])]),
            "device": describe_device(accelerator.device),
            "steps": global_step, "world_size": n,
            "batch_size_per_process": args.train_batch_size,
            "gradient_accumulation_steps": accum, "samples_seen": global_step * samples_per_step,
            "loss": loss_name, "learning_rate": lr, "ema_decay": args.ema_decay, "shipped_weights": shipped,
            "patch_size": pairs.patch, "degradations": degradations_name(args),
            "content_scale": content_scale_name(args),
            "input_from": portable(args.input_from) if args.input_from else None,
            "input_from_share": round(pairs.share, 4) if args.input_from else None,
            "perceptual": gan.record() if gan is not None else None,
            "mixed_precision": accelerator.mixed_precision, "wall_seconds_this_run": round(wall, 1),
            "samples_per_second": throughput,
            "skipped_images": skipped, "resumed_from": portable(resume) if resume else None,
            "init_weights": portable(args.init_weights) if args.init_weights else None, "init_model": args.init_model,
            # the record of the weights this run continued from: the whole recipe stays in one file
            "continues": continues,
            "val": metrics,
            "curve": [{k: c[k] for k in ("step", "samples", "psnr_model", "psnr_ema", "psnr_bicubic",
                                         "lpips_model", "lpips_ema", "lpips_bicubic", "crisp_model", "crisp_ema", "crisp_bicubic")
                                         if k in c}
                      for c in curve],
        }
        if shipped == "ema":
            final = ema.net
        else:
            final = type(unwrapped)(**(getattr(unwrapped, "_hub_mixin_config", None) or {}))
            final.load_state_dict(trained_state)
        # folded(): a network trained with extra branches is saved as the plain one it equals
        folder = save_model(final.folded(), args.output_dir, args.model, stage_name, extra={"training": summary})
        (log_dir / "train_summary.json").write_text(json.dumps(summary, indent=2))
        accelerator.print(f"saved {folder}  ({wall:.0f} s, the {shipped} weights)")
    accelerator.wait_for_everyone()
    accelerator.free_memory(net, optimizer, scheduler, *([gan.disc, gan.optimizer] if gan else []))


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
    )
    # The same seed in every process. Nothing that matters draws from the global generators:
    # the crops differ per process because PairMaker keys them by rank, and each stage's
    # initial weights have their own seed (stage_seed).
    set_seed(args.seed)
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
