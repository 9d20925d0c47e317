"""The demo: handlers called directly, and gradio_client against `python app.py`."""
import json
import os
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
from PIL import Image

from helpers import app_log, running_app
from conftest import ROOT
from hub_server import serve

os.environ["HF_HUB_OFFLINE"] = "1"  # the in-process app must never look for the network
EXAMPLE = str(ROOT / "examples" / "cat.4093.jpg")


@pytest.fixture(scope="module")
def app():
    import app as app_module

    return app_module


# ----------------------------------------------------------------- handlers, direct
def test_upscale_handler_returns_both_images_at_the_output_size(app):
    (bilinear, learned), path = app.upscale(EXAMPLE, "128to256", "default", progress=lambda *a, **k: None)
    w, h = Image.open(EXAMPLE).size
    # Files, not PIL images: Gradio copies a file into its cache atomically, but rewrites a
    # PIL image in place, where a second user fetching the same result can read an empty file.
    assert all(isinstance(p, str) and p.startswith(str(app.OUTPUTS)) for p in (bilinear, learned, path))
    assert Image.open(bilinear).size == Image.open(learned).size == (2 * w, 2 * h)
    saved = Image.open(path)
    assert saved.format == "PNG" and saved.size == (2 * w, 2 * h)


def test_compare_handler_scores_all_three(app):
    bilinear, learned, truth, metrics = app.compare(EXAMPLE, "64to128", "seed reproduction")
    assert all(isinstance(p, str) and p.startswith(str(app.OUTPUTS)) for p in (bilinear, learned, truth))
    assert Image.open(bilinear).size == Image.open(learned).size == Image.open(truth).size == (128, 128)
    assert set(metrics) == {"bilinear", "bicubic", "seed"}
    assert all(10 < m["psnr_y_db"] < 60 and 0 < m["ssim_y"] <= 1 for m in metrics.values())


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
    with pytest.raises(gr.Error, match="the limit is"):
        app.upscale(str(big), "64to512", "default", progress=lambda *a, **k: None)


def test_old_outputs_are_removed(app):
    """Each request writes its PNGs; those older than OUTPUT_TTL go on the next request."""
    _, first = app.upscale(EXAMPLE, "64to128", "default", progress=lambda *a, **k: None)
    first_dir = os.path.dirname(first)
    old = os.path.getmtime(first_dir) - app.OUTPUT_TTL - 1
    os.utime(first_dir, (old, old))
    _, second = app.upscale(EXAMPLE, "64to128", "default", progress=lambda *a, **k: None)
    assert not os.path.exists(first) and os.path.exists(second)
    assert os.path.dirname(os.path.dirname(second)) == str(app.OUTPUTS)


def test_both_buttons_share_one_concurrency_limit(app):
    fns = {fn.api_name: fn for fn in app.demo.fns.values()}
    assert fns["upscale"].concurrency_id == fns["compare"].concurrency_id
    assert fns["upscale"].concurrency_limit == fns["compare"].concurrency_limit == "default"  # the queue's:
    assert app.demo._queue.default_concurrency_limit == app.CONCURRENCY


# --------------------------------------------------------------- gradio_client, live
@pytest.fixture(scope="module")
def live():
    with running_app({"HF_HUB_OFFLINE": "1"}) as (url, proc, log):
        yield url, log


def test_client_upscale_x8(live):
    from gradio_client import Client, handle_file

    url, _ = live
    client = Client(url, verbose=False)
    (bilinear, learned), download = client.predict(handle_file(EXAMPLE), "64to512", api_name="/upscale")
    w, h = Image.open(EXAMPLE).size
    for p in (bilinear, learned, download):
        img = Image.open(p)
        assert img.format == "PNG" and img.size == (8 * w, 8 * h)


def test_the_download_is_served_from_gradios_cache(live):
    """The app prunes its own output folder; what a client fetches must not live there."""
    from gradio_client import Client, handle_file

    url, _ = live
    _, download = Client(url, verbose=False, download_files=False).predict(
        handle_file(EXAMPLE), "64to128", api_name="/upscale")
    assert download["path"].endswith("upscaled-x2-default.png")
    assert "upscaler-outputs-" not in download["path"], download["path"]


def test_client_compare_and_parameter_names(live, tmp_path):
    from gradio_client import Client, handle_file

    url, _ = live
    client = Client(url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert [p["parameter_name"] for p in api["/upscale"]["parameters"]] == ["image", "stage", "model"]
    assert [p["parameter_name"] for p in api["/compare"]["parameters"]] == ["image", "stage", "model"]
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (40, 30), (200, 10, 10, 128)).save(rgba)
    (bilinear, learned), download = client.predict(handle_file(str(rgba)), "128to256", api_name="/upscale")
    assert Image.open(learned).mode == "RGBA" and Image.open(learned).size == (80, 60)
    b, l, t, metrics = client.predict(handle_file(EXAMPLE), stage="256to512", model="seed", api_name="/compare")
    assert all(Image.open(p).size == (512, 512) for p in (b, l, t))
    assert set(metrics) == {"bilinear", "bicubic", "seed"}


def test_page_says_where_the_weights_came_from(live):
    url, _ = live
    config = json.loads(urllib.request.urlopen(url + "config").read())
    texts = json.dumps(config)
    assert "Offline (HF_HUB_OFFLINE=1): serving the bundled weights" in texts
    assert "megapixels" in texts  # the limits are on the page


def test_a_bad_setting_stops_the_server_with_a_message():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "UPSCALER_DTYPE": "float8"}
    p = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0 and "UPSCALER_DTYPE='float8': use float32, bfloat16 or float16" in p.stderr


def test_dtype_setting_reaches_every_network():
    code = "import app; print(sorted({str(u.dtype) for u in app.UPSCALERS.values()}))"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "UPSCALER_DTYPE": "float32"}
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.stdout.strip().splitlines()[-1] == "['torch.float32']", p.stderr[-2000:]


# ------------------------------------------------------------ weights at start-up
def test_unreachable_hub_falls_back_to_the_bundled_weights():
    env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "UPSCALER_REPO_ID": "me/cats",
           "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2"}
    with running_app(env) as (url, proc, log):
        config = json.dumps(json.loads(urllib.request.urlopen(url + "config").read()))
        assert "Could not use the Hub weights (me/cats@v1)" in config and "bundled weights instead" in config
        from gradio_client import Client, handle_file

        _, download = Client(url, verbose=False).predict(handle_file(EXAMPLE), "64to128", api_name="/upscale")
        assert Image.open(download).size[0] == 2 * Image.open(EXAMPLE).size[0]


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
            assert "Serving the bundled weights instead" in config
            assert "do not load" in app_log(log)
            from gradio_client import Client, handle_file

            _, download = Client(url, verbose=False).predict(handle_file(EXAMPLE), "64to128", api_name="/upscale")
            out = np.asarray(Image.open(download), np.float32)
            assert out.std() > 10  # a real picture, not garbage
    finally:
        server.shutdown()
