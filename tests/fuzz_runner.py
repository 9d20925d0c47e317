"""The fuzzing harness: seeded fuzzed files (``fuzz_files.py``) through the command line's
path in a worker process, each outcome classified. ``benchmarks/fuzz.py`` prints its table;
``test_fuzz.py`` runs it in small. What is allowed and what is forbidden: the benchmark's
docstring. Imports nothing of pytest."""
import collections
import hashlib
import multiprocessing as mp
import queue
import sys
import tempfile
import time
from pathlib import Path

import fuzz_files

HANG_SECONDS = 10
PEAK_BYTES = 2 * 2 ** 30


def own_peak_bytes() -> int:
    """This process's own peak resident memory: VmHWM, which starts afresh at exec. (A
    spawned child's ru_maxrss keeps the parent's RSS at the fork before its exec: a test
    process of 2.5 GB made every fuzz worker look that big.)"""
    import resource

    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) * 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(tasks, results):
    """Runs cases until told to stop: (path) -> (outcome, detail, peak RSS bytes so far)."""
    import warnings

    import torch

    warnings.simplefilter("ignore")  # PIL's warnings about corrupt files: the outcome is what counts

    torch.set_num_threads(1)
    from upscaler.images import DEFAULT_MAX_PIXELS, ImageRejected, check_output_size, open_checked, oriented
    from upscaler.inference import load_upscaler

    from upscaler.motion import MotionLimits, kind_of, upscale_motion

    up = load_upscaler("64to128")
    while True:
        path = tasks.get()
        if path is None:
            return
        try:
            if kind_of(path) != "still":  # an animation or a video: the engine, as the CLI runs it
                out_path = Path(path).with_name("out-" + Path(path).name)
                result = upscale_motion(path, [up], out_path, limits=MotionLimits(max_frames=200),
                                        progress=lambda done, total: results.put("progress"))
                outcome, detail = "upscaled", f"{result.frames} frames, {result.output_size}"
                out_path.unlink(missing_ok=True)
                results.put((outcome, detail, own_peak_bytes()))
                continue
            img = open_checked(path, DEFAULT_MAX_PIXELS)
            results.put("progress")  # decoded
            check_output_size(img.size, 2, 400_000_000)
            want = oriented(img).size
            out = up(img, progress=lambda done, total: results.put("progress"))
            if out.size != (want[0] * 2, want[1] * 2):
                outcome, detail = "forbidden", f"result {out.size} for an input of {want}"
            else:
                outcome, detail = "upscaled", f"{want[0]}x{want[1]}"
        except ImageRejected as e:
            message = str(e)
            person = len(message) > 10 and "Traceback" not in message
            outcome, detail = ("rejected", message) if person else ("forbidden", f"unreadable message {message!r}")
        except Exception as e:  # anything else is a bug
            outcome, detail = "forbidden", f"{type(e).__name__}: {e}"
        results.put((outcome, detail[:200], own_peak_bytes()))


class Runner:
    """One worker process, restarted after a hang."""

    def __init__(self):
        self.ctx = mp.get_context("spawn")
        self.start()

    def start(self):
        self.tasks, self.results = self.ctx.Queue(), self.ctx.Queue()
        self.proc = self.ctx.Process(target=worker, args=(self.tasks, self.results), daemon=True)
        self.proc.start()
        self.peak = 0

    def run(self, path, first=False):
        self.tasks.put(str(path))
        wait = HANG_SECONDS + (120 if first else 0)  # the first case also waits for torch and the network
        while True:
            try:
                message = self.results.get(timeout=wait)
            except queue.Empty:
                self.proc.kill()
                self.proc.join()
                self.start()
                return "forbidden", f"no progress in {HANG_SECONDS} s (hang)"
            if message != "progress":
                break
            wait = HANG_SECONDS
        outcome, detail, peak = message
        grew = peak > self.peak
        self.peak = max(self.peak, peak)
        if grew and peak > PEAK_BYTES:
            return "forbidden", f"peak memory {peak / 2 ** 30:.2f} GB ({outcome}: {detail})"
        return outcome, detail

    def close(self):
        self.tasks.put(None)
        self.proc.join(10)


def fuzz(cases: int, first: int = 0, progress=True, motion: bool = False) -> dict:
    """``cases`` seeded stills (``fuzz_files.case``), or animations and videos with ``motion``
    (``fuzz_files.motion_case``), each through the worker."""
    make = fuzz_files.motion_case if motion else fuzz_files.case
    counts, forbidden, by_format = collections.Counter(), [], collections.Counter()
    runner = Runner()
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="upscaler-fuzz-") as folder:
        for k, seed in enumerate(range(first, first + cases)):
            name, data, what = make(seed)
            path = Path(folder) / name
            path.write_bytes(data)
            digest = hashlib.sha256(data).hexdigest()
            outcome, detail = runner.run(path, first=k == 0)
            if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                outcome, detail = "forbidden", "the input file was changed"
            counts[outcome] += 1
            by_format[(path.suffix, outcome)] += 1
            if outcome == "forbidden":
                forbidden.append({"seed": seed, "file": name, "mutation": what, "detail": detail})
            path.unlink()
            if progress and (k + 1) % 100 == 0:
                print(f"  {k + 1}/{cases}: {dict(counts)}", file=sys.stderr, flush=True)
    runner.close()
    return {"cases": cases, "first": first, "counts": dict(counts), "forbidden": forbidden,
            "by_format": {f"{fmt} {o}": n for (fmt, o), n in sorted(by_format.items())},
            "seconds": round(time.time() - t0, 1)}
