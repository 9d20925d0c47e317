"""Hostile input, load and faults: every case ends in a correct result or a clear
message, the server keeps answering, and nothing is lost. (Training faults: test_train.py;
corrupt Hub weights: test_app.py.)"""
import concurrent.futures as cf
import contextlib
import subprocess
import sys
import threading
import time

import hostile_files
import numpy as np
import psutil
import pytest
from conftest import ROOT
from helpers import app_log, running_app
from PIL import Image

EXAMPLE = str(ROOT / "examples" / "cat.4093.jpg")


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    return folder, hostile_files.make(folder)


pytestmark = pytest.mark.slow  # a server, subprocesses, 16 clients


@pytest.fixture(scope="module")
def live(live_app):
    return live_app  # url, process, log


def test_every_hostile_file_through_the_api(cases, live):
    from gradio_client import Client, handle_file

    folder, expected = cases
    url, proc, log = live
    client = Client(url, verbose=False)
    for name, expect in expected.items():
        for api in ("/upscale", "/compare"):
            try:
                result = client.predict(handle_file(str(folder / name)), "64to128", api_name=api)
                error = None
            except Exception as e:  # gradio_client raises AppError with the server's message
                result, error = None, str(e)
            kind = expect[0]
            if error is not None:
                assert "Traceback" not in error and 'File "' not in error, (name, api, error)
            if api == "/upscale":
                if name == "big.jpg":  # 6000x4000 x2 = 96 MP: over the page's output limit
                    assert error and "results are limited to 16.8 megapixels" in error, (name, error)
                elif kind == "error":
                    assert error and expect[1] in error, (name, api, error)
                else:
                    assert error is None, (name, api, error)
                    (_, learned), download = result
                    out = Image.open(download)
                    w, h = expect[2]
                    assert out.size == (2 * w, 2 * h), (name, out.size)
                    assert out.mode == expect[1] or (expect[1] == "I;16" and out.mode.startswith("I")), (name, out.mode)
            else:
                if kind == "error":
                    assert error and expect[1] in error, (name, api, error)
                elif min(expect[2]) < 16:
                    assert error and "at least 16 pixels" in error, (name, error)
                else:
                    assert error is None, (name, api, error)
                    assert Image.open(result[1]).size == (128, 128)
            # the server still answers a normal request
            assert proc.poll() is None
        (_, learned), _ = client.predict(handle_file(EXAMPLE), "64to128", api_name="/upscale")
        assert Image.open(learned).size == (670, 718)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # reading our own 96 MP result
def test_every_hostile_file_through_the_cli(cases, tmp_path):
    folder, expected = cases
    out = tmp_path / "out"
    (folder / "keep.txt").write_text("a file the CLI must leave alone")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    p = subprocess.run([sys.executable, "-m", "upscaler", "upscale", str(folder), "--stage", "64to128",
                        "--output-dir", str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 1  # some files were skipped, and it says so
    assert "Traceback" not in p.stderr
    for name, expect in expected.items():
        stem = name.rsplit(".", 1)[0]
        if expect[0] == "error":
            assert f"{name}: " in p.stderr and expect[1] in p.stderr.split(f"{name}: ")[1].splitlines()[0], name
            assert not (out / f"{stem}.png").exists()
        else:
            # an animation stays one, every frame upscaled (tests/test_motion.py); a still is a PNG
            img = Image.open(out / (name if name == "animated.gif" else f"{stem}.png"))
            w, h = expect[2]
            assert img.size == (2 * w, 2 * h), name
            if name == "animated.gif":
                assert img.n_frames == 2, name
            else:
                assert img.mode == expect[1], (name, img.mode)
    # the inputs are untouched, and no half-written output is left behind
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not list(out.glob("*.part"))
    rot = np.asarray(Image.open(out / "rotated.png"))
    assert rot.shape == (120, 80, 3)


def test_the_cli_refuses_a_result_too_large_for_memory(cases, tmp_path):
    folder, _ = cases
    p = subprocess.run([sys.executable, "-m", "upscaler", "upscale", str(folder / "big.jpg"), "--stage", "64to512",
                        "--output-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "48000x32000" in p.stderr and "limit" in p.stderr


def _decoded(path) -> Image.Image:
    img = Image.open(path)
    img.load()  # raises on a truncated or empty file
    return img


def test_sixteen_concurrent_clients(live, tmp_path):
    """16 gradio_client users at once, all four stages, both endpoints: every one gets its
    result, and the server's memory stays bounded. A client that fails makes the test fail
    with its error and the server's log; it must never leave the test waiting."""
    from gradio_client import Client, handle_file

    url, proc, log = live
    rss_before = psutil.Process(proc.pid).memory_info().rss

    def one(i):
        stage = ("64to128", "128to256", "256to512", "64to512")[i % 4]
        # Each client downloads into its own folder; the read timeout is generous because
        # with concurrency 1 the last of 16 jobs waits for the other 15.
        client = Client(url, verbose=False, download_files=str(tmp_path / str(i)), httpx_kwargs={"timeout": 120})
        # Every client asks for a result some other client gets too: identical results must
        # all arrive whole (decoded in full here, not just their headers).
        if i % 2:
            (bilinear, learned), download = client.predict(handle_file(EXAMPLE), stage, api_name="/upscale")
            f = 8 if stage == "64to512" else 2
            return all(_decoded(p).size == (335 * f, 359 * f) for p in (bilinear, learned, download))
        b, l, t, m = client.predict(handle_file(EXAMPLE), stage, api_name="/compare")
        return _decoded(b).size == _decoded(l).size == _decoded(t).size and m["default"]["psnr_y_db"] > 15

    peak = [rss_before]
    stop = threading.Event()

    def watch():
        while not stop.wait(0.2):
            with contextlib.suppress(psutil.Error):
                peak[0] = max(peak[0], psutil.Process(proc.pid).memory_info().rss)

    results = {}

    def run(i):
        try:
            results[i] = one(i)
        except Exception as e:  # reported below, with the server's log
            results[i] = e

    # Daemon threads, not a ThreadPoolExecutor: a client stuck forever must fail this test,
    # not hang pytest at exit (executor workers are joined when the interpreter exits).
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(16)]
    watcher = threading.Thread(target=watch, daemon=True)
    for t in [watcher, *threads]:
        t.start()
    deadline = time.monotonic() + 600
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stop.set()
    waiting = [i for i in range(16) if i not in results]
    errors = {i: repr(r) for i, r in results.items() if isinstance(r, Exception)}
    server_log = app_log(log)[-4000:]
    assert not waiting and not errors, (f"clients still waiting: {waiting}, errors: {errors}, server exit code: "
                                        f"{proc.poll()}\nserver log:\n{server_log}")
    assert [results[i] for i in range(16)] == [True] * 16
    assert proc.poll() is None
    assert peak[0] < 3e9, f"server RSS peaked at {peak[0] / 1e9:.2f} GB"


def test_a_full_queue_gets_a_clear_message():
    from gradio_client import Client, handle_file

    with running_app({"HF_HUB_OFFLINE": "1", "UPSCALER_MAX_QUEUE": "1", "UPSCALER_CONCURRENCY": "1"}) as (url, proc, _):
        def one(_):
            try:
                Client(url, verbose=False).predict(handle_file(EXAMPLE), "64to512", api_name="/upscale")
                return "ok"
            except Exception as e:
                return str(e)

        with cf.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(8)))
        assert "ok" in results
        refused = [r for r in results if r != "ok"]
        assert refused and all("queue is full" in r.lower() for r in refused), results
        assert proc.poll() is None
