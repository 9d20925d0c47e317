"""The one pipeline: scale -> stages, chaining, and the one way a file is upscaled."""
import pytest
from conftest import ROOT, perturbed
from PIL import Image

from upscaler.images import ImageRejected
from upscaler.inference import Upscaler
from upscaler.models import FAMILIES
from upscaler.pipeline import Pipeline, chain, parse_scale, upscale_file

EXAMPLE = ROOT / "examples" / "cat.4093.jpg"


def test_pipelines():
    assert Pipeline.for_scale(2).stages == ("64to128",)
    assert Pipeline.for_scale("4x").stages == ("64to128", "128to256")
    assert Pipeline.for_scale(8).stages == ("64to512",)
    assert Pipeline.for_scale(2, "256to512").stages == ("256to512",)
    assert Pipeline.for_stage("128to256") == Pipeline(2, ("128to256",))
    for bad in (3, "big", 16):
        with pytest.raises(ImageRejected, match="scale must be 2, 4 or 8"):
            Pipeline.for_scale(bad)
    with pytest.raises(ImageRejected, match="2x network"):
        Pipeline.for_scale(2, "64to512")




def test_scales_are_read_as_the_api_page_documents_them():
    assert [parse_scale(v) for v in (2, "2", "2x", "4X", " 8 ")] == [2, 2, 2, 4, 8]


def test_chain_reports_the_whole_progress():
    heard = []

    def double(img, progress=None):
        if progress:
            progress(1, 1)
        return img.resize((img.width * 2, img.height * 2))

    out = chain(double, double, progress=heard.append)(Image.new("RGB", (3, 5)))
    assert out.size == (12, 20) and heard == [0.5, 1.0]


def test_upscale_file_keeps_facts_and_writes_whole(tmp_path):
    src = tmp_path / "in.png"
    Image.new("RGB", (20, 12), (200, 10, 10)).save(src, dpi=(300, 300))
    up = Upscaler(perturbed(FAMILIES["default"].two_x(), seed=1), "64to128", dtype="float32")
    done = upscale_file(src, [up], tmp_path / "out.png", max_input_pixels=10**6, max_output_pixels=10**6)
    out = Image.open(done.path)
    assert out.size == (40, 24) and round(out.info["dpi"][0]) == 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]
    with pytest.raises(ImageRejected, match="results are limited to"):
        upscale_file(src, [up], tmp_path / "big.png", max_input_pixels=10**6, max_output_pixels=100)
    assert not (tmp_path / "big.png").exists()
