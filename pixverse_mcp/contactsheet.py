"""The contact sheet of a group: one labelled row per item, a few frames each, in one JPEG.

A group answers "which look?": the sheet puts the results side by side so the model and the user
compare them at a glance. Each row has a label band (the style or prompt and the credits, or what
went wrong) over a strip of frames taken evenly across the item's video; an item without a video
(failed, refused, still queued) gets its row with the reason written where the frames would be.

Frames are read as the preview reads them (`preview.grab_frames`: a local file or an http(s) URL
through bounded readers, the mov demuxer only); the labels are drawn with a built-in bitmap font
(`bitmapfont`); the sheet is encoded with FFmpeg's mjpeg encoder. No Pillow, no numpy. Blocking:
run it in a worker thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixverse_mcp import bitmapfont
from pixverse_mcp.bounded_io import ReadLimits
from pixverse_mcp.fetching import FetchRules
from pixverse_mcp.preview import PreviewUnavailable, grab_frames, jpeg_within

FRAMES_PER_ROW = 4
TILE_HEIGHTS = (120, 90, 64)
"""Tried in turn until the JPEG fits in its byte budget."""
MAX_SHEET_BYTES = 300_000
TEXT_SCALE = 2
LABEL_HEIGHT = bitmapfont.GLYPH_HEIGHT * TEXT_SCALE + 6
PAD = 4
MAX_TILE_ASPECT = 2.4
"""Wider pictures are squeezed into this aspect: a panorama must not make a sheet kilometres wide."""
DEFAULT_ASPECT = 16 / 9
MIN_SHEET_WIDTH = 480
_BACKGROUND = 16
_LABEL_BAND = 48
_NO_PICTURE = 72
_TEXT = 235
_NOTE_TEXT = 200
_NEUTRAL = 128
_FORMAT = "yuvj420p"  # full-range 4:2:0, what JPEG viewers expect


@dataclass(frozen=True)
class SheetRow:
    """One item of the group on the sheet."""

    label: str
    """One line: the item's number, style or prompt, and credits or status."""
    video: Path | str | None
    """Where the frames come from: a file this server saved, or an http(s) URL; None for no video."""
    note: str | None = None
    """Shown where the frames would be, when there is no video (or it cannot be read)."""


@dataclass
class ContactSheet:
    """The sheet, and what could not be shown."""

    jpeg: bytes
    width: int
    height: int
    tile_height: int
    problems: list[str] = field(default_factory=list)
    """One line per row whose video could not be read."""


@dataclass
class _Tiles:
    label: str
    frames: list[Any]
    aspect: float
    note: str | None


def row_top(index: int, tile_height: int) -> int:
    """Where row ``index`` starts on a sheet made with ``tile_height`` (its label band's top)."""
    return PAD + index * (LABEL_HEIGHT + tile_height + PAD)


def make_contact_sheet(
    rows: list[SheetRow],
    *,
    rules: FetchRules,
    max_read_bytes: int,
    seconds: float,
    max_bytes: int = MAX_SHEET_BYTES,
) -> ContactSheet:
    """Read a few frames of each row's video and lay the rows out in one JPEG.

    Args:
        rows: The items, in order.
        rules: Which addresses a URL may lead to.
        max_read_bytes: The most each video may read.
        seconds: The time all reading may take; a row whose video is not read by then shows a note.
        max_bytes: The largest JPEG; the tiles shrink until it fits.

    Raises:
        PreviewUnavailable: no sheet fits in ``max_bytes`` (with twelve rows it always does).
        ValueError: no rows.
    """
    if not rows:
        raise ValueError("a contact sheet needs at least one row")
    deadline = time.monotonic() + seconds
    problems: list[str] = []
    tiles = []
    for number, row in enumerate(rows, start=1):
        tiles.append(_read_row(row, number, rules, max_read_bytes, deadline, problems))
    # A row without frames takes the width of the rows with frames, so the sheet keeps one width.
    shown = next((t.aspect for t in tiles if t.frames), DEFAULT_ASPECT)
    for row_tiles in tiles:
        if not row_tiles.frames:
            row_tiles.aspect = shown
    for height in TILE_HEIGHTS:
        picture = _lay_out(tiles, height)
        try:
            data = jpeg_within(picture, max_bytes)
        except PreviewUnavailable:
            continue
        return ContactSheet(data, picture.width, picture.height, height, problems)
    raise PreviewUnavailable(f"the contact sheet does not fit in {max_bytes} bytes")


def _read_row(
    row: SheetRow, number: int, rules: FetchRules, max_read_bytes: int, deadline: float, problems: list[str]
) -> _Tiles:
    if row.video is None:
        return _Tiles(row.label, [], DEFAULT_ASPECT, row.note or "no video")
    left = deadline - time.monotonic()
    if left <= 0:
        problems.append(f"row {number}: no time was left to read its video")
        return _Tiles(row.label, [], DEFAULT_ASPECT, "not read in time")
    limits = ReadLimits.start(max_read_bytes, left)
    try:
        frames, aspect = grab_frames(row.video, FRAMES_PER_ROW, limits=limits, rules=rules)
    except PreviewUnavailable as exc:
        problems.append(f"row {number}: {exc}"[:300])
        return _Tiles(row.label, [], DEFAULT_ASPECT, f"video not readable: {exc}")
    finally:
        limits.cancel()
    aspect = min(max(aspect, 1 / MAX_TILE_ASPECT), MAX_TILE_ASPECT)
    # Shrunk at once: twelve rows of full-size frames would hold hundreds of MB.
    height = TILE_HEIGHTS[0]
    small = [f.reformat(width=_even(height * aspect), height=height, format=_FORMAT) for f in frames]
    return _Tiles(row.label, small, aspect, None)


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def _lay_out(tiles: list[_Tiles], tile_height: int) -> Any:
    """The sheet as one frame: per row a label band, then the frames (or the note) side by side."""
    from av.video.frame import VideoFrame

    widths = [_even(tile_height * t.aspect) * FRAMES_PER_ROW for t in tiles]
    width = _even(max([MIN_SHEET_WIDTH, *(w + 2 * PAD for w in widths)]))
    height = _even(row_top(len(tiles), tile_height))
    sheet = VideoFrame(width, height, _FORMAT)
    luma, blue, red = (bytearray(p.line_size * p.height) for p in sheet.planes)
    luma[:] = bytes([_BACKGROUND]) * len(luma)
    blue[:] = red[:] = bytes([_NEUTRAL]) * len(blue)
    strides = [p.line_size for p in sheet.planes]
    for index, row in enumerate(tiles):
        top = row_top(index, tile_height)
        _fill(luma, strides[0], 0, top, width, LABEL_HEIGHT, _LABEL_BAND)
        label = bitmapfont.fit_text(row.label, width - 2 * PAD, TEXT_SCALE)
        bitmapfont.draw_text(luma, strides[0], PAD, top + 3, label, value=_TEXT, scale=TEXT_SCALE)
        strip_top = top + LABEL_HEIGHT
        if not row.frames:
            _fill(luma, strides[0], PAD, strip_top, widths[index], tile_height, _NO_PICTURE)
            note = bitmapfont.fit_text(row.note or "", widths[index] - 2 * PAD)
            text_top = strip_top + (tile_height - bitmapfont.GLYPH_HEIGHT) // 2
            bitmapfont.draw_text(luma, strides[0], 2 * PAD, text_top, note, value=_NOTE_TEXT)
            continue
        tile_width = widths[index] // FRAMES_PER_ROW
        for column, frame in enumerate(row.frames):
            tile = frame.reformat(width=tile_width, height=tile_height, format=_FORMAT, interpolation="AREA")
            _paste(tile, (luma, blue, red), strides, PAD + column * tile_width, strip_top)
    for plane, data in zip(sheet.planes, (luma, blue, red), strict=True):
        plane.update(bytes(data))
    return sheet


def _fill(plane: bytearray, stride: int, x: int, y: int, width: int, height: int, value: int) -> None:
    run = bytes([value]) * width
    for row in range(y, y + height):
        plane[row * stride + x : row * stride + x + width] = run


def _paste(tile: Any, planes: tuple[bytearray, ...], strides: list[int], x: int, y: int) -> None:
    """Copy a tile's three planes into the sheet's at (x, y) (even, as 4:2:0 needs)."""
    for index, (target, stride) in enumerate(zip(planes, strides, strict=True)):
        shift = 0 if index == 0 else 1  # chroma planes are half as wide and half as high
        source = tile.planes[index]
        data = memoryview(source)
        row_bytes = source.width
        left, top = x >> shift, y >> shift
        for row in range(source.height):
            start = (top + row) * stride + left
            target[start : start + row_bytes] = data[
                row * source.line_size : row * source.line_size + row_bytes
            ]
