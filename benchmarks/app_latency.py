"""Where a demo request's time goes: end to end over gradio_client against `python app.py`,
beside ``load_upscaler`` on the same image in the same run.

    python benchmarks/app_latency.py              # x2 and x8 of examples/cat.4018.jpg (276x374)
    python benchmarks/app_latency.py --repeats 5

Rows, per scale, and where the time goes:
* ``load_upscaler``: the network on the decoded image (tiles, stitching), in this process;
* the handler, in this process (``app.upscale_by`` called directly): decode, network, the
  bilinear image, both PNGs written;
* ``/upscale_by`` end to end: the handler plus upload, queue, Gradio's copy into its cache,
  and the client's download of the files;
* the PNG encoding of one result at the app's setting and at PIL's default.
The ratio end-to-end / load_upscaler is the overhead a user pays beyond the network; the
difference handler - load_upscaler is the request's own file work, end to end - handler is
Gradio's and the transfer's. Medians of ``--repeats`` runs after one warm-up. The app runs
offline (bundled weights).
"""
import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import torch
from PIL import Image
from speed import timeit  # benchmarks/ is on sys.path when a benchmark runs as a script

from upscaler import load_upscaler
from upscaler.inference import describe_device
from upscaler.images import PNG_COMPRESS_LEVEL

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cat.4018.jpg"
STAGE_FOR = {2: "64to128", 8: "64to512"}


def median_time(fn, repeats):
    return timeit(fn, repeats, warmup=1)  # speed.py's timer: median after warm-up


def start_app(port, env_extra=None, log=None):
    """``python app.py`` offline on ``port`` (``env_extra`` on top of this environment), its
    output into ``log`` (a temporary file by default); -> (process, url, log) once it answers.
    The benchmarks that talk to a running app (this one, soak.py) start it here."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1", **(env_extra or {})}
    log = log or tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url, log
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                log.seek(0)
                raise RuntimeError("app did not start:\n" + log.read()[-3000:])
            time.sleep(0.5)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default=str(EXAMPLE))
    ap.add_argument("--scales", nargs="+", type=int, default=[2, 8], choices=[2, 8])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--port", type=int, default=7871)
    args = ap.parse_args(argv)
    from gradio_client import Client, handle_file

    img = Image.open(args.image)
    img.load()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = describe_device(device)
    os.environ["HF_HUB_OFFLINE"] = "1"
    sys.path.insert(0, str(ROOT))
    import app  # the handlers, in this process, with the same weights and settings

    proc, url, _ = start_app(args.port)
    rows = []
    try:
        client = Client(url, verbose=False, download_files=tempfile.mkdtemp())
        for scale in args.scales:
            up = load_upscaler(STAGE_FOR[scale])
            direct = median_time(lambda: up(img), args.repeats)
            result = up(img)
            handler = median_time(lambda: app.upscale_by(args.image, scale), args.repeats)
            e2e = median_time(lambda: client.predict(handle_file(args.image), scale, api_name="/upscale_by"),
                              args.repeats)

            def encode(level):
                return lambda: result.save(io.BytesIO(), "PNG", compress_level=level)

            rows.append((scale, f"{img.width}x{img.height}", f"{result.width}x{result.height}", direct, handler, e2e,
                         median_time(encode(PNG_COMPRESS_LEVEL), args.repeats), median_time(encode(6), args.repeats)))
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"device: {name}; torch {torch.__version__}; image {Path(args.image).name}; "
          f"median of {args.repeats}")
    print()
    print(f"| scale | in | out | load_upscaler, s | handler in process, s | /upscale_by end to end, s | ratio | "
          f"PNG encode level {PNG_COMPRESS_LEVEL} (app), s | PNG encode level 6 (PIL default), s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for scale, size_in, size_out, direct, handler, e2e, fast, default in rows:
        print(f"| x{scale} | {size_in} | {size_out} | {direct:.3f} | {handler:.3f} | {e2e:.3f} | {e2e / direct:.2f} | "
              f"{fast:.3f} | {default:.3f} |")
    print()
    print("Where the time goes (s): network = load_upscaler; the request's files = handler - network "
          "(decode, bilinear, PNGs); Gradio and transfer = end to end - handler.")
    print()
    print("| scale | network | the request's files | Gradio and transfer | end to end |")
    print("|---|---:|---:|---:|---:|")
    for scale, _, _, direct, handler, e2e, *_ in rows:
        print(f"| x{scale} | {direct:.3f} | {handler - direct:.3f} | {e2e - handler:.3f} | {e2e:.3f} |")


if __name__ == "__main__":
    main()
