"""``python app.py`` as a user starts it, for the tests and the benchmarks that talk to a
running server (test_app, test_browser*, benchmarks/app_latency.py, browser_speed.py,
soak.py). Imports nothing of pytest, so a benchmark run as a script can use it."""
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_app(port, env_extra=None, log=None, timeout=180):
    """``python app.py`` offline on ``port`` (``env_extra`` on top of this environment), its
    output into ``log`` (a temporary file by default); -> (process, url, log) once it
    answers. Raises RuntimeError with the end of its log if it exits or does not answer."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1", **(env_extra or {})}
    log = log or tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url, log
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                stop_app(proc)
                log.seek(0)
                raise RuntimeError(f"app did not start (exit status {proc.returncode}):\n" + log.read()[-3000:])
            time.sleep(0.5)


def stop_app(proc, timeout=10):
    """Stop an app started by ``start_app``: terminate, then kill if it does not exit."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
