"""The one table of stages that every part of the project speaks of.

The sizes are the *training* sizes (the reference design's 64 -> 128 -> 256 -> 512
ladder). At inference time every network is fully convolutional and takes any size.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    name: str          # "64to128"
    input_size: int    # training input size, pixels (square)
    output_size: int   # training output size, pixels (square)
    label: str         # what the UI shows

    @property
    def factor(self) -> int:
        return self.output_size // self.input_size


STAGES = {
    s.name: s
    for s in (
        Stage("64to128", 64, 128, "64 -> 128 (x2)"),
        Stage("128to256", 128, 256, "128 -> 256 (x2)"),
        Stage("256to512", 256, 512, "256 -> 512 (x2)"),
        Stage("64to512", 64, 512, "64 -> 512 (x8, fine-tuned stack)"),
    )
}
TWO_X_STAGES = ("64to128", "128to256", "256to512")  # in the order they are stacked
STACK_STAGE = "64to512"


def get_stage(name: "str | Stage") -> Stage:
    """A stage by name (a Stage passes through): the one place stage names are checked."""
    if isinstance(name, Stage):
        return name
    try:
        return STAGES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown stage {name!r}; choose one of {', '.join(STAGES)}") from None
