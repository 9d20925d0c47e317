"""python -m upscaler ..., as a user runs it."""
import json
import shutil

import pytest
from conftest import CATS_VAL
from helpers import cli
from PIL import Image
from safetensors.torch import load_file, save_file


@pytest.mark.slow
def test_upscale_a_folder(tiny_weights, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for f in sorted(CATS_VAL.glob("*.jpg"))[:3]:
        shutil.copy(f, photos / f.name)
    p = cli("upscale", photos, "--stage", "64to128", "--weights", tiny_weights, "--output-dir", tmp_path / "out")
    assert p.returncode == 0, p.stderr
    for f in photos.iterdir():
        out = Image.open(tmp_path / "out" / f"{f.stem}.png")
        assert out.size == tuple(2 * v for v in Image.open(f).size)
    assert "wrote 3 file(s)" in p.stdout


@pytest.mark.slow
def test_upscale_one_file_x8_with_the_seed_model(tiny_weights, tmp_path):
    src = sorted(CATS_VAL.glob("*.jpg"))[0]
    p = cli("upscale", src, "--stage", "64to512", "--model", "seed", "--weights", tiny_weights,
            "--output-dir", tmp_path)
    assert p.returncode == 0, p.stderr
    assert Image.open(tmp_path / f"{src.stem}.png").size == tuple(8 * v for v in Image.open(src).size)


@pytest.mark.slow
def test_clear_errors(tiny_weights, tmp_path):
    p = cli("upscale", tmp_path / "missing.jpg", "--stage", "64to128", "--output-dir", tmp_path)
    assert p.returncode == 2 and "does not exist" in p.stderr
    p = cli("upscale", tmp_path, "--stage", "64to128", "--output-dir", tmp_path / "o")
    assert p.returncode == 2 and "no images" in p.stderr
    p = cli("upscale", CATS_VAL, "--stage", "32to64", "--output-dir", tmp_path)
    assert p.returncode == 2 and "invalid choice" in p.stderr
    p = cli("upscale", CATS_VAL, "--stage", "64to128", "--output-dir", tmp_path, "--weights", tmp_path)
    assert p.returncode == 2 and "no model.safetensors" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow
def test_evaluate_and_card(tiny_weights, tmp_path):
    root = tmp_path / "w"
    shutil.copytree(tiny_weights, root)
    p = cli("evaluate", "--data", CATS_VAL, "--weights", root, "--limit", "2", "--stages", "64to128", "64to512",
            "--update-card")
    assert p.returncode == 0, p.stderr
    result = json.loads((root / "evaluation.json").read_text())
    rows = result["stages"]["64to512"]
    assert {"bilinear", "bicubic", "lanczos", "seed", "default",
            "default (2x stages chained, no fine-tuning)"} <= set(rows)
    assert "| bicubic |" in p.stdout
    assert "Evaluation on cats/val" in (root / "README.md").read_text()
    # re-scoring one model at one stage keeps every other row of the card
    weights_file = root / "default" / "64to128" / "model.safetensors"
    save_file({k: v * 0.9 for k, v in load_file(weights_file).items()}, weights_file)  # "retrained"
    p = cli("evaluate", "--data", CATS_VAL, "--weights", root, "--limit", "2", "--stages", "64to128",
            "--models", "default", "--update-card")
    assert p.returncode == 0, p.stderr
    merged = json.loads((root / "evaluation.json").read_text())
    assert merged["stages"]["64to512"] == result["stages"]["64to512"]  # not re-scored: kept as it was
    assert merged["stages"]["64to128"]["seed"] == result["stages"]["64to128"]["seed"]
    assert merged["stages"]["64to128"]["default"] != result["stages"]["64to128"]["default"]  # re-scored
    # another set of photos is not merged with the earlier one
    p = cli("evaluate", "--data", CATS_VAL, "--weights", root, "--limit", "1", "--stages", "64to128",
            "--models", "default", "--update-card")
    alone = json.loads((root / "evaluation.json").read_text())
    assert alone["images"] == 1 and set(alone["stages"]) == {"64to128"} and "seed" not in alone["stages"]["64to128"]


@pytest.mark.slow
def test_figures(tiny_weights, tmp_path):
    p = cli("figures", "--data", CATS_VAL, "--weights", tiny_weights, "--output-dir", tmp_path, "--count", "2",
            "--stages", "64to128", "--cell", "64")
    assert p.returncode == 0, p.stderr
    assert Image.open(tmp_path / "default-64to128.png").size == (2 * 64, 3 * (64 + 14))


# ------------------------------------------------------------ nothing lost, nothing raw
def test_inputs_of_the_same_name_get_distinct_outputs_and_the_mapping_is_said(tiny_weights, tmp_path, capsys):
    """a.jpg and a.png both become a.png: the second takes a-2.png, and the CLI says which."""
    from upscaler.cli import main

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (20, 16), (200, 30, 30)).save(photos / "a.jpg")
    Image.new("RGB", (20, 16), (30, 30, 200)).save(photos / "a.png")
    assert main(["upscale", str(photos), "--stage", "64to128", "--weights", str(tiny_weights),
                 "--output-dir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a-2.png", "a.png"]
    assert "wrote 2 file(s)" in out
    assert f"{photos / 'a.jpg'} -> {tmp_path / 'out' / 'a.png'}" in out
    assert f"{photos / 'a.png'} -> {tmp_path / 'out' / 'a-2.png'}  (renamed" in out
    reds = [Image.open(tmp_path / "out" / n).convert("RGB").getpixel((10, 8)) for n in ("a.png", "a-2.png")]
    assert reds[0][0] > 150 and reds[1][2] > 150  # each input's own result


@pytest.mark.parametrize("args, message", [
    (["--model", "photo", "--denoise-strength", "2"], "denoise strength must be from 0 to 1"),
    (["--model", "photo", "--denoise-strength", "lots"], "denoise strength must be a number"),
    (["--model", "seed", "--denoise-strength", "0.5"], "--strength applies to the models that blend"),
    (["--quality", "0"], "out of range"),
    (["--max-pixels", "-5"], "out of range"),
])
def test_invalid_arguments_are_refused_by_argparse_with_status_2(tmp_path, capsys, args, message):
    from upscaler.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["upscale", str(tmp_path), "--stage", "64to128", "--output-dir", str(tmp_path / "o"), *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "usage:" in err and "Traceback" not in err


def test_a_failed_write_leaves_no_part_file(tmp_path, monkeypatch):
    """An encoder or a disk that fails mid-write: the error goes on, nothing is left behind."""
    from upscaler import images

    def broken(img, fp, **params):
        with open(fp, "wb") as fh:
            fh.write(b"\x89PNG half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(images, "write_png", broken)
    with pytest.raises(OSError, match="No space left"):
        images.save_image(Image.new("RGB", (8, 8)), tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_onnx_export_leaves_no_part_file(tmp_path, monkeypatch):
    import torch

    from upscaler import export
    from upscaler.models import ResidualUpsampler

    def broken(*args, **kwargs):
        open(args[2], "wb").write(b"half")
        raise RuntimeError("exporter failed")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(RuntimeError, match="exporter failed"):
        export.write_onnx(ResidualUpsampler(num_features=4, num_convs=1), tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_evaluate_skips_missing_weights_but_stops_on_corrupt_ones(tiny_weights, tmp_path, capsys):
    from upscaler.cli import main

    root = tmp_path / "w"
    shutil.copytree(tiny_weights, root)
    shutil.rmtree(root / "seed")  # missing: its rows are skipped, with a warning
    with pytest.warns(UserWarning, match="skipping seed/64to128"):
        assert main(["evaluate", "--data", str(CATS_VAL), "--weights", str(root), "--limit", "1",
                     "--stages", "64to128"]) == 0
    (root / "photo" / "64to128" / "model.safetensors").write_bytes(b"not safetensors")  # corrupt: an error
    code = main(["evaluate", "--data", str(CATS_VAL), "--weights", str(root), "--limit", "1",
                 "--stages", "64to128", "--update-card"])
    assert code == 2 and "do not load" in capsys.readouterr().err
    assert not (root / "evaluation.json").exists()  # no shortened table was published


# ------------------------------------------------------------------ motion and many files
def test_stills_animations_and_videos_in_one_command(tiny_weights, tmp_path, capsys):
    """upscaler upscale clip.mp4 anim.gif photos/ --scale 2: each by its kind, timing kept."""
    import av
    from motion_files import animation, clip

    from upscaler.cli import main

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (20, 16), "red").save(photos / "a.jpg")
    clip(photos / "b.mp4", n=8)  # a folder's videos come along
    animation(tmp_path / "anim.gif", "GIF")
    clip(tmp_path / "clip.mp4", n=10)
    out = tmp_path / "out"
    assert main(["upscale", str(tmp_path / "clip.mp4"), str(tmp_path / "anim.gif"), str(photos), "--scale", "2",
                 "--weights", str(tiny_weights), "--output-dir", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "anim.gif", "b.mp4", "clip.mp4"]
    assert Image.open(out / "a.png").size == (40, 32)
    gif = Image.open(out / "anim.gif")
    assert gif.n_frames == 6 and gif.size == (100, 80)
    with av.open(str(out / "clip.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 10 and c.streams.audio
    assert "wrote 4 file(s)" in capsys.readouterr().out
    # --scale 4 chains two networks; --skip-existing leaves finished outputs alone
    assert main(["upscale", str(tmp_path / "anim.gif"), "--scale", "4", "--format", "webp", "--weights",
                 str(tiny_weights), "--output-dir", str(out), "--quiet"]) == 0
    assert Image.open(out / "anim.webp").size == (200, 160)
    before = (out / "clip.mp4").stat().st_mtime_ns
    assert main(["upscale", str(tmp_path / "clip.mp4"), "--scale", "2", "--weights", str(tiny_weights),
                 "--output-dir", str(out), "--skip-existing"]) == 0
    assert (out / "clip.mp4").stat().st_mtime_ns == before
    assert "1 already there, skipped" in capsys.readouterr().out


def test_scale_or_stage_is_required(tmp_path, capsys):
    from upscaler.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["upscale", str(tmp_path), "--output-dir", str(tmp_path)])
    assert stop.value.code == 2 and "one of the arguments --scale --stage is required" in capsys.readouterr().err


@pytest.mark.slow  # two processes
def test_accelerate_launch_splits_a_folder_between_two_processes(tiny_weights, tmp_path):
    """accelerate launch -m upscaler upscale: each file written once, by one process; the
    same command again skips what is done."""
    import subprocess
    import sys

    from conftest import ROOT

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(5):
        Image.new("RGB", (12 + i, 10), (40 * i, 80, 160)).save(photos / f"p{i}.png")
    # --multi_gpu starts the processes through torch's launcher; with no GPU they meet over gloo
    # on the CPU (accelerate's --cpu would start one process only)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29531",
           "-m", "upscaler", "upscale", str(photos), "--scale", "2", "--weights", str(tiny_weights),
           "--output-dir", str(tmp_path / "out"), "--skip-existing"]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert sorted(x.name for x in (tmp_path / "out").iterdir()) == [f"p{i}.png" for i in range(5)]
    counts = [int(w) for w in __import__("re").findall(r"wrote (\d) file", p.stdout)]
    assert sorted(counts) == [2, 3]  # split between the two, nothing twice
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.count("wrote 0 file(s)") == 2
