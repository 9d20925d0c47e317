"""Speed and memory: our networks in several execution variants, against PIL and two
reference networks, in one run on this machine.

    python benchmarks/speed.py            # full run (~5 min on 2 cores, torch.compile included)
    python benchmarks/speed.py --quick    # smoke test: fewer repeats, no torch.compile

Tables printed:
0. the runtimes side by side, what ``backend="auto"`` chooses from (benchmarks/runtime_speed.py;
   skipped with --no-runtimes);
1. latency / throughput of each stage (default model) per variant, batch 1 and batched;
2. quality change of each variant vs eager fp32 on cats/val (PSNR-Y, fixed-size protocol)
   and time per output megapixel: the trade-off that picks the default;
3. the same run's baselines: PIL bicubic / lanczos, SRVGGNetCompact x4 (64 feat, 32 conv)
   and EDSR-baseline x4 (16 blocks, 64 feat), random weights;
4. the latency budget: our 64->512 of a 64x64 image and SRVGGNetCompact timed call
   by call, alternately; the median ratio, scaled to the machine the budget was set on;
   and, the same way, bf16 with the weights cast once (how Upscaler runs) against autocast;
5. peak resident memory of the tiled path: 2048x2048 by 2 and 512x512 by 8 (4096x4096 out).
CUDA rows are added when a GPU is present.
"""
import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent

from reference_nets import EDSRBaseline, SRVGGNetCompact

from upscaler.images import tensor_to_pil
from upscaler.inference import Upscaler, describe_device
from upscaler.metrics import psnr_y
from upscaler.protocol import eval_pair
from upscaler.stages import STAGES
from upscaler.weights import load_model

CATS_VAL = ROOT.parent / "shared" / "data" / "cats" / "val"


def timeit(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# ------------------------------------------------------------------ latency budget
# The budget: 64->512 of a 64x64 image in 20 ms on the machine of the first speed table
# (commit 32f50da), where SRVGGNetCompact x4 on 64x64 took 28.4 ms in the same run.
# Machines differ, so the budget is read as a ratio to SRVGGNetCompact measured beside us.
BUDGET_MS, REFERENCE_SRVGG_MS = 20.0, 28.4


def interleaved(calls: dict, rounds: int) -> dict:
    """{name: [seconds per call]}: the calls timed in turn, round after round, in an order
    that rotates (a call runs faster or slower after some others: caches, idle threads).
    The first 3 rounds warm up and are dropped."""
    names, times = list(calls), {k: [] for k in calls}
    for i in range(rounds + 3):
        for k in names[i % len(names):] + names[:i % len(names)]:
            t = time.perf_counter()
            calls[k]()
            if i >= 3:
                times[k].append(time.perf_counter() - t)
    return times


def ratio_quartiles(times, a, b) -> list:
    """Quartiles of the per-round ratio of call ``a``'s time to call ``b``'s."""
    return statistics.quantiles([x / y for x, y in zip(times[a], times[b])], n=4)


@torch.no_grad()
def latency_budget(up, net, img64, rounds):
    """Our 64->512 (``up``, PIL in and out) against SRVGGNetCompact x4; then the bare float32
    network ``net`` run as ``Upscaler`` runs bf16 (weights cast once) against bf16 autocast
    (how it ran before), the two alone.

    Timed in separate sections, a burst of load on a shared machine lands on one of the
    two and moves their ratio by 20% or more; alternating call by call and taking the
    median of the per-round ratios puts both under the same conditions."""
    srvgg = SRVGGNetCompact().eval().to(memory_format=torch.channels_last)  # as in the baselines table
    x = torch.rand(1, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    budget = interleaved({"ours": lambda: up(img64), "srvgg": lambda: srvgg(x)}, rounds)
    plain = torch.rand(1, 3, 64, 64)  # what Upscaler passes; the autocast variant makes it channels_last itself
    cast = make_variant("channels_last bf16", net, torch.device("cpu"), plain)
    autocast = make_variant("channels_last bf16 autocast", net, torch.device("cpu"), plain)
    precision = interleaved({"cast": lambda: cast(plain), "autocast": lambda: autocast(plain)}, rounds)
    quartiles = ratio_quartiles(budget, "ours", "srvgg")
    median_ms = {f"{k}_ms": statistics.median(v) * 1000 for k, v in {**budget, **precision}.items()}
    return {"rounds": rounds, **median_ms, "ratio_quartiles": quartiles, "scaled_ms": quartiles[1] * REFERENCE_SRVGG_MS,
            "cast_over_autocast_quartiles": ratio_quartiles(precision, "cast", "autocast")}


# ----------------------------------------------------------------------- variants
def make_variant(name, net, device, sample):
    """-> fn(x: float tensor Nx3xHxW in [0,1] on device) -> y float32, for one variant."""
    net = copy.deepcopy(net).eval().to(device)  # variants change the network; the caller's stays
    if name == "eager fp32":
        return lambda x: net(x)
    if name == "channels_last fp32":  # as Upscaler runs fp32: channels_last weights, the image as it is
        cl = net.to(memory_format=torch.channels_last)
        return lambda x: cl(x)
    if name in ("channels_last bf16", "channels_last fp16"):
        # as Upscaler runs them: the weights cast once, the image path in float32 (models.Describes)
        dtype = torch.bfloat16 if "bf16" in name else torch.float16
        cast = net.to(dtype, memory_format=torch.channels_last)
        return lambda x: cast(x).float()
    if name == "channels_last bf16 autocast":
        # how Upscaler ran bf16 before: autocast re-casts the weights on every call, and the
        # image went channels_last too
        cl = net.to(memory_format=torch.channels_last)

        def run(x):
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return cl(x.contiguous(memory_format=torch.channels_last)).float()
        return run
    if name == "torch.compile fp32":
        compiled = torch.compile(net.to(memory_format=torch.channels_last), dynamic=False)
        return lambda x: compiled(x.contiguous(memory_format=torch.channels_last))
    if name == "onnxruntime fp32":
        import onnxruntime as ort

        path = Path(tempfile.mkdtemp()) / "net.onnx"
        # the TorchScript-based exporter: the torch.export one needs onnxscript
        torch.onnx.export(net.cpu(), (sample.cpu(),), str(path), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}}, opset_version=17)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return lambda x: torch.from_numpy(sess.run(None, {"x": x.cpu().numpy()})[0])
    raise ValueError(name)


@torch.no_grad()
def variant_quality(variants, nets, photos, device):
    """PSNR-Y change of each variant vs eager fp32 on the same cats/val images."""
    out = {}
    for stage in ("64to128", "64to512"):
        pairs = [eval_pair(p, STAGES[stage]) for p in photos]
        x = torch.stack([torch.from_numpy(np.asarray(lr, np.float32) / 255).permute(2, 0, 1) for lr, _ in pairs])
        x = x.to(device)
        base = None
        for v in variants:
            fn = make_variant(v, nets[stage], device, x[:1])
            y = fn(x).float().clamp(0, 1).cpu()
            score = statistics.mean(psnr_y(tensor_to_pil(y[i]), hr, STAGES[stage].factor)
                                    for i, (_, hr) in enumerate(pairs))
            base = score if base is None else base
            out[(v, stage)] = (score, score - base)
    return out


def peak_rss(stage, size, weights):
    """Peak RSS (MB) of a fresh process that upscales one size x size photo through load_upscaler."""
    code = f"""
import sys
from PIL import Image
from upscaler import load_upscaler
up = load_upscaler({stage!r}, weights={weights!r})
def hwm():  # this process's own peak RSS (ru_maxrss would include the parent's, inherited at fork)
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) // 1024
base = hwm()
img = Image.open({str(sorted(CATS_VAL.glob('*.jpg'))[0])!r}).convert('RGB').resize(({size}, {size}))
out = up(img)
print(out.size[0], out.size[1], base, hwm())
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    w, h, base, peak = map(int, p.stdout.split()[-4:])
    return w, h, base, peak


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few repeats, no torch.compile, small batch")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--output", default=None)
    ap.add_argument("--no-runtimes", action="store_true", help="skip the runtimes table (runtime_speed.py)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeats, warmup = (2, 1) if args.quick else (10, 3)
    batch = 2 if args.quick else 8
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    nets = {s: load_model("default", s, weights=args.weights)[0] for s in STAGES}
    seed_nets = {s: load_model("seed", s, weights=args.weights)[0] for s in STAGES}
    photos = [Image.open(p).convert("RGB") for p in sorted(CATS_VAL.glob("*.jpg"))[:4 if args.quick else 32]]
    results = {"machine": f"{describe_device('cpu')}, torch {torch.__version__}, threads {torch.get_num_threads()}",
               "rows": []}
    if not args.no_runtimes:
        import runtime_speed

        results["runtimes"] = runtime_speed.run(args.quick, args.threads, weights=args.weights)
        print()
    print(f"# Speed: {results['machine']}\n")

    for device in devices:
        variants = ["eager fp32", "channels_last fp32", "channels_last bf16", "channels_last bf16 autocast"]
        if device.type == "cuda":
            variants.append("channels_last fp16")
        else:
            variants.append("onnxruntime fp32")
        if not args.quick:
            variants.append("torch.compile fp32")
        print(f"## {device}: default model, latency (ms) and output megapixels per second\n")
        print("| stage | input | variant | batch 1 ms | batch 1 MP/s | batch %d ms | batch %d MP/s | ms per output MP |"
              % (batch, batch))
        print("|---|---|---|---:|---:|---:|---:|---:|")
        for stage, st in STAGES.items():
            for v in variants:
                row = {"device": str(device), "stage": stage, "variant": v}
                for n in (1, batch):
                    x = torch.rand(n, 3, st.input_size, st.input_size, device=device)
                    fn = make_variant(v, nets[stage], device, x[:1])
                    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
                    with torch.no_grad():
                        t = timeit(lambda: (fn(x), sync()), repeats, warmup + (2 if "compile" in v else 0))
                    row[f"ms_b{n}"] = t * 1000
                    row[f"mps_b{n}"] = n * st.output_size ** 2 / 1e6 / t
                row["ms_per_mp"] = 1000 / row[f"mps_b{batch}"]
                results["rows"].append(row)
                print(f"| {stage} | {st.input_size}x{st.input_size} | {v} | {row['ms_b1']:.1f} | {row['mps_b1']:.2f} | "
                      f"{row[f'ms_b{batch}']:.1f} | {row[f'mps_b{batch}']:.2f} | {row['ms_per_mp']:.1f} |")
        # the seed model, eager fp32, for scale
        for stage, st in STAGES.items():
            x = torch.rand(1, 3, st.input_size, st.input_size, device=device)
            net = seed_nets[stage].to(device)
            with torch.no_grad():
                t = timeit(lambda: net(x * 2 - 1), repeats, warmup)
            print(f"| {stage} | {st.input_size}x{st.input_size} | seed model, eager fp32 | {t * 1000:.1f} | "
                  f"{st.output_size ** 2 / 1e6 / t:.2f} | | | {t * 1000 / (st.output_size ** 2 / 1e6):.1f} |")

        # the seed model through the real path (Upscaler), fp32 against the reduced precisions it
        # lists as safe: what decides seed's reduced_dtypes (upscaler/models.py)
        print(f"\n## {device}: seed model, reduced precision vs fp32 through Upscaler (cats/val, {len(photos)} photos)\n")
        print("| dtype | 64to128 PSNR-Y | change | 64to512 PSNR-Y | change | 64to512 of 64x64, ms |")
        print("|---|---:|---:|---:|---:|---:|")
        seed_dtypes = ["float32", *[d for d in seed_nets["64to128"].reduced_dtypes
                                    if device.type == "cuda" or d == "bfloat16"]]
        seed_q = {}
        for dt in seed_dtypes:
            cells = []
            for stage in ("64to128", "64to512"):
                up = Upscaler(seed_nets[stage], stage, device=device, dtype=dt)
                pairs = [eval_pair(p, STAGES[stage]) for p in photos]
                score = statistics.mean(psnr_y(up(lr), hr, STAGES[stage].factor) for lr, hr in pairs)
                seed_q.setdefault(stage, score)
                cells.append((score, score - seed_q[stage]))
            img = photos[0].resize((64, 64))
            t = timeit(lambda: up(img), repeats, warmup)
            results.setdefault("seed_dtypes", []).append({"device": str(device), "dtype": dt, "psnr_64to128": cells[0][0],
                                                          "psnr_64to512": cells[1][0], "ms_64to512": t * 1000})
            print(f"| {dt} | {cells[0][0]:.3f} | {cells[0][1]:+.3f} | {cells[1][0]:.3f} | {cells[1][1]:+.3f} | "
                  f"{t * 1000:.1f} |")

        print(f"\n## {device}: quality change of each variant vs eager fp32 (cats/val, {len(photos)} photos)\n")
        q = variant_quality(variants, nets, photos, device)
        print("| variant | 64to128 PSNR-Y | change | 64to512 PSNR-Y | change | 64to512 ms per output MP (batch %d) |" % batch)
        print("|---|---:|---:|---:|---:|---:|")
        for v in variants:
            mpx = next(r["ms_per_mp"] for r in results["rows"] if r["variant"] == v and r["stage"] == "64to512"
                       and r["device"] == str(device))
            a, b = q[(v, "64to128")], q[(v, "64to512")]
            results.setdefault("quality", []).append({"device": str(device), "variant": v, "psnr_64to128": a[0],
                                                      "delta_64to128": a[1], "psnr_64to512": b[0],
                                                      "delta_64to512": b[1], "ms_per_mp_64to512": mpx})
            print(f"| {v} | {a[0]:.3f} | {a[1]:+.3f} | {b[0]:.3f} | {b[1]:+.3f} | {mpx:.1f} |")

    print("\n## Baselines in the same run (cpu, batch 1)\n")
    print("| method | input | output | ms | ms per output MP |")
    print("|---|---|---|---:|---:|")
    img64 = photos[0].resize((64, 64))
    base_rows = []
    for name, method, f in (("PIL bicubic", Image.BICUBIC, 8), ("PIL lanczos", Image.LANCZOS, 8),
                            ("PIL bicubic", Image.BICUBIC, 4)):
        t = timeit(lambda: img64.resize((64 * f, 64 * f), method), repeats * 3, warmup)
        base_rows.append((name, "64x64", f"{64 * f}x{64 * f}", t * 1000, t * 1000 / ((64 * f) ** 2 / 1e6)))
    for name, net in (("SRVGGNetCompact x4 (64 feat, 32 conv)", SRVGGNetCompact()),
                      ("EDSR-baseline x4 (16 blocks, 64 feat)", EDSRBaseline())):
        net = net.eval().to(memory_format=torch.channels_last)
        x = torch.rand(1, 3, 64, 64).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            t = timeit(lambda: net(x), repeats, warmup)
        base_rows.append((name, "64x64", "256x256", t * 1000, t * 1000 / (256 ** 2 / 1e6)))
    up = Upscaler(nets["64to512"], "64to512", device="cpu")
    t = timeit(lambda: up(img64), repeats, warmup)
    base_rows.append(("ours: load_upscaler('64to512') on a PIL image (default variant)", "64x64", "512x512",
                      t * 1000, t * 1000 / (512 ** 2 / 1e6)))
    for r in base_rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.1f} | {r[4]:.1f} |")
    results["baselines"] = base_rows

    print("\n## The latency budget: 64->512 of a 64x64 image, interleaved with SRVGGNetCompact\n")
    budget = latency_budget(up, nets["64to512"], img64, rounds=10 if args.quick else 200)
    results["budget"] = budget
    print(f"{budget['rounds']} rounds; each round times one call of each, back to back (the order alternates), "
          f"and the ratio is taken per round, so machine noise that lasts longer than a round cancels out.\n")
    print("| ours ms (median) | SRVGGNetCompact ms (median) | ratio: median (quartiles) | "
          f"scaled to the budget's machine (SRVGGNetCompact {REFERENCE_SRVGG_MS} ms) | budget |")
    print("|---:|---:|---|---:|---:|")
    q1, med, q3 = budget["ratio_quartiles"]
    print(f"| {budget['ours_ms']:.1f} | {budget['srvgg_ms']:.1f} | {med:.3f} ({q1:.3f}-{q3:.3f}) | "
          f"{budget['scaled_ms']:.1f} ms ({q1 * REFERENCE_SRVGG_MS:.1f}-{q3 * REFERENCE_SRVGG_MS:.1f}) | "
          f"{BUDGET_MS} ms |")
    q1, med, q3 = budget["cast_over_autocast_quartiles"]
    print(f"\nThe bare network, the same way ({budget['rounds']} rounds of the two alone): bf16 with its weights "
          f"cast once, as Upscaler runs it, against bf16 autocast: {budget['cast_ms']:.1f} against "
          f"{budget['autocast_ms']:.1f} ms, ratio {med:.3f} ({q1:.3f}-{q3:.3f}).")

    print("\n## Peak resident memory through the tiled path (fresh process, default variant)\n")
    print("| case | output | RSS after loading, MB | peak RSS, MB |")
    print("|---|---|---:|---:|")
    cases = [("128to256", 2048), ("64to512", 512)] if not args.quick else [("64to128", 256)]
    results["memory"] = []
    for stage, size in cases:
        w, h, base, peak = peak_rss(stage, size, args.weights)
        results["memory"].append({"stage": stage, "input": size, "output": [w, h], "base_mb": base, "peak_mb": peak})
        print(f"| {size}x{size} by {STAGES[stage].factor} ({stage}) | {w}x{h} | {base} | {peak} |")
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
