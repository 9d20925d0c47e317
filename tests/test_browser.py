"""A real browser: headless Chromium (Debian's `chromium`) driven by Playwright uploads an
example, runs both modes and checks that the result images render. Screenshots are kept
in artifacts/ (browser-upscale.png, browser-compare.png)."""
import os

import pytest

pytestmark = pytest.mark.slow  # a server and a browser
from conftest import ROOT
from helpers import running_app

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"
EXAMPLE = str(ROOT / "examples" / "cat.4093.jpg")

RENDERED = """(sel) => {
  const imgs = [...document.querySelectorAll(sel + ' img')];
  return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0);
}"""


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "install Debian's chromium (apt-get install chromium); .ci/run does"
    ARTIFACTS.mkdir(exist_ok=True)
    with running_app({"HF_HUB_OFFLINE": "1"}) as (url, proc, log), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                           "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="networkidle")
        yield page
        browser.close()


def test_upscale_mode_renders_the_slider(page):
    page.locator("#input-image input[type=file]").set_input_files(EXAMPLE)
    page.wait_for_function(RENDERED, arg="#input-image", timeout=30_000)
    page.get_by_text("256 -> 512 (x2)").click()
    page.locator("#upscale-button").click()
    page.wait_for_function(RENDERED, arg="#upscale-slider", timeout=120_000)
    sizes = page.eval_on_selector_all("#upscale-slider img", "els => els.map(e => [e.naturalWidth, e.naturalHeight])")
    assert len(sizes) >= 2 and all(w == 2 * 335 and h == 2 * 359 for w, h in sizes), sizes
    assert page.locator("#upscale-file a").count() >= 1  # the full-size download
    assert "bundled weights" in page.locator("#weights-status").inner_text()
    page.screenshot(path=str(ARTIFACTS / "browser-upscale.png"), full_page=True)


def test_compare_mode_renders_three_images_and_metrics(page):
    page.get_by_role("tab", name="Compare").click()
    page.get_by_text("64 -> 128 (x2)").click()
    page.locator("#compare-button").click()
    for sel in ("#cmp-bilinear", "#cmp-learned", "#cmp-truth"):
        page.wait_for_function(RENDERED, arg=sel, timeout=120_000)
        assert page.eval_on_selector(f"{sel} img", "e => e.naturalWidth") == 128
    page.wait_for_function("() => document.querySelector('#cmp-metrics').innerText.includes('psnr_y_db')",
                           timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "browser-compare.png"), full_page=True)


def test_a_bad_file_shows_a_message_and_the_page_keeps_working(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image at all")
    page.get_by_role("tab", name="Upscale").click()
    page.locator("#input-image input[type=file]").set_input_files(str(bad))
    page.locator("#upscale-button").click()
    toast = page.get_by_text("Cannot use this file", exact=False).first
    toast.wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "browser-error.png"), full_page=True)
