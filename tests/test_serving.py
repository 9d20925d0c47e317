"""One demo request without the UI: names, the page's files, crops, tables, zips."""
import zipfile

import pytest
from conftest import ROOT, perturbed
from PIL import Image

from upscaler import serving
from upscaler.images import ImageRejected
from upscaler.inference import Upscaler
from upscaler.models import FAMILIES
from upscaler.pipeline import Pipeline

EXAMPLE = ROOT / "examples" / "cat.4093.jpg"


def test_download_names():
    assert serving.download_name("/tmp/gradio/abc/My Cat.jpeg", 4, "default") == "My_Cat-x4-default.png"
    assert serving.download_name("", 2, "seed") == "image-x2-seed.png"
    # a blend strength other than the model itself is part of the name: no two collide
    names = {serving.download_name("cat.4093.jpg", 8, "photo", s) for s in (None, 0.3, 0, 0.37)}
    assert names == {"cat.4093-x8-photo.png", "cat.4093-x8-photo-d0.3.png", "cat.4093-x8-photo-d0.png",
                     "cat.4093-x8-photo-d0.37.png"}


def test_upscale_upload_chains_and_reports(tmp_path):
    ups = [Upscaler(perturbed(FAMILIES["default"].two_x(), seed=i), s, dtype="float32")
           for i, s in enumerate(("64to128", "128to256"))]
    r = serving.upscale_upload(EXAMPLE, Pipeline.for_scale(4), ups, "default", tmp_path, 10**8, 10**8)
    assert r.input_size == (335, 359) and r.output_size == (1340, 1436)
    assert Image.open(r.download).size == Image.open(r.bilinear).size == (1340, 1436)
    assert r.network_seconds <= r.total_seconds and r.device == "cpu"
    assert "335x359 -> 1340x1436 (x4)" in r.summary("default")
    with pytest.raises(ImageRejected, match="shrink it first, or use a smaller scale"):
        serving.upscale_upload(EXAMPLE, Pipeline.for_scale(4), ups, "default", tmp_path, 10**8, 10**6)
    r = serving.upscale_upload(EXAMPLE, Pipeline.for_scale(4), ups, "default", tmp_path, 10**8, 10**6,
                               shrink_to_fit=True)
    assert r.shrunk_from == (335, 359) and r.output_size[0] * r.output_size[1] <= 10**6
    assert "it was shrunk to" in r.summary("default")


def test_crops_are_the_same_window_at_full_resolution(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.effect_noise((300, 200), 50).convert("RGB").save(a)
    Image.effect_noise((300, 200), 50).convert("RGB").save(b)
    crops = serving.crop_1to1({"a": a, "b": b}, (290, 5), 64)  # near a corner: clipped inside
    assert crops["a"].size == crops["b"].size == (64, 64)
    assert crops["a"].tobytes() == Image.open(a).crop((236, 0, 300, 64)).tobytes()


def test_metrics_table_marks_the_best():
    table = serving.metrics_table({"bilinear": {"psnr": 30.0, "ssim": 0.9},
                                   "net": {"psnr": 31.5, "ssim": 0.89}}, {"net": "learned: net"})
    assert "| learned: net | **31.50** | 0.8900 |" in table and "| bilinear | 30.00 | **0.9000** |" in table
    assert "higher is better" in table and "LPIPS" not in table  # not measured: no column
    table = serving.metrics_table({"bilinear": {"psnr": 30.0, "ssim": 0.9, "lpips": 0.40},
                                   "net": {"psnr": 31.5, "ssim": 0.89, "lpips": 0.30}})
    assert "| net | **31.50** | 0.8900 | **0.300** |" in table  # the lowest LPIPS is the best


def test_zip_and_output_dirs(tmp_path):
    files = []
    for name in ("x.png", "y.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
        files.append(tmp_path / name)
    archive, names = serving.zip_files([*files, files[0]], tmp_path, "out.zip")
    assert names == ["x.png", "y.png", "x-2.png"]
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == ["x-2.png", "x.png", "y.png"]


def test_an_animation_on_the_still_path_says_so(tmp_path):
    """The Upscale tab upscales a still: an animated GIF's first frame, and the status says so."""
    from motion_files import animation

    gif = animation(tmp_path / "anim.gif", "GIF")
    ups = [Upscaler(perturbed(FAMILIES["default"].two_x(), seed=1), "64to128", dtype="float32")]
    r = serving.upscale_upload(gif, Pipeline.for_scale(2), ups, "default", tmp_path, 10**8, 10**8)
    assert r.frames == 6 and "animation of 6 frames: this is its first frame" in r.summary("clean")
