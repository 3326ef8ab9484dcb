"""The contact sheet, its bitmap labels, and how group items are labelled and checked."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest

from pixverse_mcp import bitmapfont
from pixverse_mcp.contactsheet import LABEL_HEIGHT, SheetRow, make_contact_sheet, row_top
from pixverse_mcp.errors import InputError
from pixverse_mcp.fetching import FetchRules
from pixverse_mcp.groupplan import checked_body, labels, parse_items
from pixverse_mcp.samples import make_clip


def _gray(jpeg: bytes) -> tuple[bytes, int, int]:
    with av.open(io.BytesIO(jpeg)) as container:
        frame = next(container.decode(video=0)).reformat(format="gray")
    plane = frame.planes[0]
    data = bytes(plane)
    rows = b"".join(
        data[y * plane.line_size : y * plane.line_size + frame.width] for y in range(frame.height)
    )
    return rows, frame.width, frame.height


def test_rows_show_frames_or_what_went_wrong(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "a.mp4", seconds=1.0, width=64, height=48, pattern="marker")
    rows = [
        SheetRow("1. Film Noir - 30 credits", clip),
        SheetRow("2. a neon city - moderation failed", None, "moderation failed"),
        SheetRow("3. gone", tmp_path / "missing.mp4"),
    ]
    sheet = make_contact_sheet(rows, rules=FetchRules(), max_read_bytes=10**7, seconds=10)
    assert sheet.jpeg.startswith(b"\xff\xd8") and len(sheet.jpeg) < 300_000
    assert len(sheet.problems) == 1 and sheet.problems[0].startswith("row 3: ")
    pixels, width, height = _gray(sheet.jpeg)
    assert height == row_top(3, sheet.tile_height)
    tops = [row_top(i, sheet.tile_height) for i in range(3)]
    # Every label band carries text; the frames of row 1 show the marker's white corner.
    for top in tops:
        band = pixels[top * width : (top + LABEL_HEIGHT) * width]
        assert max(band) > 200
    first_frame = pixels[(tops[0] + LABEL_HEIGHT + 4) * width : (tops[0] + LABEL_HEIGHT + 5) * width]
    assert max(first_frame[:40]) > 200
    # The rows without a video are one flat grey with a line of text, not frames.
    empty = pixels[(tops[1] + LABEL_HEIGHT + 2) * width : (tops[1] + LABEL_HEIGHT + 3) * width]
    assert max(empty[8:200]) - min(empty[8:200]) < 30


def test_labels_fit_their_room_and_fold_what_the_font_lacks() -> None:
    assert bitmapfont.printable("Café – noir") == "Cafe ? noir"
    assert bitmapfont.fit_text("short", 200, 2) == "short"
    cut = bitmapfont.fit_text("a very long label that cannot fit in the band at all", 100, 2)
    assert cut.endswith("...") and bitmapfont.text_width(cut, 2) <= 100


def test_item_labels() -> None:
    assert labels(["Anime", "Noir"], ["a.mp4", "a.mp4"], [None, None]) == ["Anime", "Noir"]
    assert labels(["Anime", "Anime"], ["a.mp4", "b.mp4"], [None, None]) == ["a.mp4: Anime", "b.mp4: Anime"]
    assert labels(["Anime", "Anime"], ["a.mp4", "a.mp4"], [1, 2]) == ["Anime (seed 1)", "Anime (seed 2)"]


def test_items_are_checked_one_by_one() -> None:
    parsed, problems = parse_items(
        [
            {"video_media_id": "5", "restyle_id": 1003, "seed": 4},
            {"video_media_id": 5, "restyle_prompt": "  ", "seed": 4},
            {"video_media_id": 5, "restyle_id": 1003, "mood": "sad"},
            "not an object",
            {"video_media_id": 5, "restyle_id": True},
        ]
    )
    assert [item.index for item in parsed] == [0]
    assert sorted(problems) == [1, 2, 3, 4]
    assert "blank" in problems[1] and "'mood'" in problems[2] and "not true" in problems[4]
    with pytest.raises(InputError, match="list of objects"):
        parse_items({"path": "a.mp4"})


def test_a_request_read_back_from_the_journal_is_checked_again() -> None:
    assert checked_body({"video_media_id": 5, "restyle_id": "1003"}) == {
        "video_media_id": 5,
        "restyle_id": 1003,
    }
    for bad in (
        {"video_media_id": 5, "restyle_id": 1003, "quality": "8k"},
        {"video_media_id": 5, "source_video_id": 6, "restyle_id": 1003},
        {"video_media_id": 5, "restyle_prompt": "x" * 3000},
        {"video_media_id": -1, "restyle_id": 1003},
    ):
        with pytest.raises(InputError):
            checked_body(bad)
