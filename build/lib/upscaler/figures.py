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
