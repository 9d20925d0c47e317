"""Where a demo request's time goes: end to end over gradio_client against `python app.py`,
beside ``load_upscaler`` on the same image in the same run.

    python benchmarks/app_latency.py              # x2 and x8 of examples/cat.4018.jpg (276x374)
    python benchmarks/app_latency.py --rounds 21
    python benchmarks/app_latency.py --backends torch auto   # the app on each runtime, one after the other

Per scale, three calls are timed in turn, round after round (speed.py's ``interleaved``):
* ``load_upscaler``: the network on the decoded image (tiles, stitching), in this process,
  on the app's torch thread (as the handler runs it: see ``process.TorchThreads``);
* the handler, in this process (``app.upscale_by`` called directly): decode, network, the
  bilinear image, both PNGs written;
* ``/upscale_by`` end to end: the handler plus upload, queue, and the client's download of
  the files.
This machine's speed drifts by 20% or more within a minute, so the ratio end to end /
load_upscaler is taken per round, from calls made seconds apart, and its median is
reported (with its quartiles). The difference handler - load_upscaler is the request's own
file work; end to end - handler is Gradio's and the transfer's, of which the time
gradio_client spends setting up its HTTP clients is printed apart. Then the PNG writing of one
result: the app's writer (upscaler/png.py) and Pillow's at level 1. The app runs offline
(bundled weights). With ``--backends``, all of it is done once per runtime
(``UPSCALER_BACKEND``, upscaler/runtimes.py), and the app's start-up (``python app.py``
until its page answers) is timed for each.
"""
import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from speed import interleaved, ratio_quartiles, timeit  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tooling shared with the tests: starting the app

from app_process import start_app, stop_app  # noqa: E402

from upscaler import load_upscaler  # noqa: E402
from upscaler.inference import describe_device  # noqa: E402
from upscaler.pipeline import Pipeline, chain  # noqa: E402
from upscaler.png import write_png  # noqa: E402

EXAMPLE = ROOT / "examples" / "cat.4018.jpg"


def median_time(fn, repeats):
    return timeit(fn, repeats, warmup=1)  # speed.py's timer: median after warm-up


class ClientSetupTimer:
    """Seconds ``gradio_client`` spends making ``httpx`` clients. It makes a new one for the
    upload, the request, the result stream and each file it downloads, and each loads the
    CA certificates, even for http:// (about 30 ms here): a cost of the client, not of the
    demo. Measured by timing ``httpx.Client.__init__``; nothing else changes."""

    def __init__(self):
        import httpx

        self.seconds, init = 0.0, httpx.Client.__init__

        def timed(client, *args, **kwargs):
            t = time.perf_counter()
            init(client, *args, **kwargs)
            self.seconds += time.perf_counter() - t

        httpx.Client.__init__ = timed

    def timed_call(self, fn, record: list):
        """fn(), with its client set-up time appended to ``record``."""
        before = self.seconds
        fn()
        record.append(self.seconds - before)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default=str(EXAMPLE))
    ap.add_argument("--scales", nargs="+", type=int, default=[2, 8], choices=[2, 8])
    ap.add_argument("--rounds", type=int, default=11, help="timed rounds after 3 warm-up rounds")
    ap.add_argument("--port", type=int, default=7871)
    ap.add_argument("--backends", nargs="+", default=["auto"], help="UPSCALER_BACKEND values, measured in turn")
    args = ap.parse_args(argv)
    from gradio_client import Client

    img = Image.open(args.image)
    img.load()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = describe_device(device)
    os.environ["HF_HUB_OFFLINE"] = "1"
    sys.path.insert(0, str(ROOT))
    import app  # the handlers, in this process, with the same weights and settings

    setup = ClientSetupTimer()
    rows, startups = [], {}
    for backend in args.backends:
        os.environ["UPSCALER_BACKEND"] = app.BACKEND = backend
        app._server = None  # a Server on this backend for the in-process handler
        started = time.perf_counter()
        proc, url, _ = start_app(args.port, {"UPSCALER_BACKEND": backend})
        startups[backend] = time.perf_counter() - started
        try:
            client = Client(url, verbose=False, download_files=tempfile.mkdtemp())
            rows += [measure(app, client, setup, img, args, scale, backend) for scale in args.scales]
        finally:
            stop_app(proc)
    print(f"device: {name}; torch {torch.__version__}; image {Path(args.image).name}; "
          f"medians of {args.rounds} interleaved rounds")
    print()
    print("Start-up, `python app.py` until its page answers (a graph runtime's networks compile in the "
          "background after that): " + "; ".join(f"{b}: {t:.1f} s" for b, t in startups.items()))
    print()
    print("| backend | scale | in | out | load_upscaler, s | handler in process, s | /upscale_by end to end, s | "
          "ratio end to end / load_upscaler (per round: median, quartiles) | PNG write, app's writer, s | "
          "PNG write, Pillow level 1, s |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for backend, scale, size_in, size_out, t, (q1, med, q3), ours, pillow, _ in rows:
        print(f"| {backend} | x{scale} | {size_in} | {size_out} | {t['network']:.3f} | {t['handler']:.3f} | "
              f"{t['e2e']:.3f} | **{med:.2f}** ({q1:.2f}-{q3:.2f}) | {ours:.3f} | {pillow:.3f} |")
    print()
    print("Where the time goes (s, medians): network = load_upscaler; the request's files = handler - network "
          "(decode, bilinear, PNGs); Gradio and transfer = end to end - handler, of which gradio_client's "
          "own set-up of its HTTP clients (ClientSetupTimer).")
    print()
    print("| backend | scale | network | the request's files | Gradio and transfer | of which gradio_client's "
          "HTTP client set-up | end to end |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for backend, scale, _, _, t, *_, client_setup in rows:
        print(f"| {backend} | x{scale} | {t['network']:.3f} | {t['handler'] - t['network']:.3f} | "
              f"{t['e2e'] - t['handler']:.3f} | {client_setup:.3f} | {t['e2e']:.3f} |")


def measure(app, client, setup, img, args, scale, backend):
    """One scale on the running app (``client``) and in this process, on ``backend``."""
    from gradio_client import handle_file

    up = chain(*[load_upscaler(s, backend=backend) for s in Pipeline.for_scale(scale).stages])
    setup_times = []
    # On the app's torch thread, as the handler's network runs: a second thread running
    # torch here would slow both down (process.TorchThreads), flattering the ratio.
    times = interleaved({
        "network": lambda: app.server().torch.run(up, img),
        "handler": lambda: app.upscale_by(args.image, scale),
        "e2e": lambda: setup.timed_call(
            lambda: client.predict(handle_file(args.image), scale, api_name="/upscale_by"), setup_times),
    }, args.rounds)
    result = app.server().torch.run(up, img)
    ours = median_time(lambda: write_png(result, io.BytesIO()), args.rounds)
    pillow = median_time(lambda: result.save(io.BytesIO(), "PNG", compress_level=1), args.rounds)
    return (backend, scale, f"{img.width}x{img.height}", f"{result.width}x{result.height}",
            {k: statistics.median(v) for k, v in times.items()}, ratio_quartiles(times, "e2e", "network"),
            ours, pillow, statistics.median(setup_times[3:]))  # interleaved drops 3 warm-up rounds


if __name__ == "__main__":
    main()
