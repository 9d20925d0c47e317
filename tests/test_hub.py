"""The real Hub code (create_repo, upload_folder, hf_hub_download) against a local
Hub-compatible server (tests/hub_server.py); never the network."""
import os
import subprocess
import sys

import pytest
from conftest import ROOT
from helpers import ACCELERATE
from helpers import train_args as common
from hub_server import serve

pytestmark = pytest.mark.slow  # subprocesses and a server

LOAD = r"""
import sys
from PIL import Image
from upscaler import load_upscaler
up = load_upscaler(sys.argv[1], model=sys.argv[2], repo_id=sys.argv[3], revision=sys.argv[4])
print("SOURCE", up.source, "SIZE", up(Image.new("RGB", (6, 4))).size)
"""


@pytest.fixture()
def hub(tmp_path):
    hub, url, server = serve()
    env = {**os.environ, "HF_ENDPOINT": url, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_XET": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    yield hub, env
    server.shutdown()


def test_push_to_hub_uploads_weights_and_card_not_checkpoints(tiny_dataset, tmp_path, hub):
    hub_state, env = hub
    out = tmp_path / "w"
    p = subprocess.run([*ACCELERATE, *common(tiny_dataset, out, "--stage", "64to128", "--max-steps", "2",
                                             "--push-to-hub", "--hub-model-id", "me/cats")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (out / "checkpoints").is_dir()  # kept locally...
    _, tree = hub_state.resolve("me/cats", "main")
    assert sorted(tree) == ["README.md", "default/64to128/config.json", "default/64to128/model.safetensors"]
    card = tree["README.md"].decode()
    assert card.startswith("---\n") and "pipeline_tag: image-to-image" in card
    assert "| default | 64to128 | ResidualUpsampler | l1 | no | 2 |" in card  # the real recipe, not a placeholder

    # ...and what was pushed loads back through hf_hub_download at a pinned commit
    sha = hub_state.repos["me/cats"]["refs"]["main"]
    p = subprocess.run([sys.executable, "-c", LOAD, "64to128", "default", "me/cats", sha],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"SOURCE hub:me/cats@{sha} SIZE (12, 8)" in p.stdout


def test_hub_download_is_cached_for_offline_use(tiny_weights, tmp_path, hub):
    hub_state, env = hub
    code = f"from upscaler.hub import push_weights; push_weights({str(tiny_weights)!r}, 'me/w', revision='v1')"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
    args = [sys.executable, "-c", LOAD, "64to512", "seed", "me/w", "v1"]
    first = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert "SIZE (48, 32)" in first.stdout, first.stderr[-2000:]
    # a pre-filled cache serves the same call with the Hub switched off
    offline = subprocess.run(args, cwd=ROOT, env={**env, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"},
                             capture_output=True, text=True, timeout=300)
    assert "SIZE (48, 32)" in offline.stdout, offline.stderr[-2000:]


def test_missing_repo_is_a_clear_error(tmp_path, hub):
    _, env = hub
    p = subprocess.run([sys.executable, "-m", "upscaler", "upscale", str(ROOT / "examples" / "cat.4093.jpg"),
                        "--stage", "64to128", "--output-dir", str(tmp_path), "--repo-id", "nobody/nothing"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2
    assert "could not fetch default/64to128 from the Hub repo 'nobody/nothing'" in p.stderr
    assert "Traceback" not in p.stderr
