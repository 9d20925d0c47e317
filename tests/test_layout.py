"""The package's floors: what each module may import, and what the tests may."""
import re
import subprocess
import sys

import pytest
from conftest import ROOT


def imported_by(module: str) -> set:
    code = f"import sys, {module}; print(' '.join(sorted(m for m in sys.modules if m.startswith('upscaler'))))"
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return set(p.stdout.split())


@pytest.mark.slow  # a subprocess each
@pytest.mark.parametrize("module, never", [
    ("upscaler.resize", {"upscaler.data", "upscaler.degradations"}),  # the lowest floor
    ("upscaler.degradations", {"upscaler.data"}),  # no circle: both stand on resize
    ("upscaler.serving", {"upscaler.data", "upscaler.process"}),  # a request: no training data, no process tuning
    ("upscaler.pipeline", {"upscaler.data", "upscaler.serving", "upscaler.process"}),
    ("upscaler.runtimes", {"upscaler.export", "upscaler.serving", "upscaler.browser"}),  # exports only when asked
])
def test_modules_stand_on_lower_floors_only(module, never):
    assert not imported_by(module) & never


def test_tests_do_not_import_from_benchmarks():
    """Shared test tooling lives in tests/ (the benchmarks import it from there)."""
    for path in sorted((ROOT / "tests").glob("*.py")):
        text = path.read_text()
        assert not re.search(r'ROOT / "benchmarks"\)\)|^from benchmarks|^import benchmarks', text, re.M), path.name
