"""The private APIs of other packages that this project still uses, each behind a guard
that degrades quietly. These tests fail loudly when an upgrade removes or changes one, so
someone looks instead of the guard hiding a slower server.

* torch: ``torch.cpu._is_amx_tile_supported`` / ``_is_avx512_bf16_supported`` (no public
  call says whether the CPU runs bf16 natively; ``inference.cpu_has_native_bf16``);
* Gradio: ``Blocks._queue.sleep_when_free`` (how often the queue polls; app.py's
  ``_poll_queue_less``).
"""
import os

import torch

os.environ["HF_HUB_OFFLINE"] = "1"


def test_torch_still_has_the_cpu_bf16_probes():
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        probe = getattr(torch.cpu, name, None)
        assert callable(probe), f"torch {torch.__version__} no longer has torch.cpu.{name}: see inference.py"
        assert isinstance(probe(), bool)


def test_gradio_still_polls_its_queue_through_sleep_when_free():
    import gradio as gr

    import app

    with gr.Blocks() as demo:
        gr.Button()
    demo.queue()
    queue = getattr(demo, "_queue", None)
    assert queue is not None and isinstance(getattr(queue, "sleep_when_free", None), float), (
        f"gradio {gr.__version__}: Blocks._queue.sleep_when_free is gone: see app._poll_queue_less")
    app._poll_queue_less(demo)
    assert queue.sleep_when_free == app.QUEUE_POLL_S
