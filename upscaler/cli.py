"""Command line: ``python -m upscaler upscale | evaluate | figures | curves | export``.

    python -m upscaler upscale photo.jpg --stage 64to512 --output-dir out/
    python -m upscaler upscale clip.mp4 anim.gif photos/ --scale 2 --output-dir out/
    accelerate launch -m upscaler upscale big_folder/ --scale 4 --output-dir out/ --skip-existing
    python -m upscaler upscale photos/ --stage 128to256 --output-dir out/ --weights my-weights/
    python -m upscaler evaluate --data ../shared/data/cats/val --output weights/evaluation.json
    python -m upscaler figures --data ../shared/data/cats/val --output-dir docs/figures
    python -m upscaler export --all --output-dir onnx/      # model.onnx for every model and stage
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

from PIL import Image

from .images import DEFAULT_MAX_PIXELS, FORMATS, ImageRejected
from .inference import DTYPES
from .runtimes import BACKENDS
from .models import DEFAULT_MODEL, FAMILIES, blending_families
from .protocol import eval_pair, image_files
from .stages import STACK_STAGE, STAGES, TWO_X_STAGES
from .video import OUTPUTS as VIDEO_OUTPUTS
from .weights import bundled_weights_dir, whole_curve


def _add_weights_args(p):
    p.add_argument("--model", default=DEFAULT_MODEL, choices=list(FAMILIES))
    src = p.add_mutually_exclusive_group()
    src.add_argument("--weights", default=None, help="a local weights root (<root>/<model>/<stage>/)")
    src.add_argument("--repo-id", default=None, help="a Hub model repo in the same layout")
    p.add_argument("--revision", default=None, help="Hub revision (commit, branch or tag)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--dtype", default=None, choices=DTYPES)
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="what runs the network: auto (the fastest installed: OpenVINO on a CPU where it is "
                        "installed, else torch), torch, openvino or onnxruntime")
    p.add_argument("--self-ensemble", action="store_true", help="average the 8 flips/rotations (8x slower)")


def cmd_upscale(args) -> int:
    from tqdm.auto import tqdm

    from . import jobs
    from .inference import load_upscaler
    from .motion import MotionLimits
    from .pipeline import Pipeline, factor_of

    try:
        tasks = jobs.plan(args.inputs, args.output_dir, args.format, args.video_format)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    state = jobs.launcher_state()  # under accelerate launch / torchrun: this process's part and device
    device = args.device or (str(state.device) if state is not None else None)
    stages = [args.stage] if args.stage else list(Pipeline.for_scale(args.scale).stages)
    ups = [load_upscaler(s, model=args.model, weights=args.weights, repo_id=args.repo_id, revision=args.revision,
                         device=device, dtype=args.dtype, self_ensemble=args.self_ensemble,
                         denoise_strength=args.denoise_strength, backend=args.backend) for s in stages]
    factor = factor_of(ups)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    share = jobs.mine(tasks, state)
    limits = MotionLimits(max_frames=args.max_frames, max_seconds=args.max_seconds)
    written, failed, skipped = [], [], []
    quiet = args.quiet or len(share) == 1
    for task in tqdm(share, desc=f"upscaling x{factor}", unit="file", disable=quiet):
        if args.skip_existing and task.target.is_file():
            skipped.append(task)
            continue
        frames = None
        if task.kind != "still" and not args.quiet:  # a bar per clip: frames, with the time left
            frames = tqdm(desc=task.source.name, unit="frame", leave=False)
        try:
            jobs.run(task, ups, max_input_pixels=args.max_pixels, max_output_pixels=args.max_output_pixels,
                     fmt=args.format, quality=args.quality, crf=args.crf, limits=limits,
                     first_seconds=args.first_seconds,
                     progress=None if frames is None else (lambda done, total, bar=frames: _frame_progress(bar, done, total)))
        except ImageRejected as e:
            failed.append((task.source, str(e)))
            tqdm.write(f"skipped {task.source}: {e}", file=sys.stderr)
            continue
        finally:
            if frames is not None:
                frames.close()
        written.append(task)
    label = f"{ups[0].model}/{'+'.join(stages)}, x{factor}, {ups[0].source}"
    print(f"wrote {len(written)} file(s) to {out_dir} ({label})"
          + (f"; {len(skipped)} already there, skipped" if skipped else ""))
    for task in written:  # where each input went; a renamed one is always said
        renamed = task.target.stem != task.source.stem
        if renamed or not args.quiet:
            print(f"  {task.source} -> {task.target}" + ("  (renamed: another input has the same name)"
                                                          if renamed else ""))
    if failed:
        print(f"{len(failed)} file(s) skipped:", file=sys.stderr)
        for path, why in failed:
            print(f"  {path}: {why}", file=sys.stderr)
        return 1
    return 0


def _frame_progress(bar, done, total):
    if total and bar.total != total:
        bar.total = total
    bar.update(done - bar.n)


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate, merge, save
    from .protocol import format_table

    result = evaluate(args.data, weights=args.weights, models=args.models, stages=args.stages, limit=args.limit,
                      perceptual=args.lpips, device=args.device, dtype=args.dtype)
    root = Path(args.weights or bundled_weights_dir())
    card_file = root / "evaluation.json"
    if args.update_card:
        # the card's table: this run's rows over the earlier file's (same photos only)
        result = merge(json.loads(card_file.read_text()) if card_file.is_file() else None, result, args.models)
    print(format_table(result))
    if args.output:
        save(result, args.output)
        print(f"saved {args.output}")
    if args.update_card:
        from .hub import write_model_card

        save(result, card_file)
        card = Path(write_model_card(root))
        print(f"updated {os.path.relpath(card) if card.is_absolute() else card}")
    return 0


def cmd_figures(args) -> int:
    from .figures import comparison_grid
    from .inference import load_upscaler

    photos = [Image.open(p).convert("RGB") for p in image_files(args.data)[:args.count]]
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stage in args.stages:
        up = load_upscaler(stage, model=args.model, weights=args.weights)
        pairs = [eval_pair(p, STAGES[stage]) for p in photos]
        grid = comparison_grid([lr for lr, _ in pairs], [up(lr) for lr, _ in pairs], [hr for _, hr in pairs],
                               cell=args.cell)
        path = out_dir / f"{args.model}-{stage}.png"
        grid.save(path)
        print(f"saved {path}")
    return 0


def cmd_curves(args) -> int:
    """One learning-curve plot per model and stage family, from the curves that
    train_accelerate.py records in each config.json."""
    import json

    from .figures import learning_curves

    root = Path(args.weights or bundled_weights_dir())
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    families = {"2x stages": TWO_X_STAGES, "8x stack": [STACK_STAGE]}
    for model in FAMILIES:
        for family, stages in families.items():
            curves = {}
            for stage in stages:
                cfg = root / model / stage / "config.json"
                if not cfg.is_file():
                    continue
                training = json.loads(cfg.read_text()).get("training", {})
                curve = whole_curve(training)  # a continued run is drawn after the run it continued
                shipped = "ema" if training.get("shipped_weights") == "ema" else "model"
                if curve:
                    curves[f"{stage} ({'EMA' if shipped == 'ema' else 'raw'} weights)"] = [
                        (c["samples"], c[f"psnr_{shipped}"]) for c in curve if f"psnr_{shipped}" in c]
                    curves[f"{stage} bicubic"] = [(c["samples"], c["psnr_bicubic"]) for c in curve]
            img = learning_curves(curves, f"{model}, {family}: held-out training photos")
            path = out_dir / f"curve-{model}-{'2x' if family == '2x stages' else '8x'}.png"
            img.save(path)
            print(f"saved {path}" + ("" if curves else " (no recorded curve)"))
    return 0


def cmd_export(args) -> int:
    from .export import OPSET, check_onnx, export_onnx

    models = list(FAMILIES) if args.all else [args.model]
    stages = list(STAGES) if args.all else [args.stage]
    if not args.all and args.stage is None:
        print("error: give --stage (or --all)", file=sys.stderr)
        return 2
    worst = 0.0
    for model in models:
        for stage in stages:
            started = time.perf_counter()
            path = export_onnx(model, stage, args.output_dir, weights=args.weights, repo_id=args.repo_id,
                               revision=args.revision)
            line = (f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, opset {OPSET}, exported in "
                    f"{time.perf_counter() - started:.2f} s)")
            if not args.no_check:
                diff = check_onnx(path, model, stage, weights=args.output_dir)
                worst = max(worst, diff)
                line += f"; onnxruntime vs torch: max |diff| {diff:.2e}"
            print(line)
    if not args.no_check and worst > 1e-4:
        print(f"error: onnxruntime differs from torch by {worst:.2e} (> 1e-4)", file=sys.stderr)
        return 1
    if args.push_to_hub:
        from .hub import push_weights

        print(f"pushed to {push_weights(args.output_dir, args.hub_model_id, revision=args.hub_revision)}")
    return 0


def _number_type(kind, low=None, high=None, what="a number"):
    """An argparse type: ``kind(text)`` within [low, high], else argparse's own error
    (the usage, the message, exit status 2) instead of a traceback."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: use {what} {bounds}")
        return value
    return parse


def _strength_type(text):
    from .models import blend_strength

    try:
        return blend_strength(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser():
    p = argparse.ArgumentParser(prog="python -m upscaler", description="Learned image upscaling.")
    sub = p.add_subparsers(dest="command", required=True)

    u = sub.add_parser("upscale", help="upscale images, animations (GIF, WebP, APNG) and videos (MP4, WebM, MOV)")
    u.add_argument("inputs", nargs="+", metavar="input", help="files and folders; folders: every image and video in them")
    how = u.add_mutually_exclusive_group(required=True)
    how.add_argument("--scale", type=int, choices=[2, 4, 8], help="2x, 4x or 8x, as the demo makes them")
    how.add_argument("--stage", choices=list(STAGES), help="one network by name")
    u.add_argument("--output-dir", required=True, help="results are written here with the input's stem")
    u.add_argument("--format", default=None, choices=[*FORMATS, "gif"],
                   help="stills: png (default; lossless, keeps 16-bit), webp or jpeg, with the input's ICC, DPI "
                        "and EXIF. Animations: their own format by default, or gif, webp (lossless) or png (APNG)")
    u.add_argument("--video-format", default="mp4", choices=list(VIDEO_OUTPUTS),
                   help="videos: mp4 (H.264) or webm (VP9); timing, rotation and audio are kept")
    u.add_argument("--crf", type=_number_type(int, 0, 63, "a whole number"), default=None,
                   help="video quality: lower is better and larger (default 20 for H.264, 32 for VP9)")
    u.add_argument("--first-seconds", type=_number_type(float, 0.001, what="a number"), default=None,
                   help="videos and animations: only their first N seconds")
    u.add_argument("--max-frames", type=_number_type(int, 1, what="a whole number"), default=None,
                   help="refuse animations and videos with more frames")
    u.add_argument("--max-seconds", type=_number_type(float, 0.001, what="a number"), default=None,
                   help="refuse videos longer than this")
    u.add_argument("--skip-existing", action="store_true",
                   help="do not redo an input whose output is already there (resumes an interrupted job)")
    u.add_argument("--quality", type=_number_type(int, 1, 100, "a whole number"), default=95,
                   help="webp / jpeg quality (1-100)")
    u.add_argument("--max-pixels", type=_number_type(int, 1, what="a whole number"), default=DEFAULT_MAX_PIXELS,
                   help="refuse larger inputs")
    u.add_argument("--max-output-pixels", type=_number_type(int, 1, what="a whole number"), default=400_000_000,
                   help="refuse inputs whose result would be larger (memory: ~3 bytes a pixel)")
    u.add_argument("--strength", "--denoise-strength", dest="denoise_strength", type=_strength_type, default=None,
                   metavar="0..1",
                   help="a blend of the model's weights with its twin's (rounded to 0.01; default 1, the model "
                        "itself). --model photo: its denoise strength, lower keeps more fine texture (0 = the "
                        "clean default model). --model sharp: its invented detail (0 = the photo model, faithful)")
    u.add_argument("--quiet", action="store_true")
    _add_weights_args(u)
    u.set_defaults(func=cmd_upscale, check=_check_upscale)

    e = sub.add_parser("evaluate", help="the cats/val table (fixed-size protocol)")
    e.add_argument("--data", required=True, help="a folder of photos (e.g. ../shared/data/cats/val)")
    e.add_argument("--weights", default=None, help="weights root (default: bundled weights/)")
    e.add_argument("--models", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    e.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES))
    e.add_argument("--limit", type=_number_type(int, 1, what="a whole number"), default=None,
                   help="first N photos only")
    e.add_argument("--output", default=None, help="write the results as JSON")
    e.add_argument("--lpips", action=argparse.BooleanOptionalAction, default=True,
                   help="also LPIPS (AlexNet; lower = closer, as people judge) where its weights are "
                        "(UPSCALER_LPIPS_DIR, docs/lpips.md)")
    e.add_argument("--update-card", action="store_true",
                   help="also write <weights>/evaluation.json and regenerate <weights>/README.md (the model "
                        "card); rows of models not evaluated this time are kept from the earlier file "
                        "if it scored the same photos")
    e.add_argument("--device", default=None)
    e.add_argument("--dtype", default=None, choices=DTYPES)
    e.set_defaults(func=cmd_evaluate)

    f = sub.add_parser("figures", help="the reference's figures: bilinear / learned / ground truth")
    f.add_argument("--data", required=True)
    f.add_argument("--output-dir", required=True)
    f.add_argument("--model", default=DEFAULT_MODEL, choices=list(FAMILIES))
    f.add_argument("--weights", default=None)
    f.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES))
    f.add_argument("--count", type=int, default=4)
    f.add_argument("--cell", type=int, default=192)
    f.set_defaults(func=cmd_figures)

    x = sub.add_parser("export", help="ONNX files beside the weights (dynamic batch, height and width)")
    x.add_argument("--model", default=DEFAULT_MODEL, choices=list(FAMILIES))
    x.add_argument("--stage", default=None, choices=list(STAGES))
    x.add_argument("--all", action="store_true", help="every model and stage")
    x.add_argument("--output-dir", required=True,
                   help="a weights root: <dir>/<model>/<stage>/model.onnx (config.json and model.safetensors "
                        "are copied beside it when missing)")
    src = x.add_mutually_exclusive_group()
    src.add_argument("--weights", default=None, help="the weights root to export (default: the bundled weights)")
    src.add_argument("--repo-id", default=None, help="a Hub model repo in the same layout")
    x.add_argument("--revision", default=None)
    x.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    x.add_argument("--push-to-hub", action="store_true", help="upload the folder (weights, ONNX, card)")
    x.add_argument("--hub-model-id", default=None)
    x.add_argument("--hub-revision", default=None)
    x.set_defaults(func=cmd_export)

    c = sub.add_parser("curves", help="learning curves (validation PSNR vs samples) from each config.json")
    c.add_argument("--weights", default=None, help="weights root (default: bundled weights/)")
    c.add_argument("--output-dir", required=True)
    c.set_defaults(func=cmd_curves)
    return p


def _check_upscale(parser, args):
    if args.denoise_strength is not None and FAMILIES[args.model].blend_base is None:
        parser.error(f"--strength applies to the models that blend with a twin ({blending_families()}), "
                     f"not --model {args.model}")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "check", None):
        args.check(parser, args)  # combinations of arguments: argparse's message and exit status 2
    from .weights import WeightsError

    try:
        return args.func(args)
    except WeightsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def main_exit():
    """The ``upscaler`` console script."""
    sys.exit(main())
