"""Where the demo's 1:1 crops look: on the cat's face when one is found, else on the spot
with the most detail.

The reference design judges its results "especially around the eyes of the cats", and a
crop on a card edge or a cage corner shows nothing of that. Faces are found with OpenCV's
two cat-face Haar cascades (``haarcascade_frontalcatface_extended.xml``, then
``haarcascade_frontalcatface.xml`` where the first finds none), shipped inside the
``opencv-python-headless`` 4.x wheels (OpenCV 5 dropped the cascades from its main wheel).
Its hit rate and time on cats/val, and a dozen examples: ``benchmarks/faces.py`` and
``docs/faces.md``. Where OpenCV or the cascade is missing, every photo falls back to the
detail rule, as a photo without a found face does.
"""
import functools
import logging

import numpy as np
from PIL import Image

log = logging.getLogger("upscaler")

CASCADES = ("haarcascade_frontalcatface_extended.xml", "haarcascade_frontalcatface.xml")
# Chosen on cats/val by benchmarks/faces.py: the photo shrunk to DETECT_SIDE on its long side
# (the cascade's time grows with the pixels; cat faces in photos are large), the search
# steps by SCALE_FACTOR, a face must be found in MIN_NEIGHBORS overlapping windows, and be
# at least MIN_FACE of the photo's short side (smaller finds were fur or background).
DETECT_SIDE = 400
SCALE_FACTOR = 1.05
MIN_NEIGHBORS = 2
MIN_FACE = 0.1


@functools.lru_cache(maxsize=4)
def _detector(name: str = CASCADES[0]):
    """One of OpenCV's cat-face cascades, or None where OpenCV or the file is missing (said once)."""
    try:
        import cv2
    except ImportError:
        log.warning("OpenCV is not installed: the 1:1 crops look for detail, not faces")
        return None
    path = getattr(getattr(cv2, "data", None), "haarcascades", "") + name
    detector = cv2.CascadeClassifier(path) if hasattr(cv2, "CascadeClassifier") else None
    if detector is None or detector.empty():
        log.warning("OpenCV %s has no %s (OpenCV 5 dropped the cascades; opencv-python-headless 4.x has it): "
                    "the 1:1 crops look for detail, not faces", cv2.__version__, name)
        return None
    return detector


def find_cat_face(img: Image.Image, scale_factor=SCALE_FACTOR, min_neighbors=MIN_NEIGHBORS,
                  side=DETECT_SIDE, cascades=CASCADES):
    """The largest cat face as (x, y, w, h) in ``img``'s pixels, or None: from the first of
    ``cascades`` that finds one."""
    detectors = [d for d in map(_detector, cascades) if d is not None]
    if not detectors:
        return None
    import cv2

    shrink = min(1.0, side / max(img.size))
    gray = img.convert("L")
    if shrink < 1:
        gray = gray.resize((max(1, round(img.width * shrink)), max(1, round(img.height * shrink))), Image.BILINEAR)
    a = cv2.equalizeHist(np.asarray(gray, dtype=np.uint8))
    smallest = max(16, int(MIN_FACE * min(a.shape)))
    faces = []
    for detector in detectors:
        faces = detector.detectMultiScale(a, scaleFactor=scale_factor, minNeighbors=min_neighbors,
                                          minSize=(smallest, smallest))
        if len(faces):
            break
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return tuple(int(round(v / shrink)) for v in (x, y, w, h))


def detail_centre(img: Image.Image, window: int) -> tuple:
    """(x, y) in ``img``'s pixels: the centre of the ``window``-sided square with the most
    local detail (the highest variance of luma), where a 1:1 crop shows a difference.
    (A photo's centre is often plain fur or background, identical in both results.)"""
    small = img.convert("L")
    step = max(1, max(small.size) // 256)  # a coarse grid is enough to find the spot
    if step > 1:
        small = small.resize((small.width // step, small.height // step), Image.BOX)
    a = np.asarray(small, dtype=np.float64)
    k = int(max(1, min(window // step, *a.shape)))

    def box(v):  # sums over every k x k window, from 2-D cumulative sums
        c = np.pad(v.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    var = box(a * a) / k ** 2 - (box(a) / k ** 2) ** 2
    y, x = np.unravel_index(int(np.argmax(var)), var.shape)
    return ((x + k / 2) * step, (y + k / 2) * step)


def crop_centre(img: Image.Image, window: float) -> tuple:
    """-> ((x, y) in ``img``'s pixels, "face" or "detail"): where the 1:1 crops centre.
    On a face, the crop is centred a little above the face's middle: the eyes."""
    try:
        face = find_cat_face(img)
    except Exception:  # a detector failure must not cost the visitor the result
        log.exception("the cat-face detector failed")
        face = None
    if face is not None:
        x, y, w, h = face
        return (x + w / 2, y + h * 0.4), "face"
    return detail_centre(img, int(window)), "detail"
