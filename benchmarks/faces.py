"""Where the demo's 1:1 crops look (upscaler/focus.py): how often OpenCV's cat-face cascade
finds a face on cats/val, how long it takes, and a figure of a dozen results.

    python benchmarks/faces.py                       # the table (204 photos, ~2 min on 2 cores)
    python benchmarks/faces.py --figure docs/figures/faces.png

Each setting runs on every photo of cats/val as the demo receives it (the whole photo);
"found" is the share of photos with at least one face; time is per photo, the detector
alone. No photo here is labelled, so the figure is the check that a find is a face: red
frames are faces, blue ones the detail rule's window where no face was found.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from upscaler import focus  # noqa: E402

CATS_VAL = ROOT.parent / "shared" / "data" / "cats" / "val"
EXTENDED, BOTH = focus.CASCADES[:1], focus.CASCADES
SETTINGS = [  # (cascades, long side the photo is shrunk to, scaleFactor, minNeighbors)
    (EXTENDED, 0, 1.1, 3), (EXTENDED, 300, 1.1, 3), (EXTENDED, 400, 1.1, 3), (EXTENDED, 400, 1.05, 3),
    (EXTENDED, 400, 1.05, 2), (EXTENDED, 400, 1.05, 1), (BOTH, 400, 1.05, 3), (BOTH, 400, 1.05, 2),
    (BOTH, 600, 1.05, 2),
]
SHIPPED = (focus.CASCADES, focus.DETECT_SIDE, focus.SCALE_FACTOR, focus.MIN_NEIGHBORS)


def measure(photos, cascades, side, scale_factor, min_neighbors):
    found, times = 0, []
    for img in photos:
        t = time.perf_counter()
        face = focus.find_cat_face(img, scale_factor=scale_factor, min_neighbors=min_neighbors,
                                   side=side or max(img.size), cascades=cascades)
        times.append(time.perf_counter() - t)
        found += face is not None
    return found / len(photos), statistics.median(times), sorted(times)[int(0.95 * (len(times) - 1))]


def figure(photos, path, count=12, cell=240):
    cols = 4
    rows = (count + cols - 1) // cols
    sheet = Image.new("RGB", (cols * cell, rows * cell), "white")
    for k, img in enumerate(photos[:count]):
        face = focus.find_cat_face(img)
        s = cell / max(img.size)
        thumb = img.convert("RGB").resize((round(img.width * s), round(img.height * s)), Image.BILINEAR)
        draw = ImageDraw.Draw(thumb)
        if face is not None:
            x, y, w, h = (v * s for v in face)
            draw.rectangle([x, y, x + w, y + h], outline=(255, 0, 0), width=3)
        else:
            cx, cy = focus.detail_centre(img, 64)
            draw.rectangle([(cx - 32) * s, (cy - 32) * s, (cx + 32) * s, (cy + 32) * s], outline=(0, 90, 255), width=3)
        sheet.paste(thumb, ((k % cols) * cell, (k // cols) * cell))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(CATS_VAL))
    ap.add_argument("--limit", type=int, default=0, help="the first N photos only")
    ap.add_argument("--figure", default=None, help="write the dozen-photo figure here and stop")
    args = ap.parse_args(argv)
    files = sorted(Path(args.data).glob("*.jpg"))[:args.limit or None]
    photos = [Image.open(f).convert("RGB") for f in files]
    if focus._detector(focus.CASCADES[0]) is None:
        sys.exit("OpenCV's cat-face cascade is missing: pip install 'opencv-python-headless>=4.9,<5'")
    if args.figure:
        print(f"wrote {figure(photos, args.figure)}")
        return
    import cv2

    print(f"# Cat faces on {len(photos)} photos of {os.path.relpath(args.data)} (OpenCV {cv2.__version__}; faces at least "
          f"{focus.MIN_FACE:.0%} of the short side)\n")
    print("| cascades | photo shrunk to (long side) | scaleFactor | minNeighbors | found a face | median ms | "
          "95th pct ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for cascades, side, scale_factor, neighbours in SETTINGS:
        share, median, p95 = measure(photos, cascades, side, scale_factor, neighbours)
        names = "extended, then plain" if cascades == BOTH else "extended"
        shipped = " **(shipped)**" if (cascades, side, scale_factor, neighbours) == SHIPPED else ""
        print(f"| {names}{shipped} | {side or 'as is'} | {scale_factor} | {neighbours} | {share:.0%} | "
              f"{median * 1000:.1f} | {p95 * 1000:.1f} |", flush=True)
    examples = ROOT / "examples"
    print("\nThe demo's examples (shipped setting): " + ", ".join(
        f"{p.name}: {'face' if focus.find_cat_face(Image.open(p).convert('RGB')) else 'no face'}"
        for p in sorted(examples.glob("*.jpg"))))


if __name__ == "__main__":
    main()
