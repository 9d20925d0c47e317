"""Learned image upscaling: three 2x stages and a fine-tuned 8x stack.

    from upscaler import load_upscaler
    up = load_upscaler("64to512")          # bundled weights, CPU or CUDA
    big = up(PIL.Image.open("cat.jpg"))    # 8x larger, same mode family
"""
from .inference import Upscaler, load_upscaler
from .models import FAMILIES, ResidualUpsampler, ResidualUpsampler8x, Upsampler, Upsampler8x
from .stages import STACK_STAGE, STAGES, TWO_X_STAGES, Stage, get_stage
from .weights import WeightsError, load_model, save_model

__all__ = [
    "FAMILIES", "STACK_STAGE", "STAGES", "TWO_X_STAGES", "ResidualUpsampler", "ResidualUpsampler8x",
    "Stage", "Upsampler", "Upsampler8x", "Upscaler", "WeightsError", "get_stage", "load_model",
    "load_upscaler", "save_model",
]
