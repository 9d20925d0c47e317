"""A training checkpoint's EMA weights as a weights root that the demo's loaders read, so a
run stopped half-way can be scored (choose.py, period4.py) beside finished ones.

    python experiments/sharp-chain/checkpoint_weights.py \\
        ../sharp4-out/P/checkpoints/sharp/128to256/checkpoint-200 ../sharp4-out/P200

A checkpoint holds the weights but not the network's layout: ``--layout ROOT`` names weights
of the same layout (default: weights/, the shipped ones).
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from safetensors.torch import load_file  # noqa: E402

from upscaler.weights import load_model, save_model  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a checkpoint-N folder holding ema.safetensors")
    p.add_argument("out", help="the weights root to write (<out>/<model>/<stage>/)")
    p.add_argument("--model", default="sharp")
    p.add_argument("--stage", default="128to256")
    p.add_argument("--layout", default=str(ROOT / "weights"), help="a weights root with the same layout")
    a = p.parse_args()
    net, _ = load_model(a.model, a.stage, weights=a.layout)
    net.load_state_dict(load_file(str(Path(a.checkpoint) / "ema.safetensors")))
    print(save_model(net.folded(), a.out, a.model, a.stage))


if __name__ == "__main__":
    main()
