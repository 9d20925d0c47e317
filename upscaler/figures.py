"""The reference design's figure: one column per image, rows = bilinear-upscaled input,
learned output, ground truth (all at the output size)."""
from PIL import Image, ImageDraw

ROWS = ("bilinear", "learned", "ground truth")


def comparison_grid(lrs, outs, hrs, cell: int = 256, labels=True) -> Image.Image:
    """lrs/outs/hrs: lists of PIL images (one per column). Each cell is ``cell`` px."""
    n = len(hrs)
    margin = 14 if labels else 0
    grid = Image.new("RGB", (n * cell, 3 * (cell + margin)), "white")
    draw = ImageDraw.Draw(grid)
    for col, (lr, out, hr) in enumerate(zip(lrs, outs, hrs)):
        rows = (lr.convert("RGB").resize(hr.size, Image.BILINEAR), out.convert("RGB"), hr.convert("RGB"))
        for r, img in enumerate(rows):
            y = r * (cell + margin)
            if labels and col == 0:
                draw.text((2, y + 1), ROWS[r], fill="black")
            grid.paste(img.resize((cell, cell), Image.BICUBIC), (col * cell, y + margin))
    return grid


COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def learning_curves(curves: dict, title: str, size=(720, 420)) -> Image.Image:
    """A line plot of validation PSNR against samples seen, drawn with PIL (no plotting
    library needed). ``curves``: {label: [(samples, psnr), ...]}; a label holding
    "bicubic" is drawn dashed (a reference, not a run), in the colour of the run whose
    label starts with the same word."""
    w, h = size
    left, right, top, bottom = 64, 16, 34, 48
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    points = [p for c in curves.values() for p in c]
    if not points:
        d.text((left, h // 2), f"{title}: no recorded curve", fill="black")
        return img
    x_max = max(x for x, _ in points) or 1
    y_lo, y_hi = min(y for _, y in points), max(y for _, y in points)
    pad = max(0.1, (y_hi - y_lo) * 0.08)
    y_lo, y_hi = y_lo - pad, y_hi + pad

    def xy(x, y):
        return (left + (w - left - right) * x / x_max, top + (h - top - bottom) * (1 - (y - y_lo) / (y_hi - y_lo)))

    d.rectangle((left, top, w - right, h - bottom), outline="black")
    for i in range(6):  # grid and tick labels
        yv = y_lo + (y_hi - y_lo) * i / 5
        _, py = xy(0, yv)
        d.line((left, py, w - right, py), fill="#e6e6e6")
        d.text((4, py - 6), f"{yv:.2f}", fill="black")
        xv = x_max * i / 5
        px, _ = xy(xv, y_lo)
        d.text((px - 14, h - bottom + 6), f"{xv / 1e6:.2f}M" if x_max >= 1e6 else f"{xv / 1e3:.0f}k", fill="black")
    d.text((left, 8), title, fill="black")
    d.text((w // 2 - 90, h - 18), "training samples seen", fill="black")
    d.text((w - right - 170, 8), "validation PSNR-Y, dB", fill="black")
    colours = {}  # a run and its bicubic reference share a colour: the first word of the label
    for i, (label, curve) in enumerate(curves.items()):
        colour = colours.setdefault(label.split(" ")[0], COLOURS[len(colours) % len(COLOURS)])
        pts = [xy(x, y) for x, y in sorted(curve)]
        if "bicubic" in label:  # dashed: 6 px on, 6 px off along each segment
            for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
                n = max(int(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 // 6), 1)
                for k in range(0, n, 2):
                    t0, t1 = k / n, min(k + 1, n) / n
                    d.line((x0 + (x1 - x0) * t0, y0 + (y1 - y0) * t0, x0 + (x1 - x0) * t1, y0 + (y1 - y0) * t1),
                           fill=colour, width=1)
        elif len(pts) > 1:
            d.line(pts, fill=colour, width=2)
        for p in pts[-1:]:
            d.ellipse((p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3), fill=colour)
        d.text((left + 8, top + 6 + 14 * i), label, fill=colour)
    return img
