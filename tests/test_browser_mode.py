"""Browser mode: the networks run in the page with onnxruntime-web (WebAssembly back end,
headless Chromium), from the npm copy the app serves, offline. The result must be the
server path's result: PSNR >= 45 dB against ``load_upscaler(..., dtype="float32")`` on the
same photo, at the same size, downloadable under the server's file name. The CDN path is
tested offline too: the same files from another origin, checked by the integrity hash."""
import base64
import hashlib
import io
import json
import os
import time

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

from upscaler import browser, load_upscaler
from upscaler.metrics import psnr_rgb as psnr
from upscaler.pipeline import Pipeline, chain
from upscaler.serving import download_name

from browser_page import CHROMIUM, CHROMIUM_ARGS, open_page, page_result, upscale_in_page  # noqa: E402

pytestmark = pytest.mark.slow  # a server and a browser

EXAMPLE = ROOT / "examples" / "cat.4018.jpg"  # 276 x 374


def test_the_runtime_is_the_pinned_npm_copy():
    """The app serves web/node_modules (installed by `npm ci`, as .ci/run does); the CDN
    fallback names the same version with the hash of these very bytes."""
    assert browser.LOCAL_DIST.is_dir(), "run `npm ci --prefix web` (the README's install step; .ci/run does)"
    lock = json.loads((browser.WEB / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/onnxruntime-web"]["version"] == browser.RUNTIME_VERSION
    assert json.loads((browser.WEB / "package.json").read_text())["dependencies"]["onnxruntime-web"] == \
        browser.RUNTIME_VERSION
    digest = hashlib.sha384((browser.LOCAL_DIST / browser.RUNTIME_FILE).read_bytes()).digest()
    assert browser.RUNTIME_INTEGRITY == "sha384-" + base64.b64encode(digest).decode()
    rt = browser.runtime()
    assert rt["source"] == "local" and rt["script"].startswith("gradio_api/file=")


@pytest.fixture(scope="module")
def chromium(live_app):
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "install Debian's chromium (apt-get install chromium); .ci/run does"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b, live_app[0]
        b.close()


@pytest.fixture(scope="module")
def page(chromium):
    b, url = chromium
    page = open_page(b, url)
    # offline: nothing may come from outside the app (the CDN fallback must not be used)
    external = []
    page.on("request", lambda r: external.append(r.url) if not r.url.startswith(url) and
            not r.url.startswith(("blob:", "data:")) else None)
    yield page, external
    page.close()


@pytest.mark.parametrize("model", ["default", "seed"])
@pytest.mark.parametrize("scale", [2, 8])
def test_browser_result_matches_the_server_path(page, model, scale):
    page, external = page
    last = upscale_in_page(page, EXAMPLE, scale, model)
    assert last["ok"], last.get("error")
    assert last["backend"].startswith("WebAssembly") and last["runtime"] == "local"
    src = Image.open(EXAMPLE)
    want = chain(*[load_upscaler(s, model=model, dtype="float32") for s in Pipeline.for_scale(scale).stages])(src)
    got = Image.open(io.BytesIO(page_result(page)))
    assert got.size == want.size == (src.width * scale, src.height * scale)
    assert (last["width"], last["height"]) == want.size
    value = psnr(got.convert("RGB"), want)
    assert value >= 45, f"{model} x{scale}: {value:.1f} dB against the server path"
    assert last["download_name"] == download_name(EXAMPLE, scale, {"default": "clean"}.get(model, model))
    assert 0 < last["model_bytes"] < 10e6
    assert not external, external


LONG_TASKS = """() => {
  window.longTasks = [];
  new PerformanceObserver((list) => list.getEntries().forEach((e) => window.longTasks.push(e.duration)))
    .observe({ type: "longtask" });
}"""


def test_the_page_never_freezes_and_says_each_phase(page):
    """The network runs in a worker: during an 8x run the page's main thread has no task
    over 200 ms (Chromium's long-task observer), and the status names the real phases."""
    page, _ = page
    page.evaluate(LONG_TASKS)
    last = upscale_in_page(page, EXAMPLE, 8, "default")
    assert last["ok"], last.get("error")
    longest = max(page.evaluate("() => window.longTasks"), default=0)
    assert longest <= 200, f"the main thread was busy for {longest:.0f} ms at a time"
    page.evaluate("() => { setTimeout(() => { const t = performance.now(); while (performance.now() - t < 300); }); }")
    page.wait_for_function("() => window.longTasks.some((d) => d >= 290)", timeout=5000)  # the observer sees one
    seen = "\n".join(last["statuses"])
    for phase in ("Loading the runtime (onnxruntime-web", "Loading the 64to512 network (", "Compiling the 64to512",
                  "tile 1 of 1", "Making the PNG"):
        assert phase in seen, (phase, last["statuses"])
    assert "Downloading" not in seen
    # an opaque photo's PNG has no alpha channel (the server's PNG has none either)
    assert Image.open(io.BytesIO(page_result(page))).mode == "RGB" and last["png_alpha"] is False


def test_the_crops_start_on_the_cats_face(page):
    from upscaler import focus

    page, _ = page
    face_photo = ROOT / "examples" / "cat.4093.jpg"
    x, y, w, h = focus.find_cat_face(Image.open(face_photo).convert("RGB"))
    last = upscale_in_page(page, face_photo, 2, "default")
    assert last["ok"], last.get("error")
    cx, cy = last["crop_centre"]
    assert x < cx < x + w and y < cy < y + h, (last["crop_centre"], (x, y, w, h))


def test_a_transparent_image_keeps_its_alpha_in_the_browser(page, tmp_path):
    page, _ = page
    rgba = Image.open(EXAMPLE).convert("RGBA").crop((0, 0, 120, 100))
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    path = tmp_path / "fade.png"
    rgba.save(path)
    last = upscale_in_page(page, path, 2, "default")
    assert last["ok"], last.get("error")
    got = Image.open(io.BytesIO(page_result(page)))
    assert got.mode == "RGBA" and got.size == (240, 200) and last["png_alpha"] is True
    want = rgba.getchannel("A").resize(got.size, Image.BICUBIC)
    assert np.abs(np.asarray(got.getchannel("A"), int) - np.asarray(want, int)).mean() < 4


def test_download_and_cancel(page, tmp_path):
    page, _ = page
    last = upscale_in_page(page, EXAMPLE, 2, "default")
    assert last["ok"], last.get("error")
    with page.expect_download() as info:
        page.locator("#bm-download").click()
    assert info.value.suggested_filename == "cat.4018-x2-clean.png"  # named after the model the visitor chose
    assert Image.open(info.value.path()).size == (552, 748)
    # A run is cancelled between tiles: a 1200x1000 photo at 2x is 12 tiles of 384 px.
    big = tmp_path / "big.png"
    Image.open(EXAMPLE).resize((1200, 1000)).save(big)
    page.locator("#input-image input[type=file]").set_input_files(str(big))
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('Press Upscale')")
    page.evaluate("() => { window.catUpscaler.last = null; }")
    page.locator("#browser-button").click()
    page.wait_for_function("() => /tile 1 of 12, .* left/.test(document.getElementById('bm-status').innerText)",
                           timeout=120_000)
    clicked = time.perf_counter()
    page.locator("#bm-cancel").click()
    page.wait_for_function("() => window.catUpscaler.last.finished", timeout=120_000)
    stopped = time.perf_counter() - clicked
    last = page.evaluate("() => window.catUpscaler.last")
    assert not last["ok"] and last["error"] == "Cancelled."
    assert stopped <= 1.0 and last["finished_at"] - last["cancelled_at"] <= 500, (stopped, last)
    page.wait_for_timeout(1500)  # and nothing of the cancelled run arrives later
    assert page.locator("#bm-status").inner_text() == "Cancelled."
    assert page.locator("#bm-download").is_hidden() and page.locator("#bm-compare").is_hidden()
    assert page.locator("#bm-use-server").is_hidden()  # a cancel is not a failure


def test_a_runtime_that_fails_to_load_says_so(chromium):
    """No runtime (blocked here): a clear line, and the server path is offered."""
    b, url = chromium
    page = open_page(b, url)
    page.route("**/onnxruntime-web/**", lambda route: route.abort())
    last = upscale_in_page(page, EXAMPLE, 2, "default", timeout_s=60)
    assert not last["ok"]
    assert "Could not load onnxruntime-web" in last["error"] and "use the server instead" in last["error"]
    # one click on the offer brings back the server's button, which then works
    page.locator("#bm-use-server").click()
    page.locator("#upscale-button").wait_for(state="visible")
    assert not page.locator("#in-browser input").is_checked()
    page.locator("#upscale-button").click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('Done')", timeout=120_000)
    page.close()


@pytest.fixture(scope="module")
def mirror():
    """The npm copy served from another origin, as a CDN serves it (CORS allowed); with
    ``tamper`` set, the runtime script comes back altered by one comment."""
    import functools
    import http.server
    import threading

    from helpers import free_port

    state = {"tamper": False}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def end_headers(self):
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Cross-Origin-Resource-Policy", "cross-origin")
            super().end_headers()

        def do_GET(self):
            if state["tamper"] and self.path.endswith(browser.RUNTIME_FILE):
                body = (browser.LOCAL_DIST / browser.RUNTIME_FILE).read_bytes() + b"\n// altered\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/javascript")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(Handler, directory=str(browser.LOCAL_DIST)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/", state
    server.shutdown()


def test_a_cross_origin_runtime_is_checked_by_its_hash(chromium, mirror):
    """The CDN path, offline: the runtime from another origin (as from jsDelivr), loaded
    with the integrity hash; threads still work (the wasm glue is cross-origin); an
    altered script is refused with a clear line."""
    from helpers import running_app

    b, _ = chromium
    base, state = mirror
    with running_app({"HF_HUB_OFFLINE": "1", "UPSCALER_ORT_URL": base}) as (url, _proc, _log):
        page = open_page(b, url)
        last = upscale_in_page(page, EXAMPLE, 2, "default")
        assert last["ok"], last.get("error")
        assert last["runtime"] == "mirror" and last["backend"].startswith("WebAssembly")
        threads = page.evaluate("() => Math.min(4, navigator.hardwareConcurrency)")
        assert page.evaluate("() => self.crossOriginIsolated") and f"{threads} thread" in last["backend"]
        want = load_upscaler("64to128", dtype="float32")(Image.open(EXAMPLE))
        assert psnr(Image.open(io.BytesIO(page_result(page))).convert("RGB"), want) >= 45
        page.close()
        state["tamper"] = True
        page = open_page(b, url)
        last = upscale_in_page(page, EXAMPLE, 2, "default", timeout_s=60)
        page.close()
    assert not last["ok"] and "Could not load onnxruntime-web" in last["error"], last


def test_shrink_and_upscale_runs_in_the_browser(chromium, tmp_path):
    """Browser mode on, a photo too large for the scale: the one-click shrink sends the
    shrunk copy to the browser, whose view shows the result and its download."""
    from helpers import running_app

    from upscaler.images import fit_size

    b, _ = chromium
    big = tmp_path / "wide.png"
    Image.open(EXAMPLE).resize((800, 600)).save(big)
    fw, fh = fit_size((800, 600), 2, 1_000_000)
    with running_app({"HF_HUB_OFFLINE": "1", "UPSCALER_MAX_OUTPUT_PIXELS": "1000000"}) as (url, _proc, _log):
        page = open_page(b, url)
        page.locator("#in-browser input").check()
        page.locator("#input-image input[type=file]").set_input_files(str(big))
        shrink = page.locator("#shrink-button")
        shrink.wait_for(state="visible", timeout=60_000)
        page.evaluate("() => { window.catUpscaler.last = null; }")
        shrink.click()
        page.wait_for_function("() => window.catUpscaler.last && window.catUpscaler.last.finished", timeout=120_000)
        last = page.evaluate("() => window.catUpscaler.last")
        assert last["ok"], last.get("error")
        assert (last["width"], last["height"]) == (fw * 2, fh * 2)
        assert page.locator("#bm-compare").is_visible() and page.locator("#bm-download").is_visible()
        assert f"Sent {fw}x{fh} to your browser" in page.locator("#status").inner_text()
        page.close()


def test_on_a_phone_done_and_the_download_are_on_screen(chromium):
    """The page scrolls to browser mode's bar: its "Done" and the download, with the
    result's top under them."""
    b, url = chromium
    page = b.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(url + "?backend=wasm", wait_until="load")
    page.locator("#upscale-button").wait_for(state="visible", timeout=60_000)
    last = upscale_in_page(page, EXAMPLE, 2, "default")
    assert last["ok"], last.get("error")
    page.wait_for_timeout(300)
    for sel in ("#bm-status", "#bm-download"):
        box = page.locator(sel).bounding_box()
        assert box and box["y"] >= -1 and box["y"] + box["height"] <= 844, (sel, box)
    assert "Done in your browser" in page.locator("#bm-status").inner_text()
    page.close()
