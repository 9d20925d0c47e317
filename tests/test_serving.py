"""One demo request without the UI: scales, names, crops, tables, zips."""
import zipfile

import pytest
from conftest import ROOT, perturbed
from PIL import Image

from upscaler import serving
from upscaler.images import ImageRejected
from upscaler.inference import Upscaler
from upscaler.models import FAMILIES

EXAMPLE = ROOT / "examples" / "cat.4093.jpg"


def test_pipelines():
    assert serving.Pipeline.for_scale(2).stages == ("64to128",)
    assert serving.Pipeline.for_scale("4x").stages == ("64to128", "128to256")
    assert serving.Pipeline.for_scale(8).stages == ("64to512",)
    assert serving.Pipeline.for_scale(2, "256to512").stages == ("256to512",)
    assert serving.Pipeline.for_stage("128to256") == serving.Pipeline(2, ("128to256",))
    for bad in (3, "big", 16):
        with pytest.raises(ImageRejected, match="scale must be 2, 4 or 8"):
            serving.Pipeline.for_scale(bad)
    with pytest.raises(ImageRejected, match="2x network"):
        serving.Pipeline.for_scale(2, "64to512")


def test_download_names():
    assert serving.download_name("/tmp/gradio/abc/My Cat.jpeg", 4, "default") == "My_Cat-x4-default.png"
    assert serving.download_name("", 2, "seed") == "image-x2-seed.png"


def test_upscale_file_chains_and_reports(tmp_path):
    ups = [Upscaler(perturbed(FAMILIES["default"].two_x(), seed=i), s, dtype="float32")
           for i, s in enumerate(("64to128", "128to256"))]
    r = serving.upscale_file(EXAMPLE, serving.Pipeline.for_scale(4), ups, "default", tmp_path, 10**8, 10**8)
    assert r.input_size == (335, 359) and r.output_size == (1340, 1436)
    assert Image.open(r.download).size == Image.open(r.bilinear).size == (1340, 1436)
    assert r.network_seconds <= r.total_seconds and r.device == "cpu"
    assert "335x359 -> 1340x1436 (x4)" in r.summary("default")
    with pytest.raises(ImageRejected, match="shrink it to fit"):
        serving.upscale_file(EXAMPLE, serving.Pipeline.for_scale(4), ups, "default", tmp_path, 10**8, 10**6)
    r = serving.upscale_file(EXAMPLE, serving.Pipeline.for_scale(4), ups, "default", tmp_path, 10**8, 10**6,
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
    assert "higher is better" in table


def test_zip_and_output_dirs(tmp_path):
    files = []
    for name in ("x.png", "y.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
        files.append(tmp_path / name)
    with zipfile.ZipFile(serving.zip_files(files, tmp_path, "out.zip")) as z:
        assert sorted(z.namelist()) == ["x.png", "y.png"]
    root = tmp_path / "outputs"
    first = serving.new_output_dir(root, ttl_seconds=3600)
    second = serving.new_output_dir(root, ttl_seconds=-1)  # everything older than "now + 1 s" goes
    assert not first.exists() and second.exists()


def test_stray_temporary_files_are_pruned_by_age(tmp_path):
    import os
    import time

    from upscaler.serving import prune_stray_files

    old, new, keep = tmp_path / "tmpold", tmp_path / "tmpnew", tmp_path / "result.png"
    sub = tmp_path / "abc123"
    sub.mkdir()
    for f in (old, new, keep, sub / "tmpinside"):
        f.write_bytes(b"")
    past = time.time() - 100
    for f in (old, keep, sub / "tmpinside"):
        os.utime(f, (past, past))
    assert prune_stray_files(tmp_path, 50) == 1
    assert not old.exists() and new.exists() and keep.exists() and (sub / "tmpinside").exists()


FREED_MEMORY_SCRIPT = """
import json
from upscaler import serving
assert serving.tune_malloc()
generous, tight = serving.FreedMemory(keep=1 << 30), serving.FreedMemory(keep=32 << 20)
# 240 MB in 60 KB blocks (below glibc's mmap threshold: they live in the heap), then every
# other one freed: 120 MB of holes that the allocator keeps for reuse.
blocks = [bytearray(60_000) for _ in range(4000)]
del blocks[::2]
before = serving.resident_bytes()
generous_released = generous.release_if_grown()
after_generous = serving.resident_bytes()
tight_released = tight.release_if_grown()
after_tight = serving.resident_bytes()
again = tight.release_if_grown()
print(json.dumps(dict(before=before, generous=generous_released, after_generous=after_generous,
                      tight=tight_released, after_tight=after_tight, floor=tight.floor, again=again)))
"""


def test_freed_memory_goes_back_only_past_the_allowance():
    """The app keeps what requests freed for the next one (giving it back every time made the
    next network fault its pages in again), and gives it back once the process has grown
    more than the allowance: here 120 MB of freed holes against allowances of 1 GB and 32 MB.
    In a fresh process, so that nothing else in the test run moves its memory."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", FREED_MEMORY_SCRIPT], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    assert r["generous"] is False and r["after_generous"] >= r["before"] - (8 << 20)  # kept
    assert r["tight"] is True and r["after_tight"] < r["before"] - (80 << 20)  # most of the 120 MB back
    assert abs(r["floor"] - r["after_tight"]) < (8 << 20)  # the new floor: growth is measured from here
    assert r["again"] is False  # nothing grew since


def test_torch_threads_run_work_on_their_own_thread():
    """The server's torch work runs on TorchThreads (serving.py says why): results and errors
    come back, Gradio's context variables (its progress bar's request) go along, a call from
    inside runs in place instead of waiting for itself, and a forked child gets new threads."""
    import contextvars
    import os
    import threading

    torch_threads = serving.TorchThreads(1)
    names = set()

    def where(x):
        names.add(threading.current_thread().name)
        return x * 2

    assert torch_threads.run(where, 21) == 42 and torch_threads.run(where, x=1) == 2
    assert len(names) == 1 and next(iter(names)).startswith("torch")
    with pytest.raises(ValueError, match="bad input"):
        torch_threads.run(lambda: (_ for _ in ()).throw(ValueError("bad input")))
    request = contextvars.ContextVar("request")
    request.set("event 7")
    assert torch_threads.run(request.get) == "event 7"
    assert torch_threads.run(lambda: torch_threads.run(where, 5)) == 10  # no deadlock on one thread
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's thread is not here; a new one must be
        try:
            os.write(write, str(torch_threads.run(where, 50)).encode())
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 16) == b"100"
    os.waitpid(pid, 0)
