"""The soak benchmark in small: 60 requests from 4 clients through `python app.py`, with
short file lifetimes so that the disk bound can be seen within the test."""
import json
import subprocess
import sys

import pytest
from conftest import ROOT
from helpers import free_port

pytestmark = pytest.mark.slow  # a server and 60 requests


def test_sixty_requests_meet_the_soak_targets(tmp_path):
    out = tmp_path / "soak.json"
    p = subprocess.run([sys.executable, "benchmarks/soak.py", "--requests", "60", "--clients", "4", "--warmup", "30",
                        "--sample-every", "1", "--port", str(free_port()), "--output-ttl", "3", "--cache-ttl", "4", "--settle", "8",
                        "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = json.loads(out.read_text())
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert report["requests"] == 60 and report["unexpected_errors"] == 0 and report["server_alive"]
    assert all(report["targets"].values()), report["targets"]
    assert {e["endpoint"] for e in report["endpoints"]} >= {"/upscale_by", "/upscale", "/compare", "/upscale_batch",
                                                             "/upscale_video"}
    assert report["hostile"], "the mix holds hostile files"
    # with 3 s / 4 s lifetimes nothing piles up: 8 s later, only the last request's files
    # (its upload and two results) and the page's 3 example photos are left
    settled = report["settled"]
    assert settled["outputs_files"] <= 3 and settled["cache_files"] <= 6, settled
    assert report["max_files"] > 20  # (while hundreds of files were written)
    assert "| RSS, MB |" in p.stdout and "Hostile files" in p.stdout
