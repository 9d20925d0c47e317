"""A job of many files, as the command line runs it: stills, animations and videos, from files
and folders, into one output folder.

* ``plan``: every input with its output name, decided before any work starts, the same in
  every process: two inputs of one name (``a.jpg``, ``a.png``) get ``a.png`` and
  ``a-2.png``, a video gets ``.mp4`` (or ``.webm``), an animation keeps its format.
* ``mine``: this process's share when the job runs under ``accelerate launch`` (or
  ``torchrun``): ``Accelerator.split_between_processes``, so each file is written once,
  by one process. Without a launcher, everything.
* ``run``: each file through ``pipeline.upscale_file`` (a still) or ``motion.upscale_motion``
  (an animation or a video); a refusal skips the file with its reason. With
  ``skip_existing``, a file whose output is already there (complete: every output is
  written under ``.part`` and renamed) is not done again, so an interrupted job resumes.
"""
import dataclasses
import os
from pathlib import Path

from .images import ImageRejected
from .motion import MotionLimits, kind_of, output_suffix, upscale_motion
from .pipeline import upscale_file
from .protocol import IMAGE_SUFFIXES
from .serving import unique_name
from .video import VIDEO_SUFFIXES

STILL_SUFFIX = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}


@dataclasses.dataclass
class Task:
    source: Path
    target: Path
    kind: str  # "still", "animation" or "video"


def media_files(folder) -> list[Path]:
    """The images, animations and videos of a folder (by suffix), sorted."""
    suffixes = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def plan(inputs, out_dir, fmt: str | None = None, video_format: str = "mp4") -> list[Task]:
    """Every input file (folders expanded) with its output path. Raises FileNotFoundError
    (a missing input) or ValueError (a folder with nothing to upscale), saying which."""
    files = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = media_files(item)
            if not found:
                raise ValueError(f"no images or videos in {item}")
            files += found
        elif item.is_file():
            files.append(item)
        else:
            raise FileNotFoundError(f"{item} does not exist")
    used, tasks = set(), []
    for path in files:
        kind = kind_of(path)
        if kind == "still":
            suffix = STILL_SUFFIX.get(fmt or "png", ".png")
        else:
            suffix = output_suffix(path, kind, fmt, video_format)
        tasks.append(Task(path, Path(out_dir) / unique_name(f"{path.stem}{suffix}", used), kind))
    return tasks


def launcher_state():
    """accelerate's ``PartialState`` when the job runs under ``accelerate launch`` or
    ``torchrun`` with several processes (on a machine without GPUs, gloo on the CPU), else
    None. Its ``device`` is this process's own GPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def mine(tasks: list, state=None) -> list:
    """This process's share of ``tasks`` (``split_between_processes``: contiguous, each
    task in one process only) under a launcher; all of them otherwise."""
    if state is None:
        return tasks
    with state.split_between_processes(tasks) as share:
        return list(share)


def run(task: Task, upscalers, *, max_input_pixels: int, max_output_pixels: int, fmt: str | None = None,
        quality: int = 95, crf: int | None = None, limits: MotionLimits = MotionLimits(),
        first_seconds: float | None = None, progress=None):
    """Upscale one task's file into its target. Raises ImageRejected with the reason."""
    if task.kind == "still":
        if fmt == "gif":
            raise ImageRejected("--format gif is for animations; a still is written as png, webp or jpeg")
        return upscale_file(task.source, upscalers, task.target, max_input_pixels=max_input_pixels,
                            max_output_pixels=max_output_pixels, fmt=fmt or "png", quality=quality,
                            limit_hint="--max-output-pixels")
    frame_limit = dataclasses.replace(limits, max_frame_output_pixels=limits.max_frame_output_pixels
                                      or max_output_pixels)
    return upscale_motion(task.source, upscalers, task.target, crf=crf, limits=frame_limit,
                          first_seconds=first_seconds, max_input_pixels=max_input_pixels, progress=progress)
