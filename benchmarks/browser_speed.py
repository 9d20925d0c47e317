"""Browser mode against the server: time and bytes for 2x and 8x of the 276x374 example.

    python benchmarks/browser_speed.py               # default model, 3 runs each after a warm-up
    python benchmarks/browser_speed.py --model seed --runs 5

Starts ``python app.py`` offline, drives headless Chromium (Debian's ``chromium``) with
Playwright on the page's WebAssembly back end (``?backend=wasm``), and prints per scale:
* browser: press -> result on screen, and -> download ready (the PNG made in the page);
  the network's own share; threads (2 when the page is cross-origin isolated, else 1);
* server: ``load_upscaler`` in this process (the network) and ``/upscale_by`` end to end
  over ``gradio_client``;
* bytes that cross the network for the result: the ONNX file(s) for the browser (the
  runtime's own files are not counted: a browser caches them), the two PNGs of the slider
  (bilinear and learned) for the server.
Medians of ``--runs`` runs after one warm-up run (which loads and compiles the runtime).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tooling shared with the tests: starting the app, driving the page

from app_process import start_app, stop_app  # noqa: E402
from browser_page import CHROMIUM, CHROMIUM_ARGS, open_page, upscale_in_page  # noqa: E402

from upscaler.inference import describe_device  # noqa: E402
from upscaler.models import FAMILIES  # noqa: E402
from upscaler.pipeline import Pipeline, chain  # noqa: E402
from upscaler import load_upscaler  # noqa: E402

EXAMPLE = ROOT / "examples" / "cat.4018.jpg"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default=str(EXAMPLE))
    ap.add_argument("--model", default="default", choices=list(FAMILIES))
    ap.add_argument("--scales", nargs="+", type=int, default=[2, 8], choices=[2, 8])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--port", type=int, default=7873)
    args = ap.parse_args(argv)
    from gradio_client import Client, handle_file
    from playwright.sync_api import sync_playwright

    img = Image.open(args.image)
    img.load()
    device = describe_device("cuda" if torch.cuda.is_available() else "cpu")
    proc, url, _ = start_app(args.port)
    rows = []
    try:
        client = Client(url, verbose=False, download_files=tempfile.mkdtemp())
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = open_page(browser, url)
            isolated = page.evaluate("() => self.crossOriginIsolated")
            webgpu = page.evaluate("async () => navigator.gpu ? ((await navigator.gpu.requestAdapter()) ? "
                                   "'an adapter' : 'no adapter') : 'no navigator.gpu'")
            for scale in args.scales:
                runs = [upscale_in_page(page, args.image, scale, args.model) for _ in range(args.runs + 1)]
                failed = [r.get("error") for r in runs if not r.get("ok")]
                if failed:
                    raise SystemExit(f"browser mode failed: {failed[0]}")
                warm = runs[1:]
                up = chain(*[load_upscaler(s, model=args.model) for s in Pipeline.for_scale(scale).stages])
                up(img)  # warm-up
                network, e2e, png_bytes = [], [], 0
                for _ in range(args.runs):
                    t = time.perf_counter()
                    up(img)
                    network.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    (bilinear, learned), _download = client.predict(handle_file(args.image), scale, args.model,
                                                                    api_name="/upscale_by")
                    e2e.append(time.perf_counter() - t)
                    png_bytes = os.path.getsize(bilinear) + os.path.getsize(learned)
                med = lambda key: statistics.median(r[key] for r in warm)  # noqa: E731
                rows.append(dict(scale=scale, out=f"{warm[0]['width']}x{warm[0]['height']}", backend=warm[0]["backend"],
                                 first=runs[0]["shown_seconds"], shown=med("shown_seconds"), ready=med("seconds"),
                                 bnet=med("network_seconds"), model_bytes=warm[0]["model_bytes"],
                                 network=statistics.median(network), e2e=statistics.median(e2e), png_bytes=png_bytes))
            browser.close()
    finally:
        stop_app(proc)
    print(f"machine: {device}; torch {torch.__version__}; Chromium headless, WebAssembly back end, page "
          f"cross-origin isolated: {isolated}; model {args.model}; image {Path(args.image).name} "
          f"({img.width}x{img.height}); medians of {args.runs} runs after a warm-up run")
    print()
    print("| scale | out | browser: result shown, s | browser: download ready, s | browser: network part, s | "
          "browser back end | server: network, s | server: /upscale_by end to end, s | browser / server end to end | "
          "bytes for the result, browser (ONNX) | bytes for the result, server (PNGs) |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| x{r['scale']} | {r['out']} | {r['shown']:.2f} | {r['ready']:.2f} | {r['bnet']:.2f} | {r['backend']} | "
              f"{r['network']:.2f} | {r['e2e']:.2f} | **{r['shown'] / r['e2e']:.1f}** | "
              f"{r['model_bytes'] / 1e6:.2f} MB | {r['png_bytes'] / 1e6:.2f} MB |")
    print()
    print(f"WebGPU in this headless Chromium: {webgpu} (the page would use WebGPU where there is an adapter).")
    print()
    print("First run (loads and compiles onnxruntime-web's WebAssembly, then as above), result shown: "
          + ", ".join(f"x{r['scale']} {r['first']:.2f} s" for r in rows) + ".")


if __name__ == "__main__":
    main()
