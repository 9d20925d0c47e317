"""Fuzzed image files (tests/fuzz_files.py): 100 seeded cases through the CLI's path, and 20
through the app's /upscale_by with the server answering a normal request afterwards."""
import fuzz_files
import pytest
from conftest import ROOT
from PIL import Image

EXAMPLE = str(ROOT / "examples" / "cat.4093.jpg")


def test_the_generator_is_seeded_and_covers_every_format():
    assert fuzz_files.case(7) == fuzz_files.case(7)
    assert fuzz_files.case(7)[1] != fuzz_files.case(13)[1]
    assert {fuzz_files.case(s)[0].rsplit(".", 1)[1] for s in range(6)} == set(fuzz_files.FORMATS)


@pytest.mark.slow  # a worker process
def test_a_hundred_fuzzed_files_end_in_a_result_or_a_clear_refusal():
    from fuzz_runner import fuzz

    r = fuzz(100, first=10_000, progress=False)
    assert r["forbidden"] == [], r["forbidden"]
    assert r["counts"].get("upscaled", 0) > 5 and r["counts"].get("rejected", 0) > 5, r["counts"]


@pytest.mark.slow  # a worker process
def test_fuzzed_animations_and_videos_end_in_a_result_or_a_clear_refusal():
    from fuzz_runner import fuzz

    assert fuzz_files.motion_case(3) == fuzz_files.motion_case(3)
    r = fuzz(30, first=30_000, progress=False, motion=True)
    assert r["forbidden"] == [], r["forbidden"]
    assert r["counts"].get("upscaled", 0) > 3 and r["counts"].get("rejected", 0) > 3, r["counts"]


@pytest.mark.slow  # a server
def test_twenty_fuzzed_files_through_the_app(live_app, tmp_path):
    from gradio_client import Client, handle_file

    url, proc, _ = live_app
    client = Client(url, verbose=False)
    outcomes = []
    for seed in range(20_000, 20_020):
        name, data, what = fuzz_files.case(seed)
        path = tmp_path / name
        path.write_bytes(data)
        try:
            (_, learned), download = client.predict(handle_file(str(path)), 2, api_name="/upscale_by")
            outcomes.append("upscaled")
            assert Image.open(download).width >= 2
        except Exception as e:  # the server's message for a person, never a traceback
            message = str(e)
            assert "Cannot use" in message and "Traceback" not in message, (name, what, message)
            outcomes.append("refused")
        assert path.read_bytes() == data  # the user's file is untouched
        assert proc.poll() is None
    assert "refused" in outcomes
    (_, learned), _ = client.predict(handle_file(EXAMPLE), 2, api_name="/upscale_by")
    assert Image.open(learned).size == (670, 718)
