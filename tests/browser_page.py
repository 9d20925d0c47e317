"""Driving the demo's page in headless Chromium (Debian's ``chromium``) with Playwright:
for the browser tests and benchmarks/browser_speed.py. Imports nothing of pytest."""
import base64
import os

from upscaler.models import FAMILIES

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def open_page(browser, url):
    """A page of the app on the WebAssembly back end, ready for an upload."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.goto(url + "?backend=wasm", wait_until="load")
    page.locator("#upscale-button").wait_for(state="visible", timeout=60_000)
    return page


def upscale_in_page(page, image, scale: int, model: str, timeout_s: float = 300) -> dict:
    """Upload ``image``, choose ``model`` and ``scale``, tick "run in my browser", press its
    button and wait: -> the page's ``window.catUpscaler.last`` (seconds, bytes, backend...)."""
    page.locator("#input-image input[type=file]").set_input_files(str(image))
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('Press Upscale')",
                           timeout=60_000)
    page.locator("#model").get_by_label(FAMILIES[model].label, exact=True).check()
    page.locator("#scale").get_by_label(f"{scale}x", exact=True).check()
    box = page.locator("#in-browser input")
    if not box.is_checked():
        box.check()
    page.locator("#browser-button").wait_for(state="visible")
    page.evaluate("() => { window.catUpscaler.last = null; }")
    page.locator("#browser-button").click()
    page.wait_for_function("() => window.catUpscaler.last && window.catUpscaler.last.finished",
                           timeout=timeout_s * 1000)
    return page.evaluate("() => window.catUpscaler.last")


def page_result(page) -> bytes:
    """The bytes of the PNG behind the page's download link."""
    data_url = page.evaluate("""async () => {
      const blob = await (await fetch(document.getElementById('bm-download').href)).blob();
      return await new Promise((ok) => { const r = new FileReader(); r.onload = () => ok(r.result); r.readAsDataURL(blob); });
    }""")
    return base64.b64decode(data_url.split(",", 1)[1])
