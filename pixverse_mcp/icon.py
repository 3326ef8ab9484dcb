"""The project's icon: drawn here in plain Python, written as PNG files, served as MCP `Icon`s.

The picture is a rounded square with a violet-to-pink gradient, a white "play" triangle (a video)
and a four-point sparkle (a new style). Shapes are signed-distance functions, so the edges are
anti-aliased at any size without supersampling. The committed files in `assets/` are what
`draw(size)` makes; `python -m pixverse_mcp.icon` writes them again after a change to the drawing.

The server reads the committed files at start-up (`server_icons`): nothing is drawn at run time.
"""

from __future__ import annotations

import base64
import math
import struct
import sys
import zlib
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path

from mcp.types import Icon

ASSET_FILES = {512: "icon-512.png", 128: "icon.png", 48: "icon-48.png"}
"""The committed icon files in `pixverse_mcp/assets/`, by edge length in pixels (512: the bundle's)."""
SERVER_ICON_SIZES = (48, 128)
"""The sizes the server announces; the server info carries them as data, once per session."""

Point = tuple[float, float]

_TOP_LEFT = (109, 40, 217)  # violet
_BOTTOM_RIGHT = (236, 72, 153)  # pink
_WHITE = (255, 255, 255)
_CORNER_RADIUS = 0.22
_PLAY = ((0.33, 0.27), (0.33, 0.73), (0.72, 0.50))
_PLAY_ROUNDING = 0.035


def _star(center: Point, outer: float, inner: float) -> list[Point]:
    """A four-point star: points on the axes, waist on the diagonals."""
    cx, cy = center
    corners: list[Point] = []
    for step in range(8):
        angle = step * math.pi / 4
        radius = outer if step % 2 == 0 else inner
        corners.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return corners


_SPARKLE = _star((0.76, 0.25), 0.13, 0.035)


def _rounded_square(x: float, y: float) -> float:
    """Signed distance to the unit square with rounded corners (negative inside)."""
    half = 0.5 - _CORNER_RADIUS
    qx, qy = abs(x - 0.5) - half, abs(y - 0.5) - half
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - _CORNER_RADIUS


def _polygon(x: float, y: float, corners: Sequence[Point]) -> float:
    """Signed distance to a simple polygon (negative inside)."""
    nearest = (x - corners[0][0]) ** 2 + (y - corners[0][1]) ** 2
    sign = 1.0
    previous = corners[-1]
    for corner in corners:
        ex, ey = previous[0] - corner[0], previous[1] - corner[1]
        wx, wy = x - corner[0], y - corner[1]
        along = max(0.0, min(1.0, (wx * ex + wy * ey) / (ex * ex + ey * ey)))
        bx, by = wx - ex * along, wy - ey * along
        nearest = min(nearest, bx * bx + by * by)
        # Even-odd crossing test on the same edge.
        above, below, left = y >= corner[1], y < previous[1], ex * wy > ey * wx
        if (above and below and left) or not (above or below or left):
            sign = -sign
        previous = corner
    return sign * math.sqrt(nearest)


def _coverage(distance: float, size: int) -> float:
    """How much of a pixel a shape covers, from the signed distance at the pixel's centre."""
    return max(0.0, min(1.0, 0.5 - distance * size))


def _shape_coverage(x: float, y: float, corners: Sequence[Point], rounding: float, size: int) -> float:
    """Coverage of a polygon grown by `rounding`; pixels well outside its bounding box are skipped."""
    margin = rounding + 1.0 / size
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    if not (min(xs) - margin <= x <= max(xs) + margin and min(ys) - margin <= y <= max(ys) + margin):
        return 0.0
    return _coverage(_polygon(x, y, corners) - rounding, size)


def draw(size: int) -> bytes:
    """The icon at `size` x `size` pixels as 8-bit RGBA rows, top to bottom."""
    if not 16 <= size <= 1024:
        raise ValueError(f"icon size must be 16 to 1024 pixels, got {size}")
    pixels = bytearray()
    for row in range(size):
        y = (row + 0.5) / size
        for column in range(size):
            x = (column + 0.5) / size
            alpha = _coverage(_rounded_square(x, y), size)
            if alpha == 0.0:
                pixels += b"\0\0\0\0"
                continue
            shade = (x + y) / 2
            color = [a + (b - a) * shade for a, b in zip(_TOP_LEFT, _BOTTOM_RIGHT, strict=True)]
            white = max(
                _shape_coverage(x, y, _PLAY, _PLAY_ROUNDING, size),
                _shape_coverage(x, y, _SPARKLE, 0.0, size),
            )
            color = [c + (w - c) * white for c, w in zip(color, _WHITE, strict=True)]
            pixels += bytes(round(channel) for channel in (*color, alpha * 255))
    return bytes(pixels)


# -- PNG ------------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _paeth(left: int, up: int, corner: int) -> int:
    guess = left + up - corner
    to_left, to_up, to_corner = abs(guess - left), abs(guess - up), abs(guess - corner)
    if to_left <= to_up and to_left <= to_corner:
        return left
    return up if to_up <= to_corner else corner


def _predict(kind: int, left: int, up: int, corner: int) -> int:
    """What PNG filter `kind` predicts a byte to be from its neighbours."""
    if kind == 0:
        return 0
    if kind == 1:
        return left
    if kind == 2:
        return up
    if kind == 3:
        return (left + up) // 2
    return _paeth(left, up, corner)


def _filtered(kind: int, row: bytes, prior: bytes) -> bytes:
    """One row under PNG filter `kind` (4 bytes a pixel)."""
    out = bytearray(len(row))
    for i, value in enumerate(row):
        left, corner = (row[i - 4], prior[i - 4]) if i >= 4 else (0, 0)
        out[i] = (value - _predict(kind, left, prior[i], corner)) & 0xFF
    return bytes(out)


def encode_png(size: int, rgba: bytes) -> bytes:
    """A square 8-bit RGBA PNG; each row takes the filter that leaves the smallest residue."""
    stride = size * 4
    if len(rgba) != size * stride:
        raise ValueError(f"expected {size * stride} bytes of RGBA, got {len(rgba)}")
    prior = bytes(stride)
    raw = bytearray()
    for top in range(0, len(rgba), stride):
        row = rgba[top : top + stride]
        options = [_filtered(kind, row, prior) for kind in range(5)]
        kind = min(range(5), key=lambda k: sum(b if b < 128 else 256 - b for b in options[k]))
        raw += bytes([kind]) + options[kind]
        prior = row
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + _chunk(b"IEND", b"")
    )


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and RGBA rows of an 8-bit RGBA, non-interlaced PNG (the kind `encode_png` writes)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG file")
    position, compressed, header = 8, b"", b""
    while position + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"bad CRC in the {kind!r} chunk")
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
        position += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if (depth, color, interlace) != (8, 6, 0):
        raise ValueError("only 8-bit RGBA, non-interlaced PNGs are read here")
    raw, stride = zlib.decompress(compressed), width * 4
    rows, prior = bytearray(), bytes(stride)
    for top in range(0, height * (stride + 1), stride + 1):
        filter_kind, row = raw[top], bytearray(raw[top + 1 : top + 1 + stride])
        for i in range(stride):
            left, corner = (row[i - 4], prior[i - 4]) if i >= 4 else (0, 0)
            row[i] = (row[i] + _predict(filter_kind, left, prior[i], corner)) & 0xFF
        rows += row
        prior = bytes(row)
    return width, height, bytes(rows)


# -- serving --------------------------------------------------------------------------------------


def asset_bytes(size: int) -> bytes:
    """The committed PNG of this edge length."""
    return resources.files("pixverse_mcp").joinpath("assets", ASSET_FILES[size]).read_bytes()


@cache
def server_icons() -> list[Icon]:
    """The icon in both committed sizes, as data: URIs (the server info is sent once per session)."""
    return [
        Icon(
            src="data:image/png;base64," + base64.b64encode(asset_bytes(size)).decode("ascii"),
            mime_type="image/png",
            sizes=[f"{size}x{size}"],
        )
        for size in SERVER_ICON_SIZES
    ]


def write_assets(folder: Path) -> list[Path]:
    """Draw the icon in every committed size and write the PNG files into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for size, name in ASSET_FILES.items():
        path = folder / name
        path.write_bytes(encode_png(size, draw(size)))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_assets(Path(__file__).resolve().parent / "assets"):
        print(f"wrote {path} ({path.stat().st_size} bytes)", file=sys.stderr)
