"""Every runtime for our networks, side by side on this machine: what ``backend="auto"``
(upscaler/runtimes.py) chooses from.

    python benchmarks/runtime_speed.py            # every family (~8 min on 2 cores)
    python benchmarks/runtime_speed.py --quick    # the default family, fewer repeats
    (python benchmarks/speed.py prints these tables first)

Each runtime runs the network inside ``Upscaler`` (padding, tiles, 8-bit output), one
runtime after the other, in one process:
* torch eager fp32 and bf16 (``backend="torch"``; bf16 is what it ships on a CPU with native bf16);
* torch with a frozen TorchScript graph (``torch.jit.freeze`` + ``optimize_for_inference``);
* ``torch.compile`` (inductor, freezing on): it compiles per input shape (tens of seconds
  each here), so it is timed on the 64x64 case only;
* onnxruntime at full graph optimisation, fp32; OpenVINO fp32 and bf16.

Columns: 64->512 of a 64x64 image (ms, median) and the arithmetic rate that makes
(GFLOP/s, FLOPs counted by torch's FlopCounterMode); x8 of examples/cat.4018.jpg
(276x374 -> 2208x2992, tiled as shipped); x2 of a 2048x2048 photo with the 2x stage the demo
uses (tiled); the 8-bit PSNR of the x8 example against torch fp32's. Then, for the default
family, each runtime in a fresh process with an empty ONNX cache: load, first call
(export + compile), and the peak resident memory of the 2048x2048 x2. Then which operators
each runtime fuses, read from its own optimised graph. Last, the targets: ``load_upscaler``
with ``auto`` against ``backend="torch"``, timed call by call in turn (speed.py's
``interleaved``), as the median of the per-round ratios.
"""
import argparse
import collections
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from upscaler import runtimes  # noqa: E402
from upscaler.inference import Upscaler, describe_device, load_upscaler  # noqa: E402
from upscaler.metrics import psnr_rgb  # noqa: E402
from upscaler.models import FAMILIES, to_model_range  # noqa: E402
from upscaler.pipeline import DEFAULT_X2_STAGE  # noqa: E402
from upscaler.weights import load_model  # noqa: E402

EXAMPLE = ROOT / "examples" / "cat.4018.jpg"
CATS_VAL = ROOT.parent / "shared" / "data" / "cats" / "val"
MIN_PSNR = 50.0  # what auto requires of a runtime's 8-bit output against torch fp32's

# name -> how the network runs: an Upscaler backend and dtype, or a torch module swapped in
RUNTIMES = {
    "torch eager fp32": dict(backend="torch", dtype="float32"),
    "torch eager bf16": dict(backend="torch", dtype="bfloat16"),  # backend="torch"'s choice on AMX CPUs
    "torch jit.freeze fp32": dict(backend="torch", dtype="float32", swap="jit"),
    "torch.compile fp32": dict(backend="torch", dtype="float32", swap="inductor"),
    "onnxruntime fp32": dict(backend="onnxruntime", dtype="float32"),
    "openvino fp32": dict(backend="openvino", dtype="float32"),
    "openvino bf16": dict(backend="openvino", dtype="bfloat16"),
}


def available(name: str) -> bool:
    spec = RUNTIMES[name]
    if spec["dtype"] == "bfloat16" and spec["backend"] == "torch":
        from upscaler.inference import cpu_has_native_bf16
        return cpu_has_native_bf16()
    return runtimes.installed(spec["backend"])


def make_upscaler(name: str, net, stage: str) -> Upscaler:
    spec = RUNTIMES[name]
    up = Upscaler(net, stage, backend=spec["backend"], dtype=spec["dtype"],
                  channels_last=False if spec.get("swap") else None)
    if spec.get("swap") == "jit":
        sample = torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            up.run_network = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(up.net, sample)))
    elif spec.get("swap") == "inductor":
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True  # weights as constants: conv + bias folding, oneDNN weight packing
        up.run_network = torch.compile(up.net, dynamic=False)
    return up


def gflop(net, size=64) -> float:
    """GFLOPs of one call of ``net`` on a size x size image (a multiply-add counts 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(to_model_range(torch.rand(1, 3, size, size), net))
    return counter.get_total_flops() / 1e9


def big_photo(size=2048) -> Image.Image:
    """A cats/val photo resized to size x size (the example, where cats/val is absent)."""
    files = sorted(CATS_VAL.glob("*.jpg"))
    return Image.open(files[0] if files else EXAMPLE).convert("RGB").resize((size, size), Image.BICUBIC)


def runtime_rows(family: str, names, quick: bool, size: int, weights=None):
    from speed import timeit  # speed.py's timer: the median after a warm-up (imported here: the fresh
    # processes below import this module and must not pay for speed.py's imports)

    example, big = Image.open(EXAMPLE).convert("RGB"), big_photo(size)
    tiny = example.resize((64, 64), Image.BICUBIC)
    x8, x2 = load_model(family, "64to512", weights)[0], load_model(family, DEFAULT_X2_STAGE, weights)[0]
    flops = gflop(x8)
    reference = make_upscaler("torch eager fp32", x8, "64to512")(example)
    rows = []
    for name in names:
        up = make_upscaler(name, x8, "64to512")
        t0 = time.perf_counter()
        up(tiny)  # the first call: export + compile for graph runtimes, the compile for torch.compile
        first = time.perf_counter() - t0
        ms = timeit(lambda: up(tiny), 3 if quick else 25, warmup=1 if quick else 2) * 1000
        row = {"family": family, "runtime": name, "first_s": first, "ms_64": ms, "gflops": flops / ms * 1000}
        if RUNTIMES[name].get("swap") != "inductor":  # compiles per tile shape: not timed on tiled images
            out = up(example)
            row["psnr"] = psnr_rgb(out, reference)
            row["x8_s"] = timeit(lambda: up(example), 1 if quick else 3, warmup=0)
            up2 = make_upscaler(name, x2, DEFAULT_X2_STAGE)
            up2(tiny)
            row["x2_s"] = timeit(lambda: up2(big), 1 if quick else 2, warmup=0)
        rows.append(row)
        print(format_row(row, big.size[0]), flush=True)
    return rows


def format_row(r, big) -> str:
    def cell(key, fmt):
        return format(r[key], fmt) if key in r else "-"
    return (f"| {r['family']} | {r['runtime']} | {r['first_s']:.2f} | {r['ms_64']:.1f} | {r['gflops']:.0f} | "
            f"{cell('x8_s', '.2f')} | {cell('x2_s', '.2f')} | {cell('psnr', '.1f')} |")


FRESH = """
import json, os, sys, time
t0 = time.perf_counter()
from PIL import Image
from upscaler.inference import Upscaler
from upscaler.weights import load_model
sys.path.insert(0, {bench!r})
from runtime_speed import make_upscaler, big_photo
imported = time.perf_counter() - t0
t0 = time.perf_counter()
up = make_upscaler({name!r}, load_model("default", {stage!r}, {weights!r})[0], {stage!r})
load = time.perf_counter() - t0
small = Image.open({example!r}).convert("RGB").resize((64, 64))
t0 = time.perf_counter()
up(small)
first = time.perf_counter() - t0
img = big_photo({size})
def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) // 1024
base = hwm()
t0 = time.perf_counter()
up(img)
print(json.dumps({{"import_s": imported, "load_s": load, "first_s": first, "call_s": time.perf_counter() - t0,
                  "base_mb": base, "peak_mb": hwm()}}))
"""


def fresh_process(name: str, size: int, weights=None) -> dict:
    """One runtime in a new process with an empty ONNX cache: what a new server pays."""
    code = FRESH.format(bench=str(Path(__file__).parent), name=name, stage=DEFAULT_X2_STAGE,
                        example=str(EXAMPLE), size=size, weights=weights)
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "UPSCALER_CACHE": cache, "PYTHONPATH": str(ROOT)}
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def fusions(weights=None) -> dict:
    """{runtime: what its optimised graph of the default 64to512 runs}, from the graphs themselves."""
    net = load_model("default", "64to512", weights)[0].float().eval()
    path = runtimes.cached_onnx(net)
    out = {}
    import onnx

    def count(kinds):
        return ", ".join(f"{k} {n}" for k, n in collections.Counter(kinds).most_common())

    out["ONNX file (as exported)"] = count(n.op_type for n in onnx.load(str(path)).graph.node)
    with torch.no_grad():
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(copy.deepcopy(net),
                                                                                   torch.rand(1, 3, 64, 64))))
    out["torch jit.freeze"] = count(n.kind() for n in frozen.graph.nodes() if "Constant" not in n.kind())
    if runtimes.installed("onnxruntime"):
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
            options.log_severity_level = 3
            ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            out["onnxruntime"] = count(n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node)
    if runtimes.installed("openvino"):
        import openvino as ov

        model = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}).get_runtime_model()
        ops = [op.get_rt_info() for op in model.get_ordered_ops()]
        kinds = [str(i["layerType"].astype(str)) for i in ops]
        out["openvino"] = count(k for k in kinds if k not in ("Const", "Input", "Output"))
        convs = [str(i["originalLayersNames"].astype(str)) for i, k in zip(ops, kinds) if k == "Convolution"]
        with_prelu = sum("PRelu" in c for c in convs)
        out["openvino"] += f" (of its {len(convs)} convolutions, {with_prelu} have the bias and PReLU fused in)"
    return out


def targets(rounds_small: int, rounds_big: int, weights=None) -> dict:
    """load_upscaler's auto against backend='torch', default 64to512, timed in turn."""
    sys.path.insert(0, str(Path(__file__).parent))
    from speed import interleaved, ratio_quartiles

    example = Image.open(EXAMPLE).convert("RGB")
    tiny = example.resize((64, 64), Image.BICUBIC)
    auto, eager = load_upscaler("64to512", weights=weights), load_upscaler("64to512", weights=weights, backend="torch")
    small = interleaved({"auto": lambda: auto(tiny), "torch": lambda: eager(tiny)}, rounds_small)
    big = interleaved({"auto": lambda: auto(example), "torch": lambda: eager(example)}, rounds_big)
    reference = load_upscaler("64to512", weights=weights, backend="torch", dtype="float32")(example)
    return {"auto": f"{auto.backend} ({str(auto.dtype).replace('torch.', '')})",
            "torch": f"torch ({str(eager.dtype).replace('torch.', '')})",
            "small_ms": {k: statistics.median(v) * 1000 for k, v in small.items()},
            "big_s": {k: statistics.median(v) for k, v in big.items()},
            "small_ratio": ratio_quartiles(small, "auto", "torch"), "big_ratio": ratio_quartiles(big, "auto", "torch"),
            "psnr": psnr_rgb(auto(example), reference), "rounds": (rounds_small, rounds_big)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="a smoke test: the default family, few repeats, a 512 px photo, no torch.compile")
    ap.add_argument("--weights", default=None, help="a local weights root (default: the bundled weights)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--output", default=None, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    return run(args.quick, args.threads, args.output, args.weights)


def run(quick=False, threads=None, output=None, weights=None) -> dict:
    torch.set_num_threads(threads or os.cpu_count())
    names = [n for n in RUNTIMES if available(n) and not (quick and RUNTIMES[n].get("swap") == "inductor")]
    families = ["default"] if quick else list(FAMILIES)
    size = 512 if quick else 2048
    versions = runtimes.versions()
    results = {"machine": f"{describe_device('cpu')}, threads {torch.get_num_threads()}", "versions": versions}
    print(f"# Runtimes: {results['machine']}; {versions}\n")
    print(f"| family | runtime | first call, s | 64->512 of 64x64, ms | GFLOP/s | x8 of the example, s | "
          f"x2 of {size}x{size}, s | PSNR vs torch fp32, dB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    results["rows"] = [r for f in families for r in runtime_rows(f, names, quick, size, weights)]

    auto = runtimes.pick_backend("auto", torch.device("cpu"))
    auto_dtype = str(runtimes.runtime_dtype(auto, load_model("default", "64to512", weights)[0]) if auto != "torch"
                     else "the torch default").replace("torch.", "")
    passing = [r for r in results["rows"] if r["family"] == "default" and r.get("psnr", 0) >= MIN_PSNR]
    fastest = min(passing, key=lambda r: r["ms_64"])["runtime"] if passing else None
    results["auto"], results["fastest"] = f"{auto} ({auto_dtype})", fastest
    print(f"\nauto picks **{auto} ({auto_dtype})** here (runtimes.AUTO_ORDER and the CPU: AMX "
          f"{'yes' if runtimes.cpu_has_amx() else 'no'}). The fastest default-family runtime at 64x64 with "
          f">= {MIN_PSNR:.0f} dB and tiled rows: **{fastest}**.\n")

    print(f"## A fresh process per runtime (default {DEFAULT_X2_STAGE}, empty ONNX cache)\n")
    print(f"| runtime | import, s | load, s | first call (export + compile), s | x2 of {size}x{size}, s | "
          f"RSS after the first call, MB | peak RSS, MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    results["fresh"] = {}
    for name in names:
        if RUNTIMES[name].get("swap") == "inductor" or (quick and name not in ("torch eager fp32", "openvino fp32")):
            continue
        r = results["fresh"][name] = fresh_process(name, size, weights)
        print(f"| {name} | {r['import_s']:.2f} | {r['load_s']:.2f} | {r['first_s']:.2f} | {r['call_s']:.2f} | "
              f"{r['base_mb']} | {r['peak_mb']} |", flush=True)

    print("\n## What each runtime runs (default 64to512: 22 convolutions, 19 PReLUs)\n")
    results["fusions"] = fusions(weights)
    for k, v in results["fusions"].items():
        print(f"- **{k}**: {v}")

    t = results["targets"] = targets(4 if quick else 60, 2 if quick else 7, weights)
    print(f"\n## The targets: load_upscaler with auto ({t['auto']}) against backend='torch' ({t['torch']}), "
          f"default 64to512, {t['rounds'][0]} and {t['rounds'][1]} rounds in turn\n")
    print("| case | auto | torch | auto / torch: median (quartiles) | target |")
    print("|---|---:|---:|---|---:|")
    q1, med, q3 = t["small_ratio"]
    print(f"| 64->512 of 64x64 | {t['small_ms']['auto']:.1f} ms | {t['small_ms']['torch']:.1f} ms | "
          f"{med:.2f} ({q1:.2f}-{q3:.2f}) | <= 0.35 |")
    q1, med, q3 = t["big_ratio"]
    print(f"| x8 of examples/cat.4018.jpg | {t['big_s']['auto']:.2f} s | {t['big_s']['torch']:.2f} s | "
          f"{med:.2f} ({q1:.2f}-{q3:.2f}) | <= 0.3 |")
    print(f"\nauto's x8 of the example against torch fp32's: {t['psnr']:.1f} dB (8-bit PSNR; at least {MIN_PSNR:.0f}).")
    if output:
        Path(output).write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
