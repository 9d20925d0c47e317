"""The evaluation protocol: pairs, classical baselines, scoring, the table."""
import pytest
from conftest import SHARED_DATA
from PIL import Image

from upscaler import protocol
from upscaler.pipeline import chain
from upscaler.stages import STAGES


def test_eval_pair_is_the_fixed_protocol():
    img = Image.effect_noise((500, 374), 60).convert("RGB")
    for st in STAGES.values():
        lr, hr = protocol.eval_pair(img, st)
        assert lr.size == (st.input_size,) * 2 and hr.size == (st.output_size,) * 2
    # the ground truth is the centre square at 512, and every stage's input comes from it
    gt = protocol.centre_square(img).resize((512, 512), Image.BICUBIC)
    assert protocol.eval_pair(img, STAGES["64to512"])[1].tobytes() == gt.tobytes()
    assert protocol.eval_pair(img, STAGES["64to128"])[0].tobytes() == gt.resize((64, 64), Image.BICUBIC).tobytes()


def test_centre_square():
    img = Image.new("RGB", (30, 10))
    img.paste((255, 0, 0), (10, 0, 20, 10))
    sq = protocol.centre_square(img)
    assert sq.size == (10, 10) and sq.getpixel((5, 5)) == (255, 0, 0)


def test_classical_and_chain():
    img = Image.new("RGB", (7, 5), (9, 9, 9))
    assert protocol.classical("bicubic", 4)(img).size == (28, 20)
    twice = chain(protocol.classical("bilinear", 2), protocol.classical("bilinear", 2))
    assert twice(img).size == (28, 20)


def test_bicubic_reproduces_the_published_set5_row():
    """With this protocol, PIL bicubic scores Set5 x2 at 33.66 dB (published: 33.66)."""
    pairs = []
    for f in sorted((SHARED_DATA / "benchmarks" / "Set5").glob("*.png")):
        hr = Image.open(f).convert("RGB")
        hr = hr.crop((0, 0, hr.width - hr.width % 2, hr.height - hr.height % 2))
        pairs.append((hr.resize((hr.width // 2, hr.height // 2), Image.BICUBIC), hr))
    assert protocol.score(protocol.classical("bicubic", 2), pairs, 2)["psnr"] == pytest.approx(33.66, abs=0.02)


def test_classical_scores_and_table():
    img = Image.effect_noise((200, 160), 30).convert("RGB")
    pairs = [protocol.eval_pair(img, STAGES["64to128"])]
    scores = protocol.classical_scores(pairs, 2)
    assert set(scores) == {"bilinear", "bicubic"} and scores["bicubic"]["psnr"] > 0
    table = protocol.format_table({"stages": {"64to128": scores, "64to512": {"bicubic": scores["bicubic"]}}})
    lines = table.splitlines()
    assert lines[0] == "| method | 64to128 PSNR / SSIM | 64to512 PSNR / SSIM |"
    assert lines[2].startswith("| bilinear | ") and lines[2].endswith(" |  |")  # no 64to512 bilinear: empty cell


def test_image_files(tmp_path):
    for name in ("b.JPG", "a.png", "notes.txt", "c.webp"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "dir.png").mkdir()
    assert [p.name for p in protocol.image_files(tmp_path)] == ["a.png", "b.JPG", "c.webp"]
