"""Small valid PNG pictures for members to "photograph" in tests and the sandbox, made here
so no image library is needed: each seed gives another colour, and so other bytes (and
another sha256), as two real photos would."""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def demo_png(seed: int = 0, width: int = 48, height: int = 32) -> bytes:
    """A `width`×`height` RGB picture: a colour from `seed` with a lighter band."""
    r, g, b = (seed * 67 + 90) % 256, (seed * 151 + 40) % 256, (seed * 29 + 160) % 256
    rows = []
    for y in range(height):
        shade = 60 if height // 3 <= y < 2 * height // 3 else 0
        pixel = bytes((min(255, r + shade), min(255, g + shade), min(255, b + shade)))
        rows.append(b"\x00" + pixel * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # colours repeat every 256 seeds: the seed in a text chunk keeps every picture distinct
    label = b"Comment\x00scrmbot demo picture " + str(seed).encode()
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"tEXt", label)
            + _chunk(b"IDAT", zlib.compress(b"".join(rows))) + _chunk(b"IEND", b""))
