"""Where the 1:1 crops look (upscaler/focus.py): the cat's face, else the detail."""
import numpy as np
from conftest import ROOT
from PIL import Image

from upscaler import focus

FACE = ROOT / "examples" / "cat.4093.jpg"  # a cat looking at the camera


def test_the_face_is_found_on_the_example_and_the_crop_centres_on_its_eyes():
    img = Image.open(FACE).convert("RGB")
    x, y, w, h = focus.find_cat_face(img)
    assert 0 <= x and 0 <= y and x + w <= img.width + 1 and y + h <= img.height + 1
    assert w >= focus.MIN_FACE * min(img.size)
    (cx, cy), how = focus.crop_centre(img, 128)
    assert how == "face" and x < cx < x + w and y < cy < y + h / 2 + 1  # the upper half: the eyes


def test_no_face_falls_back_to_the_most_detailed_spot():
    a = np.full((300, 400, 3), 128, np.uint8)
    a[220:280, 20:80] = (np.indices((60, 60)).sum(0) % 2 * 255)[..., None]
    (cx, cy), how = focus.crop_centre(Image.fromarray(a), 60)
    assert how == "detail" and abs(cx - 50) < 30 and abs(cy - 250) < 30


def test_without_opencv_every_photo_uses_the_detail_rule(monkeypatch):
    monkeypatch.setattr(focus, "_detector", lambda name=None: None)
    assert focus.find_cat_face(Image.open(FACE)) is None
    assert focus.crop_centre(Image.open(FACE).convert("RGB"), 128)[1] == "detail"


def test_a_detector_failure_costs_only_the_face(monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("cv2 exploded")
    monkeypatch.setattr(focus, "find_cat_face", broken)
    assert focus.crop_centre(Image.open(FACE).convert("RGB"), 128)[1] == "detail"
