"""Helpers the test modules share: run the CLI, the training script and the app as a
user would (subprocesses), and wait for them."""
import contextlib
import os
import socket
import subprocess
import sys

from app_process import start_app, stop_app
from conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(env_extra=None, timeout=120):
    """``python app.py`` on a free port for the ``with`` block: -> (url, process, log)."""
    port = free_port()
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"app-{port}.log"), "w+")
    # The in-process tests set HF_HUB_OFFLINE=1; a test that wants the Hub passes it in env_extra.
    env = {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "0"), **(env_extra or {})}
    proc, url, log = start_app(port, env, log, timeout)
    try:
        yield url, proc, log
    finally:
        stop_app(proc)
        log.close()


def app_log(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()


# ------------------------------------------------------------------ subprocesses
TRAIN_SCRIPT = str(ROOT / "train_accelerate.py")
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no"]


def train_args(data, out, *extra):
    """train_accelerate.py with tiny settings: 4 held-out images, batch 4, validate and
    checkpoint every 2 steps."""
    return [TRAIN_SCRIPT, "--train-data-dir", str(data), "--output-dir", str(out), "--val-split-size", "4",
            "--num-val-images", "2", "--train-batch-size", "4", "--cache-dir", str(out / "hf-cache"),
            "--validation-steps", "2", "--checkpointing-steps", "2", *extra]


def run_ok(cmd, env_extra=None, **kw) -> str:
    """Run a command offline with one CPU thread; assert it succeeds; -> stdout + stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           **(env_extra or {})}
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, **kw)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p.stdout + p.stderr


def cli(*args, **kw) -> subprocess.CompletedProcess:
    """``python -m upscaler ARGS`` from the repository root."""
    return subprocess.run([sys.executable, "-m", "upscaler", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, **kw)


# One family per network class pair: a test of what an architecture does (shapes, tiling,
# dtypes, export) need not repeat for families that differ only in their weights (photo and
# sharp are the default's classes).
def _one_per_architecture():
    from upscaler.models import FAMILIES

    first = {}
    for name, family in FAMILIES.items():
        first.setdefault((family.two_x, family.eight_x), name)
    return list(first.values())


ONE_PER_ARCHITECTURE = _one_per_architecture()
