"""The figures: the reference's comparison grid and the learning-curve plot."""
import numpy as np
from PIL import Image

from upscaler.figures import comparison_grid, learning_curves


def test_comparison_grid_has_three_rows_per_column():
    lr, out, hr = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (16, 16), "green"), Image.new("RGB", (16, 16))
    grid = comparison_grid([lr, lr], [out, out], [hr, hr], cell=32)
    assert grid.size == (64, 3 * (32 + 14))
    assert grid.getpixel((40, 46 + 14 + 5)) == (0, 128, 0)  # second row, second column: the learned image


def test_learning_curve_draws_each_run():
    img = learning_curves({"64to128": [(0, 30.0), (1000, 31.0), (2000, 31.5)],
                           "64to128 bicubic": [(0, 32.0), (2000, 32.0)]}, "seed, 2x stages", size=(400, 300))
    a = np.asarray(img)
    assert img.size == (400, 300)
    assert (np.abs(a.astype(int) - [31, 119, 180]).sum(axis=2) < 30).sum() > 50  # the first run's colour
    empty = learning_curves({}, "nothing")
    assert empty.size == (720, 420)
