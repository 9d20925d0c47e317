"""train_accelerate.py, run the way users run it: `accelerate launch` / `torchrun` subprocesses."""
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT
from helpers import ACCELERATE, TRAIN_SCRIPT, run_ok
from helpers import train_args as common
from hub_server import serve
from PIL import Image
from safetensors.torch import load_file

from upscaler.inference import load_upscaler
from upscaler.models import FAMILIES

pytestmark = pytest.mark.slow  # subprocesses that train
SCRIPT = TRAIN_SCRIPT
run = run_ok


def summary(out, model, stage):
    return json.loads((out / "logs" / model / stage / "train_summary.json").read_text())


def test_accelerate_launch_all_stages_writes_loadable_weights(tiny_dataset, tmp_path):
    out = tmp_path / "w"
    run([*ACCELERATE, *common(tiny_dataset, out, "--stage", "all", "--max-steps", "3")])
    for stage in ("64to128", "128to256", "256to512", "64to512"):
        assert sorted(p.name for p in (out / "default" / stage).iterdir()) == ["config.json", "model.safetensors"]
        s = summary(out, "default", stage)
        assert s["steps"] == 3 and s["world_size"] == 1
        assert {"psnr_model", "psnr_ema", "psnr_bilinear", "psnr_bicubic", "ssim_model"} <= set(s["val"])
        assert s["shipped_weights"] in ("model", "ema") and s["device"] and s["samples_seen"] == 12
        assert [c["step"] for c in s["curve"]] == [2, 3]  # the learning curve, in config.json too
        cfg = json.loads((out / "default" / stage / "config.json").read_text())
        assert cfg["training"]["curve"] == s["curve"]
        assert list((out / "logs" / "default" / stage).glob("grid-step*.png"))
    # each 2x stage trained as its part of the 8x layout, and the stack kept that layout
    layout = [json.loads((out / "default" / s / "config.json").read_text()) for s in
              ("64to128", "128to256", "256to512", "64to512")]
    shipped = [(a["num_features"], a["num_convs"]) for a in FAMILIES["default"].eight_x.layout()]
    assert len(set(shipped)) > 1  # the stages differ, so a mix-up would show
    assert [(c["num_features"], c["num_convs"]) for c in layout[:3]] == shipped
    assert list(zip(layout[3]["num_features"], layout[3]["num_convs"])) == shipped
    up = load_upscaler("64to512", weights=out)
    assert up(Image.new("RGB", (10, 6))).size == (80, 48)
    # the 8x stack started from the three stages: fine-tuning 3 steps moves it only a little
    stack = load_file(out / "default" / "64to512" / "model.safetensors")
    stage1 = load_file(out / "default" / "64to128" / "model.safetensors")
    w = "upsample_64.body.0.weight"
    assert torch.allclose(stack[w], stage1["body.0.weight"], atol=0.01)
    card = (out / "README.md").read_text()
    assert "64to512" in card and "train_accelerate.py" in card
    assert not list(out.glob("checkpoints/**/*.tmp"))


def test_seed_recipe_uses_mse(tiny_dataset, tmp_path):
    out = tmp_path / "w"
    run([*ACCELERATE, *common(tiny_dataset, out, "--model", "seed", "--stage", "128to256", "--max-steps", "2")])
    s = summary(out, "seed", "128to256")
    assert s["loss"] == "mse" and s["steps"] == 2
    assert load_upscaler("128to256", model="seed", weights=out)(Image.new("RGB", (7, 5))).size == (14, 10)


def test_killed_run_resumes_and_matches_an_uninterrupted_one(tiny_dataset, tmp_path):
    args = ["--stage", "64to128", "--max-steps", "60", "--checkpointing-steps", "5", "--validation-steps", "1000",
            "--train-batch-size", "2"]
    ref = tmp_path / "ref"
    run([sys.executable, *common(tiny_dataset, ref, *args)])

    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, *common(tiny_dataset, out, *args)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ckpts = out / "checkpoints" / "default" / "64to128"
    deadline = time.time() + 300
    while not (ckpts / "checkpoint-5").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-training, no chance to clean up
    proc.wait()
    assert (ckpts / "checkpoint-5").exists()
    assert not (out / "default" / "64to128" / "model.safetensors").exists(), "the run finished before the kill"
    # a half-written checkpoint, as a crash during save_state leaves it, must not count as latest
    (ckpts / "checkpoint-999.tmp").mkdir()
    (ckpts / "checkpoint-999.tmp" / "model.safetensors").write_bytes(b"garbage")

    log = run([sys.executable, *common(tiny_dataset, out, *args, "--resume-from-checkpoint", "latest")])
    s = summary(out, "default", "64to128")
    assert s["steps"] == 60 and "checkpoint-" in s["resumed_from"] and "999" not in s["resumed_from"]
    assert "resuming from" in log
    a = load_file(ref / "default" / "64to128" / "model.safetensors")
    b = load_file(out / "default" / "64to128" / "model.safetensors")
    for k in a:  # same data order, crops, optimizer and schedule: the same weights
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_rerunning_a_finished_run_with_resume_keeps_its_weights(tiny_dataset, tmp_path):
    """weights/train.sh passes --resume-from-checkpoint latest: run twice, the second run
    finds the final checkpoint, trains nothing and saves the same weights and summary."""
    out = tmp_path / "w"
    args = common(tiny_dataset, out, "--stage", "64to128", "--max-steps", "3", "--resume-from-checkpoint", "latest")
    run([sys.executable, *args])
    first = load_file(out / "default" / "64to128" / "model.safetensors")
    before = summary(out, "default", "64to128")
    log = run([sys.executable, *args])
    assert "resuming from" in log and "checkpoint-3" in log
    after = summary(out, "default", "64to128")
    assert after["steps"] == 3 and after["val"] == before["val"] and after["curve"] == before["curve"]
    second = load_file(out / "default" / "64to128" / "model.safetensors")
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_two_processes_train_as_one_data_parallel_job(tiny_dataset, tmp_path):
    out = tmp_path / "w"
    # Two CPU processes (gloo), also on a machine with one GPU, where two processes
    # cannot each have a device of their own.
    log = run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
               *common(tiny_dataset, out, "--stage", "64to128", "--max-steps", "4")],
              env_extra={"CUDA_VISIBLE_DEVICES": ""})
    s = summary(out, "default", "64to128")
    assert s["world_size"] == 2 and s["steps"] == 4
    assert log.count("saved " + str(out / "default" / "64to128")) == 1  # saved once, by rank 0
    assert sorted(p.name for p in (out / "default").iterdir()) == ["64to128"]
    assert "2 process(es) x batch 4" in log and "12 training images" in log
    assert load_upscaler("64to128", weights=out)(Image.new("RGB", (5, 5))).size == (10, 10)
    # the GAN recipe too (with the texture term): its discriminator is a second data-parallel
    # module with its own step
    gan = tmp_path / "gan"
    log = run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29518",
               *common(tiny_dataset, gan, "--stage", "64to128", "--max-steps", "3", "--gan", "on", "--patch-size",
                       "32", "--train-batch-size", "2", "--texture-weight", "0.5", "--texture-pool", "1",
                       "--grid-weight", "100", "--grid-loss", "error")], env_extra={"CUDA_VISIBLE_DEVICES": ""})
    s = summary(gan, "default", "64to128")
    assert s["world_size"] == 2 and s["steps"] == 3 and s["perceptual"]["gan_weight"] > 0
    assert s["perceptual"]["texture_weight"] == 0.5 and "texture=" in log
    # the strict grid penalty's 64-px tile shrinks to the 32-px patch: a finite loss
    assert s["perceptual"]["grid_loss"] == "error" and "grid=nan" not in log and "grid=" in log


def test_unreadable_images_are_skipped_and_counted(tiny_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    (data / "notes.jpg").write_text("this is not an image")
    good = next(data.glob("cat*.jpg")).read_bytes()
    (data / "truncated.jpg").write_bytes(good[: len(good) // 3])
    out = tmp_path / "w"
    # the bad files are found when the photos are decoded, once, on 2 threads
    log = run([sys.executable, *common(data, out, "--stage", "64to128", "--max-steps", "2", "--train-batch-size", "4",
                                       "--val-split-size", "2", "--dataloader-num-workers", "2")])
    s = summary(out, "default", "64to128")
    assert s["steps"] == 2 and s["skipped_images"] == 2
    assert "skipped 2 unreadable image(s)" in log


def test_a_2x_stage_continues_from_given_weights(tiny_dataset, tmp_path):
    """``--init-weights`` on a 2x stage starts from that stage's weights (their layout, from
    config.json) instead of a fresh network: at a negligible learning rate, one step returns
    them unchanged."""
    first = tmp_path / "first"
    run([sys.executable, *common(tiny_dataset, first, "--stage", "64to128", "--max-steps", "2",
                                 "--arch-args", '{"num_features": 8, "num_convs": 1}')])
    out = tmp_path / "continued"
    run([sys.executable, *common(tiny_dataset, out, "--stage", "64to128", "--max-steps", "1",
                                 "--init-weights", str(first), "--learning-rate", "1e-9")])
    before = load_file(first / "default" / "64to128" / "model.safetensors")
    after = load_file(out / "default" / "64to128" / "model.safetensors")
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)
    cfg = json.loads((out / "default" / "64to128" / "config.json").read_text())
    assert (cfg["num_features"], cfg["num_convs"]) == (8, 1) and cfg["training"]["init_weights"] == os.path.relpath(first, ROOT)
    # the record of the run it continued travels with it: the model card lists both commands
    earlier = json.loads((first / "default" / "64to128" / "config.json").read_text())["training"]
    assert cfg["training"]["continues"] == earlier
    card = (out / "README.md").read_text()
    assert card.count("| default | 64to128 | ResidualUpsampler |") == 2 and earlier["command"] in card
    # the layout comes with the weights: a second layout beside them is refused
    p = subprocess.run([sys.executable, SCRIPT, "--stage", "64to128", "--init-weights", str(first),
                        "--arch-args", '{"num_convs": 2}'], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "--arch-args and --init-weights" in p.stderr


def test_bad_arguments_are_clear(tmp_path):
    p = subprocess.run([sys.executable, SCRIPT, "--push-to-hub"], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "--hub-model-id" in p.stderr
    p = subprocess.run([sys.executable, SCRIPT, "--stage", "64to512", "--train-data-dir", str(tmp_path),
                        "--output-dir", str(tmp_path / "w")], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode != 0


def test_the_default_source_is_the_cat_half_of_a_hub_dataset(tiny_dataset, tmp_path):
    """With no data arguments the script loads ``microsoft/cats_vs_dogs`` through
    ``datasets.load_dataset`` and keeps ``labels == 0``. Here that repo, in the same layout
    (parquet with ``image`` and ``labels``), is served by the local Hub-compatible server."""
    import datasets

    cats = [{"bytes": f.read_bytes(), "path": None} for f in sorted(tiny_dataset.glob("*.jpg"))[:10]]
    dogs = []
    for i in range(6):  # unmistakable: flat grey squares, 40 px (a cat photo is >= 256 px)
        buf = io.BytesIO()
        Image.new("RGB", (40, 40), (90 + i, 90, 90)).save(buf, "JPEG")
        dogs.append({"bytes": buf.getvalue(), "path": None})
    features = datasets.Features({"image": datasets.Image(), "labels": datasets.ClassLabel(names=["cat", "dog"])})
    rows = datasets.Dataset.from_dict({"image": cats + dogs, "labels": [0] * len(cats) + [1] * len(dogs)},
                                      features=features)
    parquet = io.BytesIO()
    rows.to_parquet(parquet)
    hub, url, server = serve()
    try:
        hub.create("microsoft/cats_vs_dogs")
        hub.commit("microsoft/cats_vs_dogs", "main", {"data/train-00000-of-00001.parquet": parquet.getvalue()})
        out = tmp_path / "w"
        args = [a for a in common("unused", out, "--stage", "64to128", "--max-steps", "2", "--val-split-size", "2")]
        i = args.index("--train-data-dir")
        del args[i:i + 2]  # no data arguments at all: the default source
        log = run([sys.executable, *args], env_extra={"HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0",
                                                      "HF_ENDPOINT": url, "HF_HOME": str(tmp_path / "hf"),
                                                      "HF_HUB_DISABLE_XET": "1"})
    finally:
        server.shutdown()
    assert "8 training images, 2 validation" in log  # 10 cats, 2 held out; no dog
    assert summary(out, "default", "64to128")["steps"] == 2


def test_a_run_with_branches_ships_the_plain_network(tiny_dataset, tmp_path):
    """--arch-args '{"train_branches": true}': the checkpoints hold the branches (resume is
    exact), the shipped weights are the folded plain network that serving loads."""
    out = tmp_path / "w"
    run([sys.executable, *common(tiny_dataset, out, "--stage", "64to128", "--max-steps", "2",
                                 "--arch-args", '{"num_features": 8, "num_convs": 2, "train_branches": true}')])
    weights = load_file(out / "default" / "64to128" / "model.safetensors")
    assert "body.2.weight" in weights and not any("parametrizations" in k for k in weights)
    cfg = json.loads((out / "default" / "64to128" / "config.json").read_text())
    assert cfg["num_features"] == 8 and cfg["num_convs"] == 2 and not cfg.get("train_branches")
    ckpt = load_file(out / "checkpoints" / "default" / "64to128" / "checkpoint-2" / "model.safetensors")
    assert any("one_by_one" in k for k in ckpt)
    assert load_upscaler("64to128", weights=out)(Image.new("RGB", (7, 5))).size == (14, 10)


def test_a_new_run_starts_a_new_learning_curve(tiny_dataset, tmp_path):
    """A second run into the same output folder (no resume) does not inherit the first
    run's curve points in metrics.jsonl, config.json or the summary."""
    out = tmp_path / "w"
    run([sys.executable, *common(tiny_dataset, out, "--stage", "64to128", "--max-steps", "3")])
    assert [c["step"] for c in summary(out, "default", "64to128")["curve"]] == [2, 3]
    run([sys.executable, *common(tiny_dataset, out, "--stage", "64to128", "--max-steps", "2", "--seed", "1")])
    assert [c["step"] for c in summary(out, "default", "64to128")["curve"]] == [2]
    lines = (out / "logs" / "default" / "64to128" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [2]


def test_a_full_disk_during_a_checkpoint_keeps_the_last_one_and_resume_finishes(tiny_dataset, tmp_path):
    """The disk fills while checkpoint-10 is written (an OSError injected into the real
    save_state): checkpoint-5 stays the latest, nothing half-written is left, the run stops
    with a message that says what to do; resuming then finishes with the weights of a run
    that was never interrupted."""
    args = ["--stage", "64to128", "--max-steps", "15", "--checkpointing-steps", "5", "--validation-steps", "1000",
            "--train-batch-size", "2"]
    ref = tmp_path / "ref"
    run([sys.executable, *common(tiny_dataset, ref, *args)])

    out = tmp_path / "full"
    train_argv = common(tiny_dataset, out, *args)[1:]  # without the script: it is imported below
    inject = f"""
import errno, sys
sys.argv = ["train_accelerate.py", *{train_argv!r}]
import accelerate, train_accelerate
real = accelerate.Accelerator.save_state
def save_state(self, output_dir=None, **kw):
    if "checkpoint-10" in str(output_dir):
        real(self, output_dir, **kw)  # part of it is written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")
    return real(self, output_dir, **kw)
accelerate.Accelerator.save_state = save_state
train_accelerate.main()
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-c", inject], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode != 0
    assert "could not write the checkpoint at step 10" in p.stderr and "No space left on device" in p.stderr
    assert "checkpoint-5, is kept" in p.stderr and "--resume-from-checkpoint latest" in p.stderr
    assert "Traceback" not in p.stderr
    ckpts = out / "checkpoints" / "default" / "64to128"
    assert sorted(d.name for d in ckpts.iterdir()) == ["checkpoint-5"]

    log = run([sys.executable, *common(tiny_dataset, out, *args, "--resume-from-checkpoint", "latest")])
    assert "checkpoint-5" in log
    a = load_file(ref / "default" / "64to128" / "model.safetensors")
    b = load_file(out / "default" / "64to128" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_the_photo_family_trains_on_degraded_inputs_from_the_clean_weights(tiny_dataset, tmp_path):
    """--model photo --init-model default: starts from the clean weights, records its
    degradations, and validates on degraded inputs (bicubic scores lower than on clean ones)."""
    clean = tmp_path / "clean"
    run([sys.executable, *common(tiny_dataset, clean, "--stage", "64to128", "--max-steps", "2")])
    out = tmp_path / "photo"
    run([sys.executable, *common(tiny_dataset, out, "--model", "photo", "--stage", "64to128", "--max-steps", "2",
                                 "--init-model", "default", "--init-weights", str(clean))])
    cfg = json.loads((out / "photo" / "64to128" / "config.json").read_text())
    t = cfg["training"]
    assert cfg["model"] == "photo" and t["degradations"] == "photo" and t["init_model"] == "default"
    assert t["val"]["psnr_bicubic"] < summary(clean, "default", "64to128")["val"]["psnr_bicubic"] - 0.5
    assert load_upscaler("64to128", model="photo", weights=out).factor == 2


def test_accumulation_trains_what_the_same_global_batch_trains(tiny_dataset, tmp_path):
    """Batch 4 x accumulation 2 against batch 8: the same samples (PairMaker keys them by
    their place in the step), the same gradients, the same learning rate at every optimizer
    step (accelerate steps the schedule once per update), so the same weights."""
    runs = {}
    for name, batch, accum in (("whole", "8", "1"), ("micro", "4", "2")):
        out = tmp_path / name
        run([sys.executable, *common(tiny_dataset, out, "--stage", "64to128", "--max-steps", "4",
                                     "--train-batch-size", batch, "--gradient-accumulation-steps", accum,
                                     "--lr-warmup-steps", "1", "--ema-decay", "0", "--validation-steps", "1000")])
        runs[name] = out / "checkpoints" / "default" / "64to128" / "checkpoint-2"
    a, b = (load_file(runs[n] / "model.safetensors") for n in ("whole", "micro"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    lrs = [torch.load(runs[n] / "scheduler.bin", weights_only=True)["_last_lr"][0] for n in ("whole", "micro")]
    # after 2 updates of 4: warm-up 1, then cosine -> 1e-3 * 0.5 * (1 + cos(pi * 1 / 3))
    assert lrs[0] == lrs[1] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi / 3)))
    s = summary(tmp_path / "micro", "default", "64to128")
    assert s["gradient_accumulation_steps"] == 2 and s["samples_seen"] == 4 * 8


def test_a_checkpoint_that_fails_on_one_process_stops_both_with_the_message(tiny_dataset, tmp_path):
    """Two processes; rank 1 cannot write its part of checkpoint-2. Both learn of it through
    one reduction and stop with the message, instead of rank 0 waiting for rank 1 in the
    next collective until the timeout (30 minutes by default)."""
    out = tmp_path / "w"
    wrapper = tmp_path / "train_with_a_failing_rank.py"
    wrapper.write_text(f"""
import errno, sys
sys.path.insert(0, {str(ROOT)!r})
import accelerate, train_accelerate
real = accelerate.Accelerator.save_state
def save_state(self, output_dir=None, **kw):
    if self.process_index == 1 and "checkpoint-2" in str(output_dir):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")
    return real(self, output_dir, **kw)
accelerate.Accelerator.save_state = save_state
train_accelerate.main()
""")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "CUDA_VISIBLE_DEVICES": ""}
    started = time.time()
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                        "29519", str(wrapper), *common(tiny_dataset, out, "--stage", "64to128", "--max-steps", "4")[1:]],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    log = p.stdout + p.stderr
    assert p.returncode != 0 and time.time() - started < 300
    assert "could not write the checkpoint at step 2" in log
    assert "Disk quota exceeded" in log  # rank 1's own reason
    assert "the write failed on 1 other process(es)" in log  # rank 0 learned of it
    assert not (out / "checkpoints" / "default" / "64to128" / "checkpoint-2.tmp").exists()


def test_the_sharp_family_trains_as_a_gan_and_resumes_exactly(tiny_dataset, tmp_path):
    """--model sharp: the GAN recipe (feature, adversarial and LDL losses, a discriminator
    with its own optimizer), recorded in config.json; the discriminator and its optimizer
    are in each checkpoint, so a run resumed half-way ends with the same weights."""
    clean = tmp_path / "clean"
    run([sys.executable, *common(tiny_dataset, clean, "--stage", "64to128", "--max-steps", "2")])
    args = ["--model", "sharp", "--stage", "64to128", "--max-steps", "6", "--patch-size", "32",
            "--train-batch-size", "2", "--checkpointing-steps", "3", "--validation-steps", "3",
            "--init-model", "default", "--init-weights", str(clean)]
    ref = tmp_path / "ref"
    log = run([sys.executable, *common(tiny_dataset, ref, *args)])
    assert "gan=" in log and "disc=" in log and "feature=" in log  # each loss shows in the progress bar
    t = json.loads((ref / "sharp" / "64to128" / "config.json").read_text())["training"]
    assert t["perceptual"]["gan_weight"] > 0 and t["perceptual"]["disc_features"] == 32
    assert t["content_scale"] == "all" and t["degradations"] == "photo"
    assert all("crisp_model" in c and "crisp_ema" in c for c in t["curve"])
    ckpt = ref / "checkpoints" / "sharp" / "64to128" / "checkpoint-3"
    assert {"model_1.safetensors", "optimizer_1.bin", "ema.safetensors"} <= {p.name for p in ckpt.iterdir()}

    out = tmp_path / "resumed"  # the same run, stopped after its checkpoint at step 3
    shutil.copytree(ref, out)
    shutil.rmtree(out / "checkpoints" / "sharp" / "64to128" / "checkpoint-6")
    shutil.rmtree(out / "sharp")
    run([sys.executable, *common(tiny_dataset, out, *args, "--resume-from-checkpoint", "latest")])
    assert summary(out, "sharp", "64to128")["resumed_from"].endswith("checkpoint-3")
    a = load_file(ref / "sharp" / "64to128" / "model.safetensors")
    b = load_file(out / "sharp" / "64to128" / "model.safetensors")
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_gan_training_refuses_a_network_in_minus_one_to_one(tiny_dataset, tmp_path):
    p = subprocess.run([sys.executable, *common(tiny_dataset, tmp_path / "w", "--model", "seed", "--gan", "on",
                                                "--max-steps", "1")],
                       capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode != 0 and "needs a network that works in [0, 1]" in p.stderr
