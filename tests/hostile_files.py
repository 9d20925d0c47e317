"""Hostile inputs for the app and the CLI, each with what must happen to it.

expect = ("ok", mode, (w, h) of the oriented input) or ("error", words the message must hold)
"""
import io
import struct
import zlib

import numpy as np
from conftest import ROOT
from PIL import Image

PHOTO = ROOT / "examples" / "cat.4093.jpg"  # 335 x 359


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(w=30000, h=30000) -> bytes:
    """A ~100-byte PNG whose header declares w x h RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _png_chunk(b"IEND", b""))


def make(folder, big=True):
    """Write every case into ``folder`` -> {file name: expectation}."""
    photo = Image.open(PHOTO).convert("RGB")
    cases = {}

    def save(name, img, expect, **kw):
        img.save(folder / name, **kw)
        cases[name] = expect

    (folder / "text.png").write_text("this is a text file, not a picture\n")
    cases["text.png"] = ("error", "not an image")
    buf = io.BytesIO()
    photo.save(buf, "PNG")
    (folder / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    cases["truncated.png"] = ("error", "damaged or truncated")
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=90)
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    cases["truncated.jpg"] = ("error", "damaged or truncated")
    (folder / "bomb.png").write_bytes(bomb_png())
    cases["bomb.png"] = ("error", "decompression bomb")
    save("one.png", Image.new("RGB", (1, 1), (200, 30, 30)), ("ok", "RGB", (1, 1)))
    save("three_by_two.png", Image.new("RGB", (3, 2), (30, 200, 30)), ("ok", "RGB", (3, 2)))
    if big:
        # 6000 x 4000: a smooth "photo" (the cat, enlarged) so encoding stays quick
        save("big.jpg", photo.resize((6000, 4000), Image.BILINEAR), ("ok", "RGB", (6000, 4000)), quality=85)
    save("cmyk.jpg", photo.convert("CMYK"), ("ok", "RGB", photo.size))
    a16 = (np.asarray(photo.convert("L"), np.float32) * 257).astype(np.uint16)
    save("sixteen.png", Image.fromarray(a16), ("ok", "I;16", photo.size))
    pal = photo.resize((60, 40)).convert("P", palette=Image.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    save("palette_alpha.png", pal, ("ok", "RGBA", (60, 40)), transparency=0)
    frames = [photo.resize((50, 30)), Image.new("RGB", (50, 30), (0, 0, 255))]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    cases["animated.gif"] = ("ok", "RGB", (50, 30))
    rgba = photo.resize((64, 48)).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((64, 48)))
    save("rgba.png", rgba, ("ok", "RGBA", (64, 48)))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees: 60x40 stored, 40x60 displayed
    save("rotated.jpg", photo.resize((60, 40)), ("ok", "RGB", (40, 60)), exif=exif.tobytes())
    save("gray.png", photo.convert("L").resize((70, 50)), ("ok", "L", (70, 50)))
    return cases
