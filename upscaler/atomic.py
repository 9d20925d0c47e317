"""Files written whole or not at all.

Every file this package hands to a person (an upscaled image, an ONNX export) is written
under ``<name>.part`` and renamed when complete, so no reader ever sees half a file under
the real name. A write that fails (a full disk, an encoder error, an interrupt) removes its
``.part`` file before the error goes on: nothing is left behind.
"""
import contextlib
from pathlib import Path


@contextlib.contextmanager
def written_whole(path):
    """``with written_whole(path) as tmp: <write tmp>``: renamed to ``path`` on success;
    removed, and the error raised on, on failure."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    try:
        yield tmp
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
