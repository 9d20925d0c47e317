"""The demo: handlers called directly, and gradio_client against `python app.py`."""
import io
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
import zipfile

import numpy as np
import pytest
import torch
from conftest import ROOT
from helpers import app_log, running_app
from hub_server import serve
from PIL import Image

from upscaler.models import FAMILIES

os.environ["HF_HUB_OFFLINE"] = "1"  # the in-process app must never look for the network
EXAMPLE = str(ROOT / "examples" / "cat.4093.jpg")


@pytest.fixture(scope="module")
def app():
    import app as app_module

    app_module.server()  # the networks, loaded once for the module's tests
    return app_module


@pytest.fixture(scope="module")
def demo(app):
    return app.create_app()


# ----------------------------------------------------------------- handlers, direct
def no_progress(*a, **k):
    pass


def test_upscale_handler_returns_both_images_at_the_output_size(app):
    (bilinear, learned), path = app.upscale(EXAMPLE, "128to256", "default")
    w, h = Image.open(EXAMPLE).size
    # Files, not PIL images: Gradio copies a file into its cache atomically, but rewrites a
    # PIL image in place, where a second user fetching the same result can read an empty file.
    assert all(isinstance(p, str) and p.startswith(str(app.server().outputs)) for p in (bilinear, learned, path))
    assert Image.open(bilinear).size == Image.open(learned).size == (2 * w, 2 * h)
    saved = Image.open(path)
    assert saved.format == "PNG" and saved.size == (2 * w, 2 * h)
    assert os.path.basename(path) == "cat.4093-x2-default.png"  # named after the upload


def test_handlers_run_every_network_on_the_torch_thread(app, monkeypatch):
    """Upscale, compare and the page's Upscale run their networks on the app's torch thread
    (serving.TorchThreads: torch in Gradio's worker threads ran 12-20% slower), in inference
    mode, and the page's progress bar still hears from it."""
    import threading

    import torch

    from upscaler.inference import Upscaler

    seen, progress = [], []
    call = Upscaler.__call__

    def spy(self, img, progress=None):
        seen.append((threading.current_thread().name, torch.is_inference_mode_enabled()))
        return call(self, img, progress=progress)

    monkeypatch.setattr(Upscaler, "__call__", spy)
    app.upscale_by(EXAMPLE, 4, "default")
    app.compare(EXAMPLE, "64to128", "default")
    app.page_upscale(EXAMPLE, "2x", "default", "64to128", progress=lambda *a, **k: progress.append(a))
    assert len(seen) == 4 and len({name for name, _ in seen}) == 1
    assert all(name.startswith("torch") and inference for name, inference in seen)
    assert progress  # reported from the torch thread


def test_the_networks_run_on_auto_and_about_says_which(app):
    from upscaler import runtimes

    want = runtimes.pick_backend("auto", torch.device("cpu"))
    assert {u.backend for u in app.server().upscalers.values()} == {want}
    assert f"Runtime: {want} (" in app._about()
    up = app.server().blend("photo", "64to128", 0.5)  # blends run where their model runs
    assert up.backend == want


def test_browser_mode_exports_on_the_torch_thread(app, monkeypatch):
    """Browser mode's first request for a network exports it to ONNX: also torch work, so
    also on the app's torch thread (a team of OpenMP threads left on a Gradio worker would
    slow every later request)."""
    import threading

    from upscaler import export

    threads, write = [], export.write_onnx

    def spy(net, path, facts=None):
        threads.append(threading.current_thread().name)
        return write(net, path, facts)

    monkeypatch.setattr(export, "write_onnx", spy)
    plan, status = app.page_browser_plan(EXAMPLE, "2x", "photo", "64to128", 0.37)  # a blend no other test asks for
    assert plan is not None, status
    # the blend's export, and any of the start-up's warm-up (also on the torch thread) under way
    assert threads and all(name.startswith("torch") for name in threads)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_upscale_by_scale(app, scale):
    (bilinear, learned), path = app.upscale_by(EXAMPLE, scale, "default")
    w, h = Image.open(EXAMPLE).size
    assert Image.open(path).size == Image.open(bilinear).size == (scale * w, scale * h)
    assert os.path.basename(path) == f"cat.4093-x{scale}-default.png"


def test_four_x_chains_two_stages(app):
    """4x = 64to128 then 128to256, exactly."""
    from upscaler import load_upscaler

    _, path = app.upscale_by(EXAMPLE, 4, "default")
    img = Image.open(EXAMPLE)
    want = load_upscaler("128to256", dtype=app.server().upscalers["default", "128to256"].dtype)(
        load_upscaler("64to128", dtype=app.server().upscalers["default", "64to128"].dtype)(img))
    assert np.array_equal(np.asarray(Image.open(path)), np.asarray(want))


def test_the_users_file_facts_are_kept(app, tmp_path):
    """ICC profile, DPI and EXIF travel to the result; the orientation is applied once and reset."""
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees
    exif[0x010F] = "TestCam"
    src = tmp_path / "phone.jpg"
    Image.open(EXAMPLE).save(src, exif=exif.tobytes(), dpi=(300, 300), icc_profile=icc)
    _, path = app.upscale_by(str(src), 2, "default")
    out = Image.open(path)
    w, h = Image.open(EXAMPLE).size
    assert out.size == (2 * h, 2 * w)  # rotated by the EXIF orientation
    assert out.info["icc_profile"] == icc and round(out.info["dpi"][0]) == 300
    assert out.getexif()[0x0112] == 1 and out.getexif()[0x010F] == "TestCam"


def test_batch_zips_the_results_and_names_the_refusals(app, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    archive, lines = app.upscale_batch([EXAMPLE, str(bad), str(ROOT / "examples" / "cat.4018.jpg")], 2, "default")
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == ["cat.4018-x2-default.png", "cat.4093-x2-default.png"]
    assert "notes.png: skipped" in lines and "cat.4093.jpg -> cat.4093-x2-default.png: 335x359 -> 670x718" in lines


def test_compare_handler_scores_all_three(app):
    bilinear, learned, truth, metrics = app.compare(EXAMPLE, "64to128", "seed reproduction")
    assert all(isinstance(p, str) and p.startswith(str(app.server().outputs)) for p in (bilinear, learned, truth))
    assert Image.open(bilinear).size == Image.open(learned).size == Image.open(truth).size == (128, 128)
    assert set(metrics) == {"bilinear", "bicubic", "seed"}
    assert all(10 < m["psnr_y_db"] < 60 and 0 < m["ssim_y"] <= 1 for m in metrics.values())
    # LPIPS where the server has its weights (the tests' machine has the shared data)
    assert all(0 <= m["lpips_alex"] < 1 for m in metrics.values())


@pytest.mark.parametrize("args,message", [
    ((None, "64to128"), "Upload an image"),
    ((EXAMPLE, "32to64"), "Unknown stage"),
    ((EXAMPLE, "64to128", "esrgan"), "Unknown model"),
])
def test_bad_arguments_are_readable_errors(app, args, message):
    import gradio as gr

    with pytest.raises(gr.Error, match=message):
        app.compare(*args)


def test_output_limit_is_enforced(app, tmp_path):
    import gradio as gr

    big = tmp_path / "big.png"
    Image.new("RGB", (600, 600)).save(big)  # x8 -> 4800x4800 > 16.8 MP
    with pytest.raises(gr.Error, match="results are limited to 16.8 megapixels"):
        app.upscale(str(big), "64to512", "default")
    with pytest.raises(gr.Error, match="scale must be 2, 4 or 8"):
        app.upscale_by(EXAMPLE, 3, "default")


def test_the_page_checks_on_upload_and_offers_to_shrink(app, tmp_path, monkeypatch):
    from upscaler.images import fit_size

    monkeypatch.setattr(app, "MAX_OUTPUT_PIXELS", 2_000_000)  # a small limit keeps the test quick
    big = tmp_path / "big.png"
    Image.new("RGB", (800, 600), (10, 100, 10)).save(big)
    fw, fh = fit_size((800, 600), 8, 2_000_000)
    _, status, shrink, refused = app.page_check_upload({"path": str(big)}, "8x")
    assert "6400x4800" in status and f"{fw}x{fh}" in status and shrink["visible"] is True
    assert shrink["value"] == f"Shrink to {fw}x{fh} and upscale 8x" and refused == ""  # readable: no refusal
    _, status, shrink, _ = app.page_check_upload({"path": str(big)}, "2x")
    assert "1600x1200" in status and shrink["visible"] is False
    bad = tmp_path / "text.png"
    bad.write_text("hello")
    cleared, status, _, refused = app.page_check_upload({"path": str(bad)}, "2x")
    assert cleared is None and "not an image" in status  # refused on upload, not after the click
    # Upscale pressed now repeats the reason (not "Upload an image first"), on the server and in browser mode
    assert app.page_upscale_pressed(None, "2x", "default", "64to128", 1.0, refused, no_progress)[2] == status
    assert app.page_browser_plan(None, "2x", "default", "64to128", 1.0, refused) == (None, status)
    out = app.page_shrink_and_upscale(str(big), "8x", "default", "64to128", progress=no_progress)
    (_, learned), status = out[0], out[2]
    assert Image.open(learned).size == (fw * 8, fh * 8)
    assert f"shrunk to {fw}x{fh}" in status and "800x600" in status
    assert out[-1] == status  # the note above the result says it too (where a phone shows it)
    # in browser mode, the shrunk copy goes to the browser: the plan says where it is
    out = app.page_shrink_and_upscale(str(big), "8x", "default", "64to128", 1.0, True, progress=no_progress)
    plan = out[-2]
    assert plan["image"] and f"Sent {fw}x{fh} to your browser" in out[2]
    shrunk = Image.open(urllib.parse.unquote(plan["image"].split("file=", 1)[1]))
    assert shrunk.size == (fw, fh) and out[0] == {"__type__": "update"}  # the server's view untouched


def test_a_new_image_clears_old_results_and_gives_size_advice(app):
    *cleared, status, shrink, compare_image, refused = app.page_image_changed({"path": EXAMPLE}, "4x", False,
                                                                               "**Problem:** an earlier file")
    assert cleared == [None, cleared[1], None, None, None, None, ""] and cleared[1]["visible"] is False
    assert "335x359 in; 4x makes 1340x1436" in status and "Press Upscale." in status
    assert compare_image == EXAMPLE  # the Compare tab shows the same photo (and can change it)
    assert refused == ""  # a good image: an earlier refusal is forgotten
    assert "Press Upscale in my browser." in app.page_image_changed({"path": EXAMPLE}, "4x", True)[-4]
    *_, status, _, _, _ = app.page_image_changed(None, "4x", False, "**Problem:** Cannot use this file")
    assert status == {"__type__": "update"}  # emptied by a refused upload: the reason stays
    *_, status, _, _, _ = app.page_image_changed(None, "4x")
    assert status.startswith("Upload an image")  # removed by the visitor: the first prompt


def test_the_page_states_facts_and_errors_in_its_status_line(app):
    slider, download, status, crop_b, crop_l, where, files = app.page_upscale(EXAMPLE, "2x", "default", "64to128",
                                                                              progress=no_progress)
    assert "335x359 -> 670x718" in status and "network" in status and "total" in status and "cpu" in status
    assert download["label"] == "Download cat.4093-x2-default.png"
    assert crop_b.size == crop_l.size == (app.CROP, app.CROP)  # 1:1 crops, same window
    slider, download, status, *_ = app.page_upscale(None, "2x", "default", "64to128", progress=no_progress)
    assert slider is None and "Upload an image" in status and status.startswith("**Problem:**")


class Click:  # what Gradio passes for a click on the input image: (x, y) in its pixels
    def __init__(self, x, y):
        self.index = (x, y)


def test_clicking_the_input_moves_the_1to1_crop(app):
    *_, files = app.page_upscale(EXAMPLE, "4x", "default", "64to128", progress=no_progress)
    crop_b, crop_l, where = app.page_pick_crop(files, Click(10, 12))
    learned = Image.open(files["learned"])
    want = learned.crop((0, 0, app.CROP, app.CROP))  # near the corner: the window is clipped to the image
    assert np.array_equal(np.asarray(crop_l), np.asarray(want))
    # the locator is the input with a red frame at the clicked spot (top left), not elsewhere
    a = np.asarray(where.convert("RGB")).astype(int)
    red = (a[..., 0] > 200) & (a[..., 1] < 60) & (a[..., 2] < 60)
    ys, xs = np.nonzero(red)
    assert red.sum() > 20 and xs.max() < where.width / 2 and ys.max() < where.height / 2


def test_the_crops_start_where_the_detail_is(app, tmp_path):
    # a flat gray photo with one patch of fine checkerboard far from the centre
    a = np.full((300, 400, 3), 128, np.uint8)
    a[220:280, 20:80] = (np.indices((60, 60)).sum(0) % 2 * 255)[..., None]
    path = tmp_path / "flat.png"
    Image.fromarray(a).save(path)
    *_, where, files = app.page_upscale(str(path), "2x", "default", "64to128", progress=no_progress)
    w = np.asarray(where.convert("RGB")).astype(int)
    ys, xs = np.nonzero((w[..., 0] > 200) & (w[..., 1] < 60) & (w[..., 2] < 60))
    sx = where.width / 400  # the locator is a thumbnail
    assert abs(xs.mean() / sx - 50) < 40 and abs(ys.mean() / sx - 250) < 40, (xs.mean() / sx, ys.mean() / sx)


def test_the_crops_start_on_the_cats_face(app):
    from upscaler import focus

    x, y, w, h = focus.find_cat_face(Image.open(EXAMPLE).convert("RGB"))  # cat.4093.jpg faces the camera
    *_, where, files = app.page_upscale(EXAMPLE, "2x", "default", "64to128", progress=no_progress)
    a = np.asarray(where.convert("RGB")).astype(int)
    ys, xs = np.nonzero((a[..., 0] > 200) & (a[..., 1] < 60) & (a[..., 2] < 60))
    s = where.width / Image.open(EXAMPLE).width  # the locator is a thumbnail
    assert x < xs.mean() / s < x + w and y < ys.mean() / s < y + h, (xs.mean() / s, ys.mean() / s, (x, y, w, h))
    plan, _ = app.page_browser_plan(EXAMPLE, "2x", "default", "64to128")
    assert plan["focus"] and x < plan["focus"][0] < x + w  # browser mode's crops start there too


def test_after_shrink_to_fit_a_click_maps_to_the_same_spot(app, tmp_path, monkeypatch):
    # 600x400 at 8x is over a 2-megapixel limit: shrunk to fit; a click on the page's
    # (unshrunk) image must land on the same place of the result
    monkeypatch.setattr(app, "MAX_OUTPUT_PIXELS", 2_000_000)
    a = np.zeros((400, 600, 3), np.uint8)
    a[:, 300:] = 255  # black left half, white right half
    path = tmp_path / "halves.png"
    Image.fromarray(a).save(path)
    out = app.page_shrink_and_upscale(str(path), "8x", "default", "64to128", progress=no_progress)
    status, files = out[2], out[6]
    assert "shrunk" in status
    _, crop_l, _ = app.page_pick_crop(files, Click(450, 200))  # well inside the white half
    assert np.asarray(crop_l.convert("L")).mean() > 240
    _, crop_l, _ = app.page_pick_crop(files, Click(150, 200))  # well inside the black half
    assert np.asarray(crop_l.convert("L")).mean() < 15


def test_settings_changes_clear_the_result_on_screen(app, demo):
    # the scale, the 2x network and the denoise strength each clear results (wired to clear_results)
    cleared = app.clear_results()
    assert cleared[0] is None and cleared[1]["visible"] is False and all(c is None for c in cleared[2:6])
    assert cleared[6] == ""  # the note above the result
    *cleared, denoise, status = app.page_model_changed("seed", EXAMPLE, "2x")
    assert denoise["visible"] is False and cleared == list(app.clear_results())
    assert "Press Upscale." in status and "Done" not in status  # the old result's "Done" goes with it
    assert app.page_model_changed("photo", EXAMPLE, "2x")[-2]["visible"] is True
    assert app.page_model_changed("photo", None, "2x")[-1] == {"__type__": "update"}  # a refusal's reason stays
    *cleared, status = app.page_setting_changed(EXAMPLE, "2x")  # the 2x network or the denoise strength
    assert cleared == list(app.clear_results()) and "Press Upscale." in status  # no stale "Done"
    config = demo.get_config_file()
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    clear_fn = [d for d in config["dependencies"] if d.get("targets") and any(
        ids.get(t[0]) in ("scale", "x2-stage", "strength") for t in d["targets"])]
    cleared_by = {ids.get(t[0]) for d in clear_fn for t in d["targets"] if len(d["outputs"]) in (7, 8)}
    assert {"scale", "x2-stage", "strength"} <= cleared_by, cleared_by


def test_the_page_starts_on_sharp_at_its_page_strength_and_the_api_on_default(app, demo):
    assert app.server().page_model == "sharp"
    config = demo.get_config_file()
    slider = next(c["props"] for c in config["components"] if c.get("props", {}).get("elem_id") == "strength")
    assert slider["value"] == app.FAMILIES["sharp"].page_strength == 0.9 and slider["label"] == "invented detail"
    # the GIF / video tab starts on the model that flickers least (docs/motion.md)
    video = next(c["props"] for c in config["components"] if c.get("props", {}).get("elem_id") == "video-model")
    assert video["value"] == "photo" == app.server().motion_model
    # a model chosen on the page brings its own start; one that does not blend, 1
    assert app.page_model_changed("photo", EXAMPLE, "2x")[-2]["value"] == 1.0
    assert app.page_model_changed("sharp", EXAMPLE, "2x")[-2]["value"] == 0.9
    # the Batch tab runs a model as the page starts it: sharp at 0.9, named so
    archive, status = app.page_batch([EXAMPLE], "2x", "sharp")
    assert archive["value"].endswith("upscaled-x2-sharp-d0.9.zip") and "cat.4093\\-x2\\-sharp\\-d0.9.png" in status
    import inspect

    for fn in (app.upscale, app.upscale_by, app.upscale_batch, app.compare):
        assert inspect.signature(fn).parameters["model"].default == "default"


def test_denoise_strength_blends_photo_with_default(app):
    outs = {}
    for model, strength in (("default", 1.0), ("photo", 1.0), ("photo", 0.0), ("photo", 0.5)):
        (_, learned), _ = app.upscale_by(EXAMPLE, 2, model, strength)
        outs[model, strength] = np.asarray(Image.open(learned)).astype(int)
    # strength 0 is the clean model; 1 the photo model; 0.5 in between
    assert np.abs(outs["photo", 0.0] - outs["default", 1.0]).max() <= 1
    d_ends = np.abs(outs["photo", 1.0] - outs["default", 1.0]).mean()
    d_mid = np.abs(outs["photo", 0.5] - outs["default", 1.0]).mean()
    assert 0.2 * d_ends < d_mid < 0.8 * d_ends, (d_mid, d_ends)
    assert app.server().blend.cache_info().currsize >= 1  # the blend is kept for the next request
    with pytest.raises(app.gr.Error, match="blends a model with its twin: photo"):
        app.upscale_by(EXAMPLE, 2, "default", 0.5)
    with pytest.raises(app.gr.Error, match="from 0 to 1"):
        app.upscale_by(EXAMPLE, 2, "photo", 1.5)


def test_the_strength_that_runs_is_the_one_reported(app):
    """One rounding rule (models.blend_strength, to 0.01): 0.37 runs as 0.37, and the file
    names it; the model's own strength (1) is not in the name; two strengths never collide."""
    (_, learned), path = app.upscale_by(EXAMPLE, 2, "photo", 0.37)
    assert os.path.basename(path) == "cat.4093-x2-photo-d0.37.png"
    assert app.server().blend("photo", "64to128", 0.37).model == "photo (denoise strength 0.37)"
    _, path1 = app.upscale_by(EXAMPLE, 2, "photo", 1.0)
    assert os.path.basename(path1) == "cat.4093-x2-photo.png"
    *_, status, _, _, _, _ = app.page_upscale(EXAMPLE, "2x", "photo", "64to128", 0.35, progress=no_progress)
    assert "denoise strength 0.35" in status
    archive, _ = app.upscale_batch([EXAMPLE], 2, "photo", 0.3)
    assert os.path.basename(archive) == "upscaled-x2-photo-d0.3.zip"


def test_compare_page_shows_every_image_and_a_table(app):
    gallery, table, status = app.page_compare_models(EXAMPLE, "64to128", list(app.FAMILIES))
    captions = [c for _, c in gallery]
    assert captions[0].startswith("the small input") and captions[-1].startswith("ground truth")
    assert "bicubic" in captions and "learned: seed reproduction" in captions
    assert "learned: clean (sharp sources)" in captions and "learned: photo (JPEG, noise)" in captions
    assert "PSNR, dB (higher is better)" in table and "LPIPS (lower = closer to the original, as people judge)" in table
    assert table.count("**") == 6  # the best PSNR, SSIM and LPIPS marked


def test_old_outputs_are_removed(app):
    """Each request writes its files; those older than OUTPUT_TTL go on the next request."""
    _, first = app.upscale(EXAMPLE, "64to128", "default")
    first_dir = os.path.dirname(first)
    old = os.path.getmtime(first_dir) - app.OUTPUT_TTL - 1
    os.utime(first_dir, (old, old))
    _, second = app.upscale(EXAMPLE, "64to128", "default")
    assert not os.path.exists(first) and os.path.exists(second)
    assert os.path.dirname(os.path.dirname(second)) == str(app.server().outputs)


def test_every_job_shares_one_concurrency_limit(app, demo):
    fns = [fn for fn in demo.fns.values() if fn.concurrency_id == "model"]
    names = {fn.api_name for fn in fns}
    assert {"upscale", "upscale_by", "upscale_batch", "compare"} <= names
    assert len(fns) >= 8  # the four API endpoints and the page's four buttons
    assert all(fn.concurrency_limit == "default" for fn in fns)  # the queue's:
    assert demo._queue.default_concurrency_limit == app.CONCURRENCY


@pytest.mark.slow  # a subprocess
def test_importing_the_app_does_no_heavy_work():
    """``import app`` reads settings only: no networks loaded, no torch threads, no folders,
    no allocator tuning; ``create_app()`` does all of that once, then builds the page."""
    code = ("import threading, app; "
            "print(app._server is None, any(t.name.startswith('torch') for t in threading.enumerate())); "
            "demo = app.create_app(); "
            "print(app._server is not None, len(app.server().upscalers), app.create_app() is not demo, "
            "app.server() is app.server())")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    before, after = p.stdout.strip().splitlines()[-2:]
    assert before == "True False"
    # every model x 4 stages, loaded once however often the page is built
    assert after == f"True {len(FAMILIES) * 4} True True"


def test_the_page_styles_and_browser_view_come_from_web(app, demo):
    """The CSS and HTML live in web/, not in the Python, and reach the page."""
    assert "#upscale-slider" in (ROOT / "web" / "page.css").read_text()
    html = (ROOT / "web" / "browser_view.html").read_text()
    assert 'id="bm-status"' in html
    config = demo.get_config_file()
    values = [c.get("props", {}).get("value") for c in config["components"]]
    assert any(isinstance(v, str) and 'id="bm-status"' in v for v in values)


def test_the_checked_upload_uses_the_ordinary_image_frontend(app, demo):
    """CheckedImage picks Gradio's Image frontend through the public ``get_block_name``."""
    assert app.CheckedImage().get_block_name() == gr_image_block_name() == "image"
    config = demo.get_config_file()
    upload = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "input-image")
    assert upload["type"] == "image"


def gr_image_block_name():
    import gradio as gr

    return gr.Image().get_block_name()


# --------------------------------------------------------------- gradio_client, live
@pytest.fixture(scope="module")
def live(live_app):
    url, _, log = live_app
    return url, log


@pytest.mark.slow
def test_client_upscale_x8(live):
    from gradio_client import Client, handle_file

    url, _ = live
    client = Client(url, verbose=False)
    (bilinear, learned), download = client.predict(handle_file(EXAMPLE), "64to512", api_name="/upscale")
    w, h = Image.open(EXAMPLE).size
    for p in (bilinear, learned, download):
        img = Image.open(p)
        assert img.format == "PNG" and img.size == (8 * w, 8 * h)


@pytest.mark.slow
def test_the_download_is_served_from_the_apps_folder(live):
    """Results are served where the app wrote them (a Gradio static path, no copy into
    Gradio's cache), whole, at the URL the client gets; the app's pruning (OUTPUT_TTL)
    is then the link's lifetime."""
    from gradio_client import Client, handle_file

    url, _ = live
    _, download = Client(url, verbose=False, download_files=False).predict(
        handle_file(EXAMPLE), "64to128", api_name="/upscale")
    assert download["path"].endswith("cat.4093-x2-default.png")
    assert "upscaler-outputs-" in download["path"], download["path"]
    body = urllib.request.urlopen(download["url"], timeout=30).read()
    with open(download["path"], "rb") as f:
        assert body == f.read()
    w, h = Image.open(EXAMPLE).size
    assert Image.open(io.BytesIO(body)).size == (2 * w, 2 * h)


@pytest.mark.slow
def test_client_compare_and_parameter_names(live, tmp_path):
    from gradio_client import Client, handle_file

    url, _ = live
    client = Client(url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    names = {e: [p["parameter_name"] for p in api[e]["parameters"]] for e in api}
    assert names["/upscale"] == ["image", "stage", "model", "denoise_strength"]
    assert names["/compare"] == ["image", "stage", "model", "condition"]
    assert names["/upscale_by"] == ["image", "scale", "model", "denoise_strength"]
    assert names["/upscale_batch"] == ["images", "scale", "model", "denoise_strength"]
    assert names["/upscale_video"] == ["video", "scale", "model", "denoise_strength"]
    # the page's events are private
    assert set(api) == {"/upscale", "/upscale_by", "/upscale_batch", "/compare", "/upscale_video"}
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (40, 30), (200, 10, 10, 128)).save(rgba)
    (bilinear, learned), download = client.predict(handle_file(str(rgba)), "128to256", api_name="/upscale")
    assert Image.open(learned).mode == "RGBA" and Image.open(learned).size == (80, 60)
    b, l, t, metrics = client.predict(handle_file(EXAMPLE), stage="256to512", model="seed", api_name="/compare")
    assert all(Image.open(p).size == (512, 512) for p in (b, l, t))
    assert set(metrics) == {"bilinear", "bicubic", "seed"}


@pytest.mark.slow
def test_page_says_where_the_weights_came_from(live):
    url, _ = live
    config = json.loads(urllib.request.urlopen(url + "config").read())
    texts = json.dumps(config)
    assert "Offline (HF_HUB_OFFLINE=1): serving the bundled weights" in texts
    assert "megapixels" in texts  # the limits are on the page


@pytest.mark.slow
def test_a_bad_setting_stops_the_server_with_a_message():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "UPSCALER_DTYPE": "float8"}
    p = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0 and "UPSCALER_DTYPE='float8': use float32, bfloat16 or float16" in p.stderr
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "UPSCALER_BACKEND": "tensorrt"}
    p = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0 and "UPSCALER_BACKEND='tensorrt': use auto, torch, openvino, onnxruntime" in p.stderr


@pytest.mark.slow
def test_dtype_setting_reaches_every_network():
    code = "import app; print(sorted({str(u.dtype) for u in app.server().upscalers.values()}))"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "UPSCALER_DTYPE": "float32"}
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.stdout.strip().splitlines()[-1] == "['torch.float32']", p.stderr[-2000:]


# ------------------------------------------------------------ weights at start-up
@pytest.mark.slow
def test_unreachable_hub_falls_back_to_the_bundled_weights():
    env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "UPSCALER_REPO_ID": "me/cats",
           "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2"}
    with running_app(env) as (url, proc, log):
        config = json.dumps(json.loads(urllib.request.urlopen(url + "config").read()))
        assert "Could not use the Hub weights (me/cats@v1)" in config and "bundled weights instead" in config
        from gradio_client import Client, handle_file

        _, download = Client(url, verbose=False).predict(handle_file(EXAMPLE), "64to128", api_name="/upscale")
        assert Image.open(download).size[0] == 2 * Image.open(EXAMPLE).size[0]


@pytest.mark.slow
def test_hub_weights_are_used_and_a_corrupt_file_falls_back(tmp_path, tiny_weights):
    hub, hub_url, server = serve()
    try:
        env = {"HF_ENDPOINT": hub_url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
               "UPSCALER_REPO_ID": "me/cats", "UPSCALER_REVISION": "v1"}
        code = f"from upscaler.hub import push_weights; push_weights({str(tiny_weights)!r}, 'me/cats', revision='v1')"
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, check=True)
        with running_app(env) as (url, proc, log):
            config = json.dumps(json.loads(urllib.request.urlopen(url + "config").read()))
            assert "Weights from the Hub: me/cats@v1" in config
        # now a garbage model.safetensors at the same revision
        hub.commit("me/cats", "v1", {"default/64to128/model.safetensors": b"\x00" * 64})
        env["HF_HOME"] = str(tmp_path / "hf2")
        with running_app(env) as (url, proc, log):
            config = json.dumps(json.loads(urllib.request.urlopen(url + "config").read()))
            assert "Some weights from the Hub (me/cats@v1), the rest bundled" in config
            assert "do not load" in app_log(log)
            from gradio_client import Client, handle_file

            _, download = Client(url, verbose=False).predict(handle_file(EXAMPLE), "64to128", api_name="/upscale")
            out = np.asarray(Image.open(download), np.float32)
            assert out.std() > 10  # a real picture, not garbage
    finally:
        server.shutdown()


@pytest.mark.slow
def test_the_api_pages_own_examples_run(live, tmp_path):
    """Every endpoint called with the example values Gradio's "Use via API" page generates
    (a local image, or a local GIF for /upscale_video, in place of its example URL); and the
    scale as the page documents it ("2"), as "2x" and as 2."""
    from gradio_client import Client, handle_file
    from motion_files import animation

    url, _ = live
    client = Client(url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    gif = animation(tmp_path / "cat.gif", "GIF")
    for endpoint, info in api.items():
        args = []
        for p in info["parameters"]:
            example = p["example_input"]
            files = example if isinstance(example, list) else [example]
            for f in files:  # the page's example is a file this endpoint takes, not Gradio's sample PDF
                if isinstance(f, dict) and "url" in f:
                    assert f["url"].endswith(".mp4" if endpoint == "/upscale_video" else ".png"), (endpoint, f)
            if isinstance(example, dict) and "url" in example:  # a file
                example = handle_file(str(gif if endpoint == "/upscale_video" else EXAMPLE))
            elif isinstance(example, list):
                example = [handle_file(EXAMPLE)]
            args.append(example)
        assert all(p["label"] == p["parameter_name"] for p in info["parameters"]), endpoint  # no parameter_56
        client.predict(*args, api_name=endpoint)  # raises AppError if the server refuses
    for scale in ("2", "2x", 2):
        _, download = client.predict(handle_file(EXAMPLE), scale, model="clean", api_name="/upscale_by")
        assert download.endswith("cat.4093-x2-clean.png") and Image.open(download).width == 670


@pytest.mark.slow
def test_readme_client_examples(live, tmp_path):
    """The README's gradio_client block, run as written against a live server (only the
    URL and the file names are pointed at this test's)."""
    import re

    url, _ = live
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### From a program (`gradio_client`)")[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    from motion_files import animation

    gif = animation(tmp_path / "cat.gif", "GIF")
    code = (code.replace('"http://127.0.0.1:7860/"', repr(url))
                .replace('"cat.jpg"', repr(EXAMPLE))
                .replace('"cat2.jpg"', repr(str(ROOT / "examples" / "cat.4018.jpg")))
                .replace('"cat.gif"', repr(str(gif))))
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    w, h = Image.open(EXAMPLE).size
    assert Image.open(scope["learned_file"]).size == (8 * w, 8 * h)  # the last /upscale: 64to512
    assert Image.open(scope["bilinear"]).size == (256, 256)  # /compare at 128to256: 256 px ground truth
    with zipfile.ZipFile(scope["archive"]) as z:
        assert sorted(z.namelist()) == ["cat.4018-x2-default.png", "cat.4093-x2-default.png"]
    assert set(scope["metrics"]) == {"bilinear", "bicubic", "seed"}
    clip = Image.open(scope["clip_file"])
    assert clip.n_frames == 6 and clip.size == (100, 80) and "6 frames" in scope["clip_report"]


def test_a_batch_keeps_two_files_of_the_same_name(app, tmp_path):
    # cat.png from two folders: two results in the zip, neither overwriting the other
    paths = []
    for folder, colour in (("a", (200, 30, 30)), ("b", (30, 30, 200))):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (40, 30), colour).save(tmp_path / folder / "cat.png")
        paths.append(str(tmp_path / folder / "cat.png"))
    archive, lines = app.upscale_batch(paths, 2, "default")
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        assert len(names) == 2 and len(set(n.lower() for n in names)) == 2, names
        reds = sorted(np.asarray(Image.open(z.open(n)))[..., 0].mean() for n in names)
    assert reds[0] < 60 and reds[1] > 150  # both images, not one twice
    # the report says which input became which file
    assert lines.splitlines()[0].startswith("cat.png -> cat-x2-default.png:")
    assert lines.splitlines()[1].startswith("cat.png -> cat-x2-default-2.png:")


def test_compare_can_make_the_input_look_like_a_jpeg(app):
    clean = app.compare(EXAMPLE, "64to128", "default", "clean")
    jpeg = app.compare(EXAMPLE, "64to128", "default", "jpeg30")
    assert jpeg[3]["bicubic"]["psnr_y_db"] < clean[3]["bicubic"]["psnr_y_db"] - 0.5  # a harsher input
    assert Image.open(jpeg[2]).tobytes() == Image.open(clean[2]).tobytes()  # the same clean truth
    with pytest.raises(app.gr.Error, match="unknown input condition"):
        app.compare(EXAMPLE, "64to128", "default", "jpeg12")


def test_names_in_the_batch_report_are_text_not_markup(app):
    # a name that reaches the page with its markup (Gradio's upload strips < and >, the API
    # may not) is escaped for the Markdown component, so it shows as the characters it has
    text = app._as_text("<img src=x onerror=alert(1)>.png: skipped, *not* an [image](x)")
    assert "<" not in text and ">" not in text.replace("&gt;", "")
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;" in text and "\\*not\\*" in text and "\\[image\\]" in text


# ------------------------------------------------------------------ GIF / video
def test_video_and_gif_handlers_keep_timing_and_sound(app, tmp_path):
    import av
    from motion_files import animation, clip

    gif = animation(tmp_path / "cat.gif", "GIF")
    download, bilinear, learned, result = app.upscale_video(str(gif), 2, "photo", 0.5)
    assert os.path.basename(download) == "cat-x2-photo-d0.5.gif"
    assert Image.open(download).n_frames == 6
    assert Image.open(bilinear).size == Image.open(learned).size == (100, 80)
    mp4 = clip(tmp_path / "clip.mp4", n=12)
    path, report = app._video_for_api(str(mp4), "4x", "default")
    with av.open(path) as c:
        assert c.streams.video[0].codec_context.width == 256 and c.streams.audio
        assert sum(1 for _ in c.decode(video=0)) == 12
    assert "12 frames" in report
    with pytest.raises(app.gr.Error, match="still image"):
        app.upscale_video(EXAMPLE, 2)


def test_the_video_tab_reports_progress_and_cancels(app, tmp_path):
    from motion_files import clip

    mp4 = clip(tmp_path / "clip.mp4", n=20, audio=False)
    heard = []

    class Request:
        session_hash = "tab-test"

    frame, download, status = app.page_video(str(mp4), "2x", "default", request=Request(),
                                             progress=lambda *a, **k: heard.append(a))
    assert frame[0].endswith("first-frame-bilinear.png") and download["visible"] and status.startswith("Done: 20 frames")
    assert len(heard) >= 20  # a report per frame
    # a Cancel from the same session, pressed while the job runs, stops it between frames
    def cancelling(*a, **k):
        app.page_video_cancel(Request())

    frame, download, status = app.page_video(str(mp4), "2x", "default", request=Request(), progress=cancelling)
    assert frame is None and download["visible"] is False and "Cancelled: nothing was written" in status
    assert app.page_video_cancel(Request()) == "Nothing is running."
