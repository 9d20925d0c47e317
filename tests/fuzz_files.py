"""Seeded fuzzed image files: small valid PNG, JPEG, GIF, WebP, TIFF and BMP files, mutated.

``case(seed)`` -> (file name, bytes, what was done). The same seed always gives the same
bytes. Mutations: bit flips, byte insertions and deletions, truncation, a chunk's length
or CRC edited (PNG), the header's width and height set to 0, 1 or huge (PNG, JPEG, GIF,
BMP; for PNG with and without a CRC that matches), and a JPEG that declares a huge size
over a tiny body. Used by ``benchmarks/fuzz.py`` (2,000 cases) and the tests (100).

``motion_case(seed)``: the same for animations and videos (an animated GIF, WebP or APNG,
an MP4 or WebM clip with sound, from ``motion_files.py``), mutated by the generic edits, or
an APNG whose header declares a huge number of frames.
"""
import io
import random
import struct
import zlib

from PIL import Image

FORMATS = {"png": "PNG", "jpg": "JPEG", "gif": "GIF", "webp": "WEBP", "tif": "TIFF", "bmp": "BMP"}
SIZES = (0, 1, 65535, 2 ** 31 - 1, 0xFFFFFFFF)


def _base_image(rng: random.Random) -> Image.Image:
    """A small picture with edges and colour (a gradient and a few blocks), 17-40 px a side."""
    w, h = rng.randint(17, 40), rng.randint(17, 40)
    img = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    px = img.load()
    for _ in range(4):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        colour = tuple(rng.randrange(256) for _ in range(3))
        for y in range(y0, min(h, y0 + 6)):
            for x in range(x0, min(w, x0 + 6)):
                px[x, y] = colour
    return img


def valid_file(fmt: str, rng: random.Random) -> bytes:
    img = _base_image(rng)
    if fmt == "gif":
        img = img.convert("P", palette=Image.ADAPTIVE, colors=32)
    if fmt == "png" and rng.random() < 0.3:
        img = img.convert("RGBA")
    buf = io.BytesIO()
    img.save(buf, FORMATS[fmt], **({"quality": 80} if fmt in ("jpg", "webp") else {}))
    return buf.getvalue()


# ------------------------------------------------------------------ mutations
def bit_flips(data: bytearray, rng):
    n = rng.randint(1, 12)
    for _ in range(n):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    return f"{n} bit flips"


def insert_bytes(data: bytearray, rng):
    i, n = rng.randrange(len(data)), rng.randint(1, 64)
    data[i:i] = bytes(rng.randrange(256) for _ in range(n))
    return f"{n} bytes inserted at {i}"


def delete_bytes(data: bytearray, rng):
    i = rng.randrange(len(data))
    n = rng.randint(1, min(64, len(data) - i))
    del data[i:i + n]
    return f"{n} bytes deleted at {i}"


def truncate(data: bytearray, rng):
    n = rng.randrange(len(data))
    del data[n:]
    return f"truncated to {n} bytes"


def _png_chunks(data):
    pos = 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        yield pos, length, bytes(data[pos + 4:pos + 8])
        pos += 12 + length


def png_chunk_edit(data: bytearray, rng):
    chunks = list(_png_chunks(data))
    pos, length, kind = rng.choice(chunks)
    if rng.random() < 0.5:
        new = rng.choice([0, 1, length + 1, length - 1 if length else 2, 0x7FFFFFFF, 0xFFFFFFFF])
        data[pos:pos + 4] = struct.pack(">I", new & 0xFFFFFFFF)
        return f"{kind.decode(errors='replace')} length {length} -> {new}"
    crc_at = pos + 8 + length
    data[crc_at:crc_at + 4] = struct.pack(">I", rng.randrange(2 ** 32))
    return f"{kind.decode(errors='replace')} CRC changed"


def png_size(data: bytearray, rng, fix_crc=True):
    w, h = rng.choice(SIZES), rng.choice(SIZES)
    data[16:24] = struct.pack(">II", w, h)
    if fix_crc:  # so that the decoder believes the header
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return f"IHDR {w}x{h}" + (" (CRC fixed)" if fix_crc else "")


def jpeg_size(data: bytearray, rng):
    for i in range(2, len(data) - 9):
        if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2):
            h, w = rng.choice(SIZES) & 0xFFFF, rng.choice(SIZES) & 0xFFFF
            data[i + 5:i + 9] = struct.pack(">HH", h, w)
            return f"SOF {w}x{h}"
    return "no SOF found"


def jpeg_huge_tiny_body(data: bytearray, rng):
    """A huge declared size, and the entropy-coded data cut to a few bytes."""
    jpeg_size(data, rng)
    for i in range(2, len(data) - 1):
        if data[i] == 0xFF and data[i + 1] == 0xDA:  # start of scan: keep its header and 8 bytes
            seg = struct.unpack(">H", data[i + 2:i + 4])[0]
            del data[i + 2 + seg + 8:]
            data += b"\xff\xd9"
            h, w = 65500, 65500
            for j in range(2, i):
                if data[j] == 0xFF and data[j + 1] in (0xC0, 0xC1, 0xC2):
                    data[j + 5:j + 9] = struct.pack(">HH", h, w)
            return "SOF 65500x65500 over a tiny body"
    return "no SOS found"


def gif_size(data: bytearray, rng):
    w, h = rng.choice(SIZES) & 0xFFFF, rng.choice(SIZES) & 0xFFFF
    data[6:10] = struct.pack("<HH", w, h)
    return f"GIF screen {w}x{h}"


def bmp_size(data: bytearray, rng):
    w, h = rng.choice(SIZES), rng.choice(SIZES)
    data[18:26] = struct.pack("<II", w & 0xFFFFFFFF, h & 0xFFFFFFFF)
    return f"BMP {w}x{h}"


GENERIC = [bit_flips, insert_bytes, delete_bytes, truncate]
SPECIFIC = {
    "png": [png_chunk_edit, png_size, lambda d, r: png_size(d, r, fix_crc=False)],
    "jpg": [jpeg_size, jpeg_huge_tiny_body],
    "gif": [gif_size],
    "bmp": [bmp_size],
}


def case(seed: int):
    """-> (file name, bytes, a line saying what was done). Seeded."""
    rng = random.Random(seed)
    fmt = sorted(FORMATS)[seed % len(FORMATS)]
    data = bytearray(valid_file(fmt, rng))
    options = GENERIC + SPECIFIC.get(fmt, []) * 2  # the format's own edits come up more often
    what = []
    for _ in range(rng.choice([1, 1, 1, 2])):
        if len(data) < 2:
            break
        what.append(rng.choice(options)(data, rng))
    return f"fuzz-{seed:05d}.{fmt}", bytes(data), "; ".join(what)


# ------------------------------------------------------------------ animations and videos
MOTION_FORMATS = ("gif", "webp", "png", "mp4", "webm")


def valid_motion_file(fmt: str, rng: random.Random) -> bytes:
    import tempfile
    from pathlib import Path

    from motion_files import animation, clip

    size = (rng.randint(8, 40) // 2 * 2, rng.randint(8, 40) // 2 * 2)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"valid.{fmt}"
        if fmt in ("mp4", "webm"):
            clip(path, n=rng.randint(2, 8), size=size, codec="libx264" if fmt == "mp4" else "libvpx-vp9")
        else:
            animation(path, {"gif": "GIF", "webp": "WEBP", "png": "PNG"}[fmt], n=rng.randint(2, 6), size=size,
                      transparent=rng.random() < 0.5)
        return path.read_bytes()


def apng_frame_count(data: bytearray, rng):
    i = data.find(b"acTL")
    if i < 0:
        return "no acTL"
    count = rng.choice([0, 100_000, 2 ** 31 - 1])
    body = struct.pack(">II", count, 0)
    data[i + 4:i + 12] = body
    data[i + 12:i + 16] = struct.pack(">I", zlib.crc32(b"acTL" + body))
    return f"acTL declares {count} frames"


def motion_case(seed: int):
    """-> (file name, bytes, a line saying what was done) for an animation or a video. Seeded."""
    rng = random.Random(seed)
    fmt = MOTION_FORMATS[seed % len(MOTION_FORMATS)]
    data = bytearray(valid_motion_file(fmt, rng))
    options = GENERIC + ([apng_frame_count] * 2 if fmt == "png" else [])
    what = []
    for _ in range(rng.choice([0, 1, 1, 2])):  # some stay valid: the engine must handle those too
        what.append(rng.choice(options)(data, rng))
    return f"motion-{seed:05d}.{fmt}", bytes(data), "; ".join(what) or "valid"
