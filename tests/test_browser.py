"""A real browser: headless Chromium (Debian's `chromium`) driven by Playwright, as a new
user would use the page: upload, choose 4x, upscale, look at the 1:1 detail, meet a
refusal and its one-click shrink, run a batch with a zip download, and the same page on
a phone. A screenshot of each step goes to $UPSCALER_SCREENSHOTS (default: a temporary
folder, named in the test output)."""
import os
import tempfile
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT
from PIL import Image

pytestmark = pytest.mark.slow  # a server and a browser

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
EXAMPLE = str(ROOT / "examples" / "cat.4093.jpg")  # 335 x 359
SHOTS = Path(os.environ.get("UPSCALER_SCREENSHOTS") or tempfile.mkdtemp(prefix="upscaler-screenshots-"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

RENDERED = """(sel) => {
  const imgs = [...document.querySelectorAll(sel + ' img')];
  return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0);
}"""
STATUS_HAS = "(t) => document.querySelector('#status').innerText.includes(t)"


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def browser(live_app):
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "install Debian's chromium (apt-get install chromium); .ci/run does"
    print(f"screenshots: {SHOTS}")
    url = live_app[0]
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b, url
        b.close()


@pytest.fixture()
def page(browser):
    b, url = browser
    page = b.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.goto(url, wait_until="load")
    page.locator("#upscale-button").wait_for(state="visible", timeout=60_000)
    yield page
    page.close()


def upload(page, path):
    page.locator("#input-image input[type=file]").set_input_files(path)


def test_upscale_4x_with_labels_1to1_detail_and_facts(page):
    upload(page, EXAMPLE)
    page.wait_for_function(RENDERED, arg="#input-image", timeout=30_000)
    page.wait_for_function(STATUS_HAS, arg="335x359 in", timeout=30_000)  # checked on upload
    shot(page, "1-uploaded")
    # the page starts on the sharp model, with its invented detail at 0.9
    assert page.locator("#model input[value=sharp]").is_checked()
    strength = page.locator("#strength input[type=number]")
    assert float(strength.input_value()) == 0.9
    strength.fill("0.5")
    strength.press("Enter")
    page.locator("#scale").get_by_text("4x").click()
    page.wait_for_function(STATUS_HAS, arg="1340x1436", timeout=30_000)
    page.locator("#upscale-button").click()
    page.wait_for_function(RENDERED, arg="#upscale-slider", timeout=180_000)
    page.wait_for_function(STATUS_HAS, arg="Done", timeout=30_000)
    sizes = page.eval_on_selector_all("#upscale-slider img", "els => els.map(e => [e.naturalWidth, e.naturalHeight])")
    assert len(sizes) >= 2 and all(s == [4 * 335, 4 * 359] for s in sizes), sizes
    # the comparison fills the column, not a 500 px box
    width = page.eval_on_selector("#upscale-slider", "e => e.getBoundingClientRect().width")
    assert width > 800, width
    # both halves are labelled, on the image
    labels = page.eval_on_selector("#upscale-slider", """e => [getComputedStyle(e, '::before').content,
                                                                getComputedStyle(e, '::after').content]""")
    assert "bilinear" in labels[0] and "learned" in labels[1], labels
    assert "zoom" in page.locator("#zoom-hint").inner_text()
    # the 1:1 detail: crops at their natural size, not scaled
    for sel in ("#crop-bilinear", "#crop-learned"):
        page.wait_for_function(RENDERED, arg=sel, timeout=30_000)
        natural, fit = page.eval_on_selector(f"{sel} img", "e => [e.naturalWidth, getComputedStyle(e).objectFit]")
        assert natural == 256 and fit == "none", (sel, natural, fit)
    status = page.locator("#status").inner_text()
    assert "335x359 -> 1340x1436" in status and "network" in status and "total" in status
    assert "sharp (perceptual), invented detail 0.5" in status
    assert "cat.4093-x4-sharp-d0.5.png" in page.locator("#download").inner_text()  # the strength that ran
    # where the crops come from is shown on a thumbnail of the input
    page.wait_for_function(RENDERED, arg="#crop-where", timeout=30_000)
    shot(page, "2-upscaled-4x")
    # a click on the input picks the 1:1 window, and the crops come into view
    before = page.eval_on_selector("#crop-learned img", "e => e.src")
    where = page.eval_on_selector("#crop-where img", "e => e.src")
    page.locator("#input-image img").first.click(position={"x": 20, "y": 20})
    page.wait_for_function("(s) => document.querySelector('#crop-learned img').src !== s", arg=before,
                           timeout=30_000)
    page.wait_for_function("(s) => document.querySelector('#crop-where img').src !== s", arg=where, timeout=30_000)
    page.wait_for_timeout(500)
    box = page.locator("#crop-learned").bounding_box()
    assert box["y"] >= -1 and box["y"] + box["height"] <= 1001, box  # in the viewport (to the sub-pixel)
    shot(page, "3-detail-moved")
    # another scale: the 4x result is not left on screen as if it were the 2x one
    page.locator("#scale").get_by_text("2x").click()
    page.wait_for_function("() => !document.querySelector('#download') || "
                           "document.querySelector('#download').offsetParent === null", timeout=30_000)
    assert page.locator("#upscale-slider img").count() == 0
    # the examples are on the first screen of a desktop too
    box = page.locator("#examples").bounding_box()
    assert box["y"] + box["height"] <= 1000, box
    # the weights notice lives in "About", not above the fold
    page.locator("#about").get_by_text("About").click()
    assert "bundled weights" in page.locator("#weights-status").inner_text()


def test_sharp_has_one_slider_named_for_it(page):
    """The sharp model's invented detail and the photo model's denoise strength are one
    slider, renamed and reset with the model: never two that fight."""
    upload(page, EXAMPLE)
    page.wait_for_function(STATUS_HAS, arg="335x359 in", timeout=30_000)
    slider = page.locator("#strength")
    assert "invented detail" in slider.inner_text()  # the page starts on sharp
    page.locator("#model input[value=photo]").check()
    page.wait_for_function("() => document.querySelector('#strength').innerText.includes('denoise strength')",
                           timeout=30_000)
    strength = page.locator("#strength input[type=number]")
    assert float(strength.input_value()) == 1.0  # photo's own start
    page.locator("#model input[value=sharp]").check()
    page.wait_for_function("() => document.querySelector('#strength').innerText.includes('invented detail')",
                           timeout=30_000)
    assert "0: faithful" in slider.inner_text()
    assert page.locator("input[type=range]").count() == 1  # (the result's slider is not there yet)
    assert float(strength.input_value()) == 0.9  # and sharp's
    strength.fill("0.5")
    strength.press("Enter")
    page.locator("#upscale-button").click()
    page.wait_for_function(STATUS_HAS, arg="Done", timeout=180_000)
    status = page.locator("#status").inner_text()
    assert "sharp (perceptual), invented detail 0.5" in status, status
    assert "cat.4093-x2-sharp-d0.5.png" in page.locator("#download").inner_text()
    shot(page, "sharp-2x")
    # to photo: the slider is its denoise strength, from its own start; and back
    page.locator("#model input[value=photo]").check()
    page.wait_for_function("() => document.querySelector('#strength').innerText.includes('denoise strength')",
                           timeout=30_000)
    assert float(strength.input_value()) == 1.0 and page.locator("input[type=range]").count() == 1
    page.locator("#model input[value=sharp]").check()
    page.wait_for_function("() => document.querySelector('#strength').innerText.includes('invented detail')",
                           timeout=30_000)
    assert float(strength.input_value()) == 0.9  # sharp's start again, not the 0.5 typed before


def test_too_large_is_refused_on_upload_with_a_one_click_shrink(page, tmp_path):
    big = tmp_path / "phone-photo.png"
    Image.open(EXAMPLE).resize((800, 600)).save(big)
    page.locator("#scale").get_by_text("8x").click()
    upload(page, str(big))
    page.wait_for_function(STATUS_HAS, arg="6400x4800", timeout=30_000)  # before any click
    assert "over the limit" in page.locator("#status").inner_text()
    shrink = page.locator("#shrink-button")
    shrink.wait_for(state="visible", timeout=10_000)
    assert "591x443" in shrink.inner_text()
    shot(page, "4-refused")
    shrink.click()
    page.wait_for_function(STATUS_HAS, arg="shrunk to 591x443", timeout=240_000)
    page.wait_for_function(RENDERED, arg="#upscale-slider", timeout=60_000)
    assert page.eval_on_selector("#upscale-slider img", "e => e.naturalWidth") == 591 * 8
    shot(page, "5-shrunk-and-upscaled")


def test_a_bad_file_is_refused_on_upload_in_the_status_line(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image at all")
    upload(page, str(bad))
    page.wait_for_function(STATUS_HAS, arg="Cannot use this file", timeout=60_000)
    page.wait_for_timeout(12_000)  # a toast would have faded by now; the status line stays
    assert "not an image" in page.locator("#status").inner_text()
    shot(page, "6-bad-file")
    upload(page, EXAMPLE)  # and the page keeps working
    page.wait_for_function(STATUS_HAS, arg="335x359 in", timeout=30_000)


def test_a_file_name_with_html_is_shown_as_text(page, tmp_path):
    # a name carrying markup is shown as the characters it has, never run or rendered
    name = "<img src=x onerror=alert(1)>.png"
    hostile = tmp_path / name
    Image.open(EXAMPLE).crop((0, 0, 60, 50)).save(hostile, format="PNG")
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    upload(page, str(hostile))
    page.wait_for_function(STATUS_HAS, arg="60x50 in", timeout=30_000)
    page.locator("#upscale-button").click()
    page.wait_for_function(STATUS_HAS, arg="Done", timeout=120_000)
    label = page.locator("#download").inner_text()
    assert "img src=x" not in label or "<img" in label  # whatever is named, it is text
    page.get_by_role("tab", name="Batch").click()
    page.locator("#batch-files input[type=file]").set_input_files([str(hostile)])
    page.locator("#batch-button").click()
    page.locator("#batch-zip").wait_for(state="visible", timeout=120_000)
    report = page.locator("#batch-status").inner_text()
    # Gradio's upload drops < and > from file names; what is left is shown as text
    assert "img src=x onerror=alert(1)" in report and "60x50 -> 120x100" in report, report
    page.wait_for_timeout(1000)
    assert dialogs == [] and page.locator("img[src=x]").count() == 0
    shot(page, "10-html-file-name")


def test_batch_of_three_downloads_one_zip(page, tmp_path):
    page.get_by_role("tab", name="Batch").click()
    files = [str(p) for p in sorted((ROOT / "examples").glob("*.jpg"))]
    assert len(files) == 3
    page.locator("#batch-files input[type=file]").set_input_files(files)
    page.locator("#batch-button").click()
    page.locator("#batch-zip").wait_for(state="visible", timeout=180_000)
    report = page.locator("#batch-status").inner_text()
    # the tab's model starts as the page's: sharp, at the invented detail the page starts it on
    assert all(f"{Path(f).name} -> {Path(f).stem}-x2-sharp-d0.9.png: " in report for f in files), report
    shot(page, "7-batch")
    with page.expect_download(timeout=60_000) as info:
        page.locator("#batch-zip").click()
    path = tmp_path / "batch.zip"
    info.value.save_as(path)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == sorted(f"{Path(f).stem}-x2-sharp-d0.9.png" for f in files)


def test_compare_shows_the_input_every_method_and_a_table(page):
    upload(page, EXAMPLE)
    page.wait_for_function(STATUS_HAS, arg="335x359 in", timeout=30_000)
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-button").click()
    page.wait_for_function("() => document.querySelector('#cmp-metrics').innerText.includes('higher is better')",
                           timeout=120_000)
    page.wait_for_function(RENDERED, arg="#cmp-gallery", timeout=60_000)
    assert page.locator("#cmp-gallery img").count() >= 7  # input, bilinear, bicubic, 3 models, truth
    # every picture and caption is whole: none cut off by the gallery's box
    gallery = page.locator("#cmp-gallery").bounding_box()
    for i in range(page.locator("#cmp-gallery img").count()):
        b = page.locator("#cmp-gallery img").nth(i).bounding_box()
        assert b["y"] + b["height"] <= gallery["y"] + gallery["height"] + 1, (i, b, gallery)
    shot(page, "8-compare")
    # a JPEG-looking input, for the photo model to show what it is for
    page.locator("#cmp-condition input").click()  # the field itself (its label can wrap above it)
    page.get_by_role("option", name="JPEG quality 50").click()
    page.locator("#compare-button").click()
    page.wait_for_function("() => document.querySelector('#cmp-status').innerText.includes('JPEG quality 50')",
                           timeout=120_000)
    shot(page, "8b-compare-jpeg50")


def test_phone_first_screen_has_upload_scale_and_button(browser):
    b, url = browser
    page = b.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(url, wait_until="load")
    page.locator("#upscale-button").wait_for(state="visible", timeout=60_000)
    for sel in ("#input-image", "#examples", "#scale", "#upscale-button"):
        box = page.locator(sel).bounding_box()
        assert box and box["y"] + box["height"] <= 844, (sel, box)
    shot(page, "9-phone")
    page.close()


def in_viewport(page, sel) -> bool:
    box = page.locator(sel).bounding_box()
    vh = page.viewport_size["height"]
    return bool(box) and box["height"] > 0 and box["y"] >= -2 and box["y"] + min(box["height"], 40) <= vh


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_messages_are_where_the_eye_is(browser, tmp_path, viewport):
    b, url = browser
    phone = viewport["width"] < 600
    page = b.new_page(viewport=viewport, is_mobile=phone, has_touch=phone)
    page.goto(url, wait_until="load")
    page.locator("#upscale-button").wait_for(state="visible", timeout=60_000)
    # a refusal appears right under the upload, on the first screen
    bad = tmp_path / "renamed.png"
    bad.write_text("a text file renamed .png")
    upload(page, str(bad))
    page.wait_for_function(STATUS_HAS, arg="Cannot use this file", timeout=60_000)
    upload_box, status_box = page.locator("#input-image").bounding_box(), page.locator("#status").bounding_box()
    assert 0 <= status_box["y"] - (upload_box["y"] + upload_box["height"]) <= 60, (upload_box, status_box)
    assert in_viewport(page, "#status")
    reason = page.locator("#status").inner_text()
    page.locator("#upscale-button").click()  # Upscale with nothing to upscale: the reason stays
    page.wait_for_timeout(1500)
    assert page.locator("#status").inner_text() == reason
    page.locator("#model").get_by_label("seed", exact=False).first.check()  # and a model change keeps it too
    page.wait_for_timeout(1000)
    assert page.locator("#status").inner_text() == reason
    shot(page, f"11-refusal-{'phone' if phone else 'desktop'}")
    # "Done" is on screen without scrolling: beside the upload on a desktop; on a phone the
    # page brings the result up, with its note
    upload(page, EXAMPLE)
    page.wait_for_function(STATUS_HAS, arg="335x359 in", timeout=30_000)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.locator("#upscale-button").click()
    page.wait_for_function(STATUS_HAS, arg="Done", timeout=120_000)
    page.wait_for_function(RENDERED, arg="#upscale-slider", timeout=60_000)
    page.wait_for_timeout(500)
    if phone:
        where = page.evaluate("() => [window.scrollY, document.querySelector('#result-note').getBoundingClientRect().top, "
                              "document.querySelector('#result-note').innerText]")
        assert in_viewport(page, "#result-note") and "Done" in page.locator("#result-note").inner_text(), where
        assert in_viewport(page, "#upscale-slider")
    else:
        assert in_viewport(page, "#status") and in_viewport(page, "#upscale-slider")
    shot(page, f"12-done-{'phone' if phone else 'desktop'}")
    # a model change clears the result and its "Done"
    page.evaluate("() => window.scrollTo(0, 0)")
    page.locator("#model").get_by_label("clean", exact=False).first.check()
    page.wait_for_function("() => !document.querySelector('#status').innerText.includes('Done')", timeout=30_000)
    assert "Press Upscale" in page.locator("#status").inner_text()
    assert page.locator("#result-note").inner_text().strip() == ""
    page.close()


def test_compare_and_batch_stand_alone(page, tmp_path):
    # Compare has its own photo and names its scales 2x / 4x / 8x
    page.get_by_role("tab", name="Compare").click()
    page.locator("#cmp-image input[type=file]").set_input_files(EXAMPLE)
    page.locator("#cmp-stage").get_by_label("4x (64 -> 256 px)").check()
    page.locator("#compare-button").click()
    page.wait_for_function("() => document.querySelector('#cmp-status').innerText.includes('Compare at 4x')",
                           timeout=120_000)
    assert "ground truth (256 px)" in page.locator("#cmp-gallery").inner_text()
    # its own upload refuses a bad file beside it, as the Upscale tab does
    bad = tmp_path / "notes.png"
    bad.write_text("not an image at all")
    page.locator("#cmp-image input[type=file]").set_input_files(str(bad))
    page.wait_for_function("() => document.querySelector('#cmp-status').innerText.includes('Cannot use this file')",
                           timeout=60_000)
    # Batch shows its own model choice, and its zip is named after it
    page.get_by_role("tab", name="Batch").click()
    page.locator("#batch-model").get_by_label("seed", exact=False).first.check()
    page.locator("#batch-files input[type=file]").set_input_files([EXAMPLE, EXAMPLE])
    page.locator("#batch-button").click()
    page.locator("#batch-zip").wait_for(state="visible", timeout=180_000)
    report = page.locator("#batch-status").inner_text()
    assert "cat.4093.jpg -> cat.4093-x2-seed.png" in report and "cat.4093.jpg -> cat.4093-x2-seed-2.png" in report
    assert "upscaled-x2-seed.zip" in page.locator("#batch-zip").inner_text()
    shot(page, "13-batch-own-model")
    page.locator("#batch-scale").get_by_text("4x").click()  # new settings: the old report and zip go
    page.locator("#batch-zip").wait_for(state="hidden", timeout=30_000)
    assert page.locator("#batch-status").inner_text().strip() == ""
