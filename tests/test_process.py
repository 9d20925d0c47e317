"""The server process: output folders and pruning, the allocator, the torch threads."""
import pytest

from upscaler import process


def test_output_dirs_are_made_and_old_ones_removed(tmp_path):
    root = tmp_path / "outputs"
    first = process.new_output_dir(root, ttl_seconds=3600)
    second = process.new_output_dir(root, ttl_seconds=-1)  # everything older than "now + 1 s" goes
    assert not first.exists() and second.exists()


def test_stray_temporary_files_are_pruned_by_age(tmp_path):
    import os
    import time

    from upscaler.process import prune_stray_files

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
from upscaler import process
assert process.tune_malloc()
generous, tight = process.FreedMemory(keep=1 << 30), process.FreedMemory(keep=32 << 20)
# 240 MB in 60 KB blocks (below glibc's mmap threshold: they live in the heap), then every
# other one freed: 120 MB of holes that the allocator keeps for reuse.
blocks = [bytearray(60_000) for _ in range(4000)]
del blocks[::2]
before = process.resident_bytes()
generous_released = generous.release_if_grown()
after_generous = process.resident_bytes()
tight_released = tight.release_if_grown()
after_tight = process.resident_bytes()
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
    """The server's torch work runs on TorchThreads (process.py says why): results and errors
    come back, Gradio's context variables (its progress bar's request) go along, a call from
    inside runs in place instead of waiting for itself, and a forked child gets new threads."""
    import contextvars
    import os
    import threading

    torch_threads = process.TorchThreads(1)
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
