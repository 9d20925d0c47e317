"""The demo server's process, as opposed to one request (``serving.py``): how its torch
work is threaded, how its memory is kept flat over weeks, and how its disk is pruned.

* ``TorchThreads``: every torch call of the server on threads of its own (why: below).
* ``tune_malloc`` and ``FreedMemory``: glibc's allocator set up for reuse, and freed
  memory handed back only when the process has grown (why: the note on memory).
* ``new_output_dir`` and ``prune_stray_files``: a folder per request, old ones removed.
"""
import contextvars
import ctypes
import ctypes.util
import functools
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def new_output_dir(root: Path, ttl_seconds: float) -> Path:
    """A fresh folder for one request's files under ``root``; folders older than
    ``ttl_seconds`` are removed on the way (a public demo must not fill the disk)."""
    root.mkdir(parents=True, exist_ok=True)  # recreated if something cleaned the temp dir under us
    cutoff = time.time() - ttl_seconds
    for old in root.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:  # removed by a request running beside this one
            pass
    return Path(tempfile.mkdtemp(dir=root))


# How long the app keeps files, in seconds (UPSCALER_OUTPUT_TTL / UPSCALER_CACHE_TTL override
# them): a result's download link lives as long as its file; Gradio's cache holds uploads.
OUTPUT_TTL_S = 1200
CACHE_TTL_S = 1200

# Memory. glibc's allocator can keep what a request freed for the next request to reuse, or
# hand it back to the operating system and fault it in again next time. On the 2-core VM
# the second made an 8x request's network 10-25% slower: by default glibc maps buffers over
# its (moving) threshold fresh for each request, unmaps a thread arena's heaps as they empty
# and trims the top of its heap on free, and handing everything back after every request
# (malloc_trim) does the rest. What must not happen either is freed memory piling up over
# weeks (benchmarks/soak.py with no measure: RSS 1.14x to 1.42x over 500 requests). So the
# app tunes the allocator for reuse (tune_malloc), and hands freed memory back only when
# the process has grown more than KEEP_FREED_BYTES since the last time (FreedMemory).
MALLOC_ARENAS = 1  # glibc's default: up to 8 per core, one per thread that allocates
MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit; image buffers up to it come from the heap
KEEP_FREED_BYTES = 512 << 20  # an 8x of a phone-sized photo keeps about 250 MB for reuse
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # mallopt's parameters, from malloc.h


@functools.lru_cache(maxsize=1)
def _libc():
    """glibc, or None (musl, macOS, Windows: the memory functions below do nothing there)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def resident_bytes() -> int | None:
    """This process's resident set size (Linux), or None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def tune_malloc() -> bool:
    """Set glibc's allocator up for a long-running server that makes big images again and
    again (what ``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_``
    would do); -> whether it could. Call it before the server's threads start (app.py does, at
    import):
    * MALLOC_ARENAS arena (the main one): otherwise each thread that allocates (Gradio's
      workers, the PNG writer's) gets its own, whose freed memory the others do not reuse
      and whose heaps glibc unmaps as they empty;
    * buffers up to MMAP_THRESHOLD come from the heap and are reused, instead of being
      mapped, faulted in and unmapped for every request;
    * the top of the heap goes back only past KEEP_FREED_BYTES (FreedMemory does the rest)."""
    libc = _libc()
    if libc is None:
        return False
    return all([libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS), libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                libc.mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES)])


class TorchThreads:
    """Runs a server's torch work on its own threads: ``jobs`` of them (the jobs it runs at
    once), made once and kept. ``run(fn, ...)`` calls ``fn`` on one and returns what it
    returns (or raises what it raised); called from one of them, it calls ``fn`` there.

    Why: torch's CPU build runs on libgomp, which gives every thread that runs a parallel op
    its own team of worker threads, kept for as long as that thread lives. Once a process has
    more of them than cores, every barrier sleeps instead of spinning: with the weights loaded
    on the main thread and requests on Gradio's worker threads, the 8x network took 12-20%
    longer in the server than in a script on the 2-core VM. On these threads it takes the same.
    """

    def __init__(self, jobs: int = 1):
        self.jobs = jobs
        self._local = threading.local()
        self._start()
        os.register_at_fork(after_in_child=self._start)  # a forked child (ZeroGPU) has none of the threads

    def _start(self):
        self._pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="torch")

    def _call(self, fn, args, kwargs):
        self._local.inside = True
        return fn(*args, **kwargs)

    def run(self, fn, /, *args, **kwargs):
        if getattr(self._local, "inside", False):
            return fn(*args, **kwargs)
        context = contextvars.copy_context()  # Gradio's progress bar finds its request in context variables
        return self._pool.submit(context.run, self._call, fn, args, kwargs).result()


class FreedMemory:
    """Call after each request: when the process has grown more than ``keep`` bytes since
    the last release (or since it was made), give the memory the allocator holds freed back
    to the operating system (glibc's ``malloc_trim``). Returns whether it did."""

    def __init__(self, keep: int = KEEP_FREED_BYTES):
        self.keep, self.floor = keep, resident_bytes()
        self._lock = threading.Lock()

    def release_if_grown(self) -> bool:
        libc, rss = _libc(), resident_bytes()
        if libc is None or rss is None or (self.floor is not None and rss - self.floor <= self.keep):
            return False
        if not self._lock.acquire(blocking=False):  # another request is releasing it now
            return False
        try:
            libc.malloc_trim(0)
            self.floor = resident_bytes()
            return True
        finally:
            self._lock.release()


def prune_stray_files(folder: Path, ttl_seconds: float, pattern: str = "tmp*") -> int:
    """Remove files matching ``pattern`` directly in ``folder`` (not in its subfolders)
    older than ``ttl_seconds``; -> how many. Gradio 6's ``gr.File`` preprocessing leaves
    one empty ``tmpXXXX`` file in its cache per file it receives (``NamedTemporaryFile(
    delete=False)``, never used), which its ``delete_cache`` does not remove: over weeks a
    public demo would pile up millions of them (benchmarks/soak.py found them)."""
    cutoff, removed = time.time() - ttl_seconds, 0
    try:
        candidates = list(Path(folder).glob(pattern))
    except OSError:
        return 0
    for path in candidates:
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed
