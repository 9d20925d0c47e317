"""Soak: a public demo under many requests. Does it stay up, answer, and keep its memory,
file descriptors, threads and disk in bounds?

    python benchmarks/soak.py                         # 500 requests, 8 clients (~10 min, 2 cores)
    python benchmarks/soak.py --requests 60 --clients 4 --warmup 30 --sample-every 1   # the test's version

It starts ``python app.py`` as a subprocess (offline, bundled weights, a private temporary
folder so that its output folder and Gradio's cache can be measured) and sends
``--requests`` requests through ``gradio_client`` from ``--clients`` threads, each with
its own client. The mix is seeded:

* ``/upscale_by`` at 2x, 4x and 8x, ``/upscale``, ``/compare`` and ``/upscale_batch``
  (2-3 files), with every model (the photo model at denoise strength 1 and 0.5), on
  small crops of the example photos;
* about 10% hostile files (``tests/hostile_files.py``: text, truncated, a decompression
  bomb, 1x1, CMYK, 16-bit, palette, animated, alpha, EXIF-rotated...). Each must end as
  its expected result or its expected message for a person.

Every ``--sample-every`` seconds it samples the server process: RSS, open file
descriptors, threads, and the size and file count of the app's output folder and of
Gradio's cache. It prints per endpoint the count, p50 and p95 latency and errors by
kind; the hostile files' refusals; RSS after warm-up and at the end; the largest disk use.
Exit status 1 when a target is missed:
* no unexpected error;
* RSS at the end <= 1.15 x RSS after the warm-up requests;
* file descriptors and threads flat (at the end <= after warm-up + a small slack);
* disk use bounded: the app serves results from its own folder and removes them after
  OUTPUT_TTL (1200 s); Gradio's cache (uploads) drops files older than ``delete_cache``'s
  age (see app.py); a soak shorter than those shows the growth rates, from which the
  bound follows.
"""
import argparse
import collections
import json
import os
import queue
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # hostile_files and starting the app live with the tests

import psutil  # noqa: E402
from app_process import start_app, stop_app  # noqa: E402
from PIL import Image  # noqa: E402

from upscaler.process import CACHE_TTL_S, OUTPUT_TTL_S  # noqa: E402  the app's defaults

MODELS = [("default", 1.0), ("photo", 1.0), ("photo", 0.5), ("seed", 1.0)]


# ----------------------------------------------------------------------- inputs
def make_inputs(folder: Path, rng: random.Random):
    """Small crops of the example photos (so a request takes well under a second), and the
    hostile files -> (normal file paths, {hostile path: expectation})."""
    import hostile_files

    normal = []
    for i, photo in enumerate(sorted((ROOT / "examples").glob("*.jpg"))):
        img = Image.open(photo).convert("RGB")
        for j, (w, h) in enumerate([(96, 80), (120, 100), (64, 64)]):
            x, y = rng.randrange(img.width - w), rng.randrange(img.height - h)
            path = folder / f"crop-{i}-{j}.jpg"
            img.crop((x, y, x + w, y + h)).save(path, quality=85)
            normal.append(str(path))
    from motion_files import animation, clip

    motion = [str(animation(folder / "anim.gif", "GIF", n=4, size=(48, 40))),
              str(clip(folder / "clip.mp4", n=6, size=(48, 40)))]
    hostile_dir = folder / "hostile"
    hostile_dir.mkdir()
    cases = hostile_files.make(hostile_dir, big=False)
    (hostile_dir / "damaged.mp4").write_bytes(Path(motion[1]).read_bytes()[:600])  # a clip cut short
    hostile = {str(hostile_dir / name): expect for name, expect in cases.items()}
    hostile[str(hostile_dir / "damaged.mp4")] = ("error", "Cannot use this file")
    return normal + motion, hostile


def make_jobs(n, normal, hostile, rng: random.Random):
    """n jobs: (endpoint, args, kwargs, expectation or None). The first ones visit every
    kind of request with every model once (what the server caches, it caches during the
    warm-up); the rest are drawn at random."""
    jobs = []
    kinds = ["by2", "by4", "by8", "upscale", "compare", "batch", "video"]
    stills = [p for p in normal if p.endswith(".jpg")]
    motion = [p for p in normal if not p.endswith(".jpg")]
    tour = [(k, m) for k in kinds for m in range(len(MODELS))]
    for i in range(n):
        model, strength = MODELS[tour[i][1] if i < len(tour) else i % len(MODELS)]
        if i >= len(tour) and rng.random() < 0.10:
            path, expect = rng.choice(sorted(hostile.items()))
            endpoint = "/upscale_video" if path.endswith(".mp4") else "/upscale_by"
            jobs.append((endpoint, (path, 2), {"model": model, "denoise_strength": strength}, expect))
            continue
        kind = tour[i][0] if i < len(tour) else rng.choice(kinds)
        path = rng.choice(stills)
        if kind == "video":
            jobs.append(("/upscale_video", (rng.choice(motion), 2), {"model": model, "denoise_strength": strength},
                         None))
            continue
        if kind.startswith("by"):
            jobs.append(("/upscale_by", (path, int(kind[2])), {"model": model, "denoise_strength": strength}, None))
        elif kind == "upscale":
            stage = rng.choice(["64to128", "128to256", "256to512"])
            jobs.append(("/upscale", (path, stage), {"model": model, "denoise_strength": strength}, None))
        elif kind == "compare":
            jobs.append(("/compare", (path, "64to128"),
                         {"model": model, "condition": rng.choice(["clean", "jpeg50"])}, None))
        else:
            files = rng.sample(stills, rng.choice([2, 3]))
            jobs.append(("/upscale_batch", (files, 2), {"model": model, "denoise_strength": strength}, None))
    return jobs


# ------------------------------------------------------------------------ server
def start_soak_app(workdir: Path, port: int, ttl_env=None):
    """The app with its output folder and Gradio's cache inside ``workdir`` (to measure them)."""
    env = {**(ttl_env or {}), "TMPDIR": str(workdir), "GRADIO_TEMP_DIR": str(workdir / "gradio"),
           "UPSCALER_MAX_QUEUE": "64"}
    return start_app(port, env, open(workdir / "app.log", "w+"))


def folder_use(paths) -> tuple:
    """(bytes, files) under the given folders."""
    size = files = 0
    for root in paths:
        for dirpath, _, names in os.walk(root):
            for name in names:
                try:
                    size += os.stat(os.path.join(dirpath, name)).st_size
                    files += 1
                except FileNotFoundError:  # removed by the server meanwhile
                    pass
    return size, files


def sample(proc: psutil.Process, workdir: Path, done: int, t0: float) -> dict:
    outputs = list(workdir.glob("upscaler-outputs-*"))
    out_bytes, out_files = folder_use(outputs)
    cache_bytes, cache_files = folder_use([workdir / "gradio"])
    return {"t": round(time.time() - t0, 1), "done": done, "rss_mb": proc.memory_info().rss / 2 ** 20,
            "fds": proc.num_fds(), "threads": proc.num_threads(), "outputs_mb": out_bytes / 2 ** 20,
            "outputs_files": out_files, "cache_mb": cache_bytes / 2 ** 20, "cache_files": cache_files}


# ------------------------------------------------------------------------ checks
def check_result(endpoint, args, result):
    """A normal request's result: the right sizes. -> None or a problem."""
    if endpoint in ("/upscale_by", "/upscale"):
        (_, learned), download = result
        w, h = Image.open(args[0]).size
        f = args[1] if endpoint == "/upscale_by" else 2
        if Image.open(download).size != (w * f, h * f):
            return f"wrong size {Image.open(download).size}"
    elif endpoint == "/compare":
        if Image.open(result[1]).size != (128, 128):
            return "wrong compare size"
    elif endpoint == "/upscale_video":
        frames = count_frames(args[0])
        if count_frames(result[0]) != frames:
            return f"{count_frames(result[0])} frames for {frames}"
    elif endpoint == "/upscale_batch":
        import zipfile

        with zipfile.ZipFile(result[0]) as z:
            if len(z.namelist()) != len(args[0]):
                return f"{len(z.namelist())} results for {len(args[0])} files"
    return None


def count_frames(path) -> int:
    if str(path).endswith(".mp4"):
        import av

        with av.open(str(path)) as c:
            return sum(1 for _ in c.decode(video=0))
    return Image.open(path).n_frames


def check_hostile(expect, result, error):
    """A hostile file: its expected result, or its expected message. -> None or a problem."""
    if error is not None and ("Traceback" in error or 'File "' in error):
        return "a traceback reached the client"
    if expect[0] == "error":
        return None if error and expect[1] in error else f"expected a message with {expect[1]!r}, got {error!r}"
    if error is not None:
        return f"expected a result, got {error!r}"
    (_, learned), download = result
    w, h = expect[2]
    out = Image.open(download)
    return None if out.size == (2 * w, 2 * h) else f"wrong size {out.size}"


# -------------------------------------------------------------------------- main
def soak(requests=500, clients=8, warmup=50, sample_every=10.0, seed=0, port=7873, output_ttl=None, cache_ttl=None,
         settle=0.0):
    from gradio_client import Client, handle_file

    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="upscaler-soak-"))
    inputs = workdir / "inputs"
    inputs.mkdir()
    normal, hostile = make_inputs(inputs, rng)
    jobs = make_jobs(requests, normal, hostile, rng)
    ttl_env = {k: str(v) for k, v in (("UPSCALER_OUTPUT_TTL", output_ttl), ("UPSCALER_CACHE_TTL", cache_ttl))
               if v is not None}
    proc, url, log = start_soak_app(workdir, port, ttl_env)
    server = psutil.Process(proc.pid)
    todo = queue.Queue()
    for i, job in enumerate(jobs):
        todo.put((i, job))
    records, samples, lock = [], [], threading.Lock()
    t0 = time.time()
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            with lock:
                done = len(records)
            samples.append(sample(server, workdir, done, t0))
            stop.wait(sample_every)

    def client_loop():
        client = Client(url, verbose=False, download_files=str(workdir / "downloads"))
        while True:
            try:
                i, (endpoint, args, kwargs, expect) = todo.get_nowait()
            except queue.Empty:
                return
            send = [handle_file(a) if isinstance(a, str) and os.path.isfile(a) else
                    [handle_file(p) for p in a] if isinstance(a, list) else a for a in args]
            t = time.perf_counter()
            try:
                result, error = client.predict(*send, **kwargs, api_name=endpoint), None
            except Exception as e:  # gradio_client raises AppError with the server's message
                result, error = None, f"{type(e).__name__}: {e}"
            latency = time.perf_counter() - t
            if expect is not None:
                problem = check_hostile(expect, result, error)
                kind = "hostile"
            else:
                problem = error or check_result(endpoint, args, result)
                kind = "normal"
            with lock:
                records.append({"i": i, "endpoint": endpoint, "kind": kind, "latency": latency,
                                "problem": problem, "refusal": error if expect is not None else None,
                                "file": Path(args[0]).name if isinstance(args[0], str) else None})

    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    stop.set()
    watcher.join()
    samples.append(sample(server, workdir, len(records), t0))
    settled = None
    if settle:  # quiet for a while, then one request: what the TTLs leave on disk
        time.sleep(settle)
        Client(url, verbose=False, download_files=str(workdir / "downloads")).predict(
            handle_file(normal[0]), 2, api_name="/upscale_by")
        settled = sample(server, workdir, len(records), t0)
    alive = proc.poll() is None
    stop_app(proc, 15)
    log.close()
    report = summarise(records, samples, warmup, time.time() - t0, alive, requests, clients)
    report["output_ttl"], report["cache_ttl"] = output_ttl or OUTPUT_TTL_S, cache_ttl or CACHE_TTL_S
    report["settled"], report["settle_s"] = settled, settle
    shutil.rmtree(workdir, ignore_errors=True)
    return report


def summarise(records, samples, warmup, wall, alive, requests, clients):
    by_endpoint = collections.defaultdict(list)
    for r in records:
        by_endpoint[r["endpoint"] + (" (hostile)" if r["kind"] == "hostile" else "")].append(r)
    rows = []
    for name, rs in sorted(by_endpoint.items()):
        lat = sorted(r["latency"] for r in rs)
        errors = collections.Counter((r["problem"] or "")[:60] for r in rs if r["problem"])
        rows.append({"endpoint": name, "count": len(rs), "p50": statistics.median(lat),
                     "p95": lat[min(len(lat) - 1, int(0.95 * len(lat)))], "errors": dict(errors)})
    after = next((s for s in samples if s["done"] >= warmup), samples[-1])
    end = samples[-1]
    refusals = collections.Counter((r["file"], (r["refusal"] or "result")[:90]) for r in records
                                   if r["kind"] == "hostile")
    unexpected = sum(1 for r in records if r["problem"])
    report = {
        "requests": len(records), "asked": requests, "clients": clients, "wall_s": round(wall, 1),
        "server_alive": alive, "unexpected_errors": unexpected, "endpoints": rows,
        "hostile": [{"file": f, "outcome": o, "count": c} for (f, o), c in sorted(refusals.items())],
        "after_warmup": after, "end": end,
        "max_outputs_mb": max(s["outputs_mb"] for s in samples), "max_cache_mb": max(s["cache_mb"] for s in samples),
        "max_files": max(s["outputs_files"] + s["cache_files"] for s in samples), "samples": samples,
    }
    report["targets"] = {
        "no unexpected errors": unexpected == 0 and alive and len(records) == requests,
        "RSS at the end <= 1.15 x after warm-up": end["rss_mb"] <= 1.15 * after["rss_mb"],
        "file descriptors flat (<= after warm-up + 8)": end["fds"] <= after["fds"] + 8,
        "threads flat (<= after warm-up + 4)": end["threads"] <= after["threads"] + 4,
    }
    return report


def print_report(r):
    import torch

    from upscaler.inference import describe_device

    print(f"soak: {r['requests']} of {r['asked']} requests from {r['clients']} clients in {r['wall_s']} s; "
          f"{describe_device('cpu')}; torch {torch.__version__}; server alive at the end: {r['server_alive']}")
    print()
    print("| endpoint | count | p50, s | p95, s | errors by kind |")
    print("|---|---:|---:|---:|---|")
    for e in r["endpoints"]:
        errors = "; ".join(f"{k} x{v}" for k, v in e["errors"].items()) or "none"
        print(f"| {e['endpoint']} | {e['count']} | {e['p50']:.2f} | {e['p95']:.2f} | {errors} |")
    print()
    print("Hostile files (each checked against its expected result or message):")
    print()
    print("| file | outcome | count |")
    print("|---|---|---:|")
    for h in r["hostile"]:
        print(f"| {h['file']} | {h['outcome'].replace('|', '/')} | {h['count']} |")
    a, e = r["after_warmup"], r["end"]
    print()
    print("| server | after warm-up | at the end |")
    print("|---|---:|---:|")
    print(f"| requests done | {a['done']} | {e['done']} |")
    print(f"| RSS, MB | {a['rss_mb']:.0f} | {e['rss_mb']:.0f} ({e['rss_mb'] / a['rss_mb']:.2f}x) |")
    print(f"| open file descriptors | {a['fds']} | {e['fds']} |")
    print(f"| threads | {a['threads']} | {e['threads']} |")
    print(f"| app output folder, MB / files | {a['outputs_mb']:.1f} / {a['outputs_files']} | "
          f"{e['outputs_mb']:.1f} / {e['outputs_files']} |")
    print(f"| Gradio cache, MB / files | {a['cache_mb']:.1f} / {a['cache_files']} | "
          f"{e['cache_mb']:.1f} / {e['cache_files']} |")
    print()
    # MB/s while nothing had expired yet (upper bounds on the rates)
    out_rate = max(x["outputs_mb"] for x in r["samples"]) / max(r["wall_s"], 1)
    cache_rate = max(x["cache_mb"] for x in r["samples"]) / max(r["wall_s"], 1)
    bound = out_rate * r["output_ttl"] + cache_rate * 1.5 * r["cache_ttl"]
    print(f"Largest disk use seen: app outputs {r['max_outputs_mb']:.1f} MB, Gradio cache {r['max_cache_mb']:.1f} MB "
          f"({r['max_files']} files in all), written at about {out_rate * 60:.0f} and {cache_rate * 60:.0f} MB a "
          f"minute. Results live {r['output_ttl']:g} s (served from the app's folder); Gradio's cache (uploads) "
          f"{r['cache_ttl']:g} s, pruned every {r['cache_ttl'] / 2:g} s. So the disk holds at most about "
          f"{bound / 1024:.1f} GB at these rates.")
    if r["settled"]:
        z = r["settled"]
        print(f"After {r['settle_s']:g} s without requests and then one more: app outputs {z['outputs_mb']:.1f} MB / "
              f"{z['outputs_files']} files, Gradio cache {z['cache_mb']:.1f} MB / {z['cache_files']} files.")
    print()
    for name, ok in r["targets"].items():
        print(f"- {'met' if ok else 'MISSED'}: {name}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=50, help="requests before the 'after warm-up' sample")
    ap.add_argument("--sample-every", type=float, default=10.0, help="seconds between samples of the server")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--port", type=int, default=7873)
    ap.add_argument("--output-ttl", type=float, default=None, help="the app's UPSCALER_OUTPUT_TTL (default 1200 s)")
    ap.add_argument("--cache-ttl", type=int, default=None, help="the app's UPSCALER_CACHE_TTL (default 1200 s)")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="after the requests, wait this long, send one more and measure the disk again")
    ap.add_argument("--json", default=None, help="also write the report as JSON")
    args = ap.parse_args(argv)
    report = soak(args.requests, args.clients, args.warmup, args.sample_every, args.seed, args.port,
                  args.output_ttl, args.cache_ttl, args.settle)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0 if all(report["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
