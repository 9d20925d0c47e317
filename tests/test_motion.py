"""Animations and videos: every frame, with its timing; colours, sound and rotation kept;
bad input refused clearly; cancel leaves nothing behind."""
import av
import numpy as np
import pytest
from conftest import perturbed
from motion_files import DURATIONS_MS, animation, clip, frames
from PIL import Image

from upscaler import load_upscaler
from upscaler.images import ImageRejected
from upscaler.inference import Upscaler
from upscaler.models import FAMILIES
from upscaler.motion import MotionCancelled, MotionLimits, kind_of, upscale_motion, upscaled_frames
from upscaler.pipeline import chain


@pytest.fixture(scope="module")
def ups():
    return [Upscaler(perturbed(FAMILIES["default"].two_x(), seed=2), "64to128", dtype="float32")]


def durations(path):
    img = Image.open(path)
    out = []
    for k in range(img.n_frames):
        img.seek(k)
        img.load()
        out.append(img.info.get("duration"))
    return img, out


@pytest.mark.parametrize("fmt, suffix", [("GIF", ".gif"), ("WEBP", ".webp"), ("PNG", ".png")])
@pytest.mark.parametrize("transparent", [False, True])
def test_an_animation_keeps_every_frame_its_timing_loop_and_transparency(tmp_path, ups, fmt, suffix, transparent):
    src = animation(tmp_path / f"anim{suffix}", fmt, transparent=transparent, loop=0 if fmt != "WEBP" else 3)
    assert kind_of(src) == "animation"
    result = upscale_motion(src, ups, tmp_path / f"out{suffix}")
    out, got = durations(result.path)
    assert out.format == fmt and out.n_frames == 6 and out.size == (100, 80)
    assert all(abs(a - b) <= 10 for a, b in zip(got, DURATIONS_MS))  # each frame's duration, to 10 ms
    assert out.info.get("loop") == (0 if fmt != "WEBP" else 3)
    out.seek(2)
    rgba = out.convert("RGBA")
    hole = rgba.getpixel((2 * (5 + 10) + 10, 2 * 10))[3]  # inside the moving square of frame 2
    assert (hole < 128) == transparent
    assert not list(tmp_path.glob("*.part"))


def test_a_gif_keeps_one_palette_so_still_areas_do_not_flicker(tmp_path, ups):
    src = animation(tmp_path / "anim.gif", "GIF", size=(60, 48))
    out = Image.open(upscale_motion(src, ups, tmp_path / "out.gif").path)
    corners = []
    for k in range(out.n_frames):
        out.seek(k)
        corners.append(np.asarray(out.convert("RGB"))[70:90, 4:40].copy())  # below the moving square
    assert all(np.array_equal(corners[0], c) for c in corners[1:])


def test_an_animation_can_change_format_and_plays_as_often(tmp_path, ups):
    src = animation(tmp_path / "anim.gif", "GIF", loop=None)  # no loop field: plays once
    out = Image.open(upscale_motion(src, ups, tmp_path / "out.webp").path)
    assert out.format == "WEBP" and out.n_frames == 6 and out.info.get("loop") == 1


def video_facts(path):
    """Each read from a freshly opened file (a seek back to 0 can skip an audio packet that
    starts before 0, AAC's priming)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(v))
        facts = dict(frames=len(frames), rate=v.average_rate, size=(v.codec_context.width, v.codec_context.height),
                     pts=[f.pts for f in frames], rotation=frames[0].rotation, tb=v.time_base, audio=None,
                     audio_packets=0)
    with av.open(str(path)) as c:
        if c.streams.audio:
            facts["audio"] = c.streams.audio[0].codec_context.name
            facts["audio_packets"] = sum(1 for p in c.demux(c.streams.audio[0]) if p.size)
    return facts


def test_a_video_keeps_frames_timestamps_rate_sound_and_rotation(tmp_path, ups):
    src = clip(tmp_path / "clip.mp4", rotation=90)
    before = video_facts(src)
    result = upscale_motion(src, ups, tmp_path / "out.mp4")
    after = video_facts(result.path)
    assert after["size"] == (128, 96) and result.output_size == (128, 96)
    assert after["frames"] == before["frames"] == 30
    assert after["rate"] == before["rate"]  # the average frame rate, exactly
    scale = before["tb"] / after["tb"]
    assert [p * scale for p in before["pts"]] == after["pts"]  # a variable frame rate survives
    assert after["audio"] == "aac" and after["audio_packets"] == before["audio_packets"]  # copied untouched
    assert after["rotation"] == before["rotation"] == 90


def test_webm_in_and_out(tmp_path, ups):
    src = clip(tmp_path / "clip.webm", codec="libvpx-vp9")
    result = upscale_motion(src, ups, tmp_path / "out.webm")
    facts = video_facts(result.path)
    assert facts["frames"] == 30 and facts["audio"] == "opus"


@pytest.mark.parametrize("colorspace, full_range", [("ITU601", False), ("ITU709", True), ("ITU709", False)])
def test_colours_are_read_with_the_streams_own_matrix_and_range(tmp_path, colorspace, full_range):
    """A clip of one known colour, encoded with a given matrix and range: read back through
    the engine (an identity 'network'), the colour is the same within a few levels."""
    colour = (200, 60, 20)
    src = clip(tmp_path / "c.mp4", n=4, colour=colour, colorspace=colorspace, full_range=full_range, audio=False)

    class Identity:  # what the engine hands on is what it decoded, through the same writer
        factor = 2

        def upscale_tensor(self, x, progress=None, quantize=None):
            y = x.repeat_interleave(2, 2).repeat_interleave(2, 3)
            return (y * 255).round().to(__import__("torch").uint8)

    result = upscale_motion(src, [Identity()], tmp_path / "o.mp4")
    first_in, first_out = result.first_frame
    assert np.abs(np.asarray(first_in, dtype=int)[8:40, 8:56] - colour).max() <= 4
    with av.open(str(result.path)) as c:  # and the output, tagged BT.709 limited, reads back the same
        rgb = np.asarray(next(c.decode(video=0)).to_image(), dtype=int)
        assert c.streams.video[0].codec_context.colorspace == 1
    from upscaler.video import to_rgb
    with av.open(str(result.path)) as c:
        rgb = to_rgb(next(c.decode(video=0))).astype(int)
    assert np.abs(rgb[16:80, 16:112] - colour).max() <= 5


def test_each_frame_is_what_the_still_path_makes(ups):
    fs = frames(5, (37, 29))
    assert all(np.array_equal(np.asarray(a), np.asarray(chain(*ups)(f)))
               for a, f in zip(upscaled_frames(fs, ups), fs))


def test_limits_say_the_way_out(tmp_path, ups):
    src = clip(tmp_path / "clip.mp4", audio=False)
    with pytest.raises(ImageRejected, match="the limit is 10: upscale its first 10 frames"):
        upscale_motion(src, ups, tmp_path / "a.mp4", limits=MotionLimits(max_frames=10))
    with pytest.raises(ImageRejected, match=r"limit is 0.5 s: upscale its first 0.5 seconds"):
        upscale_motion(src, ups, tmp_path / "b.mp4", limits=MotionLimits(max_seconds=0.5))
    with pytest.raises(ImageRejected, match="shrink it to"):
        upscale_motion(src, ups, tmp_path / "c.mp4", limits=MotionLimits(max_frame_output_pixels=5000))
    result = upscale_motion(src, ups, tmp_path / "d.mp4", limits=MotionLimits(max_seconds=0.5), first_seconds=0.4)
    assert 0 < result.frames < 30 and result.seconds <= 0.45
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "d.mp4"]


def test_cancel_between_frames_leaves_nothing(tmp_path, ups):
    src = clip(tmp_path / "clip.mp4", audio=False)
    asked = []

    def cancel():
        asked.append(1)
        return len(asked) > 6

    with pytest.raises(MotionCancelled):
        upscale_motion(src, ups, tmp_path / "out.mp4", cancel=cancel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no result, no .part


def apng_declaring(path, frames_declared):
    """An APNG whose acTL chunk declares ``frames_declared`` frames."""
    import struct
    import zlib

    animation(path, "PNG")
    data = bytearray(path.read_bytes())
    i = data.index(b"acTL")
    body = struct.pack(">II", frames_declared, 0)
    data[i + 4:i + 12] = body
    data[i + 12:i + 16] = struct.pack(">I", zlib.crc32(b"acTL" + body))
    path.write_bytes(bytes(data))
    return path


def written(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: written(p.with_suffix(".mp4"), b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8),
     "not a video that can be read|damaged|no frames"),
    (lambda p: written(p.with_suffix(".gif"), b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),  # no frame at all
     "not an image format|damaged"),
    (lambda p: apng_declaring(p.with_suffix(".png"), 100_000), "100000 frames; the limit is 600"),
])
def test_bad_files_are_refused_with_a_clear_message(tmp_path, ups, make, message):
    src = make(tmp_path / "bad")
    with pytest.raises(ImageRejected, match=message):
        upscale_motion(src, ups, tmp_path / f"out{src.suffix}", limits=MotionLimits(max_frames=600))
    assert not list(tmp_path.glob("out*"))


def test_audio_only_and_tiny_videos(tmp_path, ups):
    audio_only = tmp_path / "sound.mp4"
    with av.open(str(audio_only), "w") as out:
        a = out.add_stream("aac", rate=16000)
        a.layout = "mono"
        f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        f.sample_rate, f.pts = 16000, 0
        for p in [*a.encode(f), *a.encode(None)]:
            out.mux(p)
    with pytest.raises(ImageRejected, match="no video stream \\(it holds audio only\\)"):
        upscale_motion(audio_only, ups, tmp_path / "o.mp4")
    tiny = clip(tmp_path / "tiny.webm", n=3, size=(2, 2), codec="libvpx-vp9", audio=False)
    result = upscale_motion(tiny, ups, tmp_path / "t.mp4")
    assert result.output_size == (4, 4) and video_facts(result.path)["frames"] == 3


def test_absurd_timestamps_are_refused_by_the_length_limit_or_kept_rising(tmp_path, ups):
    src = clip(tmp_path / "jump.mp4", n=10, audio=False, variable=False, pts_gap=10 ** 9)
    with pytest.raises(ImageRejected, match="limit is 60 s"):
        upscale_motion(src, ups, tmp_path / "a.mp4", limits=MotionLimits(max_seconds=60))
    result = upscale_motion(src, ups, tmp_path / "b.mp4")
    pts = video_facts(result.path)["pts"]
    assert len(pts) == 10 and pts == sorted(pts)


def test_a_still_is_not_motion(tmp_path, ups):
    Image.new("RGB", (8, 8)).save(tmp_path / "still.png")
    assert kind_of(tmp_path / "still.png") == "still"
    with pytest.raises(ImageRejected, match="still image"):
        upscale_motion(tmp_path / "still.png", ups, tmp_path / "o.png")


def test_the_first_seconds_of_an_animation(tmp_path, ups):
    src = animation(tmp_path / "anim.gif", "GIF")  # frames start at 0, 80, 170, 270 ... ms
    result = upscale_motion(src, ups, tmp_path / "out.gif", first_seconds=0.2)
    out, got = durations(result.path)
    assert out.n_frames == 3 and got == DURATIONS_MS[:3] and "first 3 of its 6 frames" in result.summary()
