"""Fuzzed image files through the command line's path: ``images.open_checked`` + ``Upscaler``.

    python benchmarks/fuzz.py                    # 2,000 seeded cases (a few minutes on 2 cores)
    python benchmarks/fuzz.py --cases 100 --first 0

Each case (``tests/fuzz_files.py``: a small valid PNG, JPEG, GIF, WebP, TIFF or BMP,
mutated) is written to a file and run in a worker process, as the CLI runs a file:
open_checked -> check_output_size -> the 64to128 network. Allowed outcomes:

* ``upscaled``: a result of twice the (oriented) input's size;
* ``rejected``: ``ImageRejected`` with a message for a person.

Forbidden, and counted as failures: any other exception; a hang, i.e. 10 s without
progress (the worker reports each decoded file and each finished tile: a header that
declares 65535 x 29 pixels over a tiny body decodes to a real 1.9 MP image, whose
upscaling takes seconds of honest work; the worker is killed and restarted after a hang);
the worker's peak memory passing 2 GB during the case; the input file changed. Prints counts by outcome and every forbidden case; exits 1 if
there was one.
"""
import argparse
import collections
import hashlib
import multiprocessing as mp
import queue
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

HANG_SECONDS = 10
PEAK_BYTES = 2 * 2 ** 30


def worker(tasks, results):
    """Runs cases until told to stop: (path) -> (outcome, detail, peak RSS bytes so far)."""
    import resource
    import warnings

    import torch

    warnings.simplefilter("ignore")  # PIL's warnings about corrupt files: the outcome is what counts

    torch.set_num_threads(1)
    from upscaler.images import DEFAULT_MAX_PIXELS, ImageRejected, check_output_size, open_checked, oriented
    from upscaler.inference import load_upscaler

    up = load_upscaler("64to128")
    while True:
        path = tasks.get()
        if path is None:
            return
        try:
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
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
        results.put((outcome, detail[:200], peak))


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


def fuzz(cases: int, first: int = 0, progress=True) -> dict:
    import fuzz_files

    counts, forbidden, by_format = collections.Counter(), [], collections.Counter()
    runner = Runner()
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="upscaler-fuzz-") as folder:
        for k, seed in enumerate(range(first, first + cases)):
            name, data, what = fuzz_files.case(seed)
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--first", type=int, default=0, help="first seed")
    args = ap.parse_args(argv)
    r = fuzz(args.cases, args.first)
    print(f"{r['cases']} fuzzed files (seeds {r['first']}..{r['first'] + r['cases'] - 1}) through open_checked + "
          f"Upscaler (64to128) in {r['seconds']} s")
    print()
    print("| outcome | cases |")
    print("|---|---:|")
    for outcome in ("upscaled", "rejected", "forbidden"):
        print(f"| {outcome} | {r['counts'].get(outcome, 0)} |")
    print()
    print("| format | upscaled | rejected | forbidden |")
    print("|---|---:|---:|---:|")
    for fmt in sorted({k.split()[0] for k in r["by_format"]}):
        cells = [str(r["by_format"].get(f"{fmt} {o}", 0)) for o in ("upscaled", "rejected", "forbidden")]
        print(f"| {fmt} | " + " | ".join(cells) + " |")
    for f in r["forbidden"]:
        print(f"FORBIDDEN seed {f['seed']} ({f['file']}, {f['mutation']}): {f['detail']}")
    return 1 if r["forbidden"] else 0


if __name__ == "__main__":
    sys.exit(main())
