"""The README's first command: the sandbox mode and the scripted demo, end to end."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import av
import pytest
from conftest import call_ok
from mcp import Client

from pixverse_mcp.config import Settings
from pixverse_mcp.demo import run_demo
from pixverse_mcp.server import create_server


@pytest.mark.anyio
async def test_sandbox_mode_needs_no_key(tmp_path: Path, clip: Path, videos: Path) -> None:
    settings = Settings(sandbox=True, output_dir=tmp_path / "out", allowed_dirs=(videos,))
    async with Client(create_server(settings)) as client:
        styles = await call_ok(client, "list_restyles")
        uploaded = await call_ok(client, "upload_video", {"path": clip.name})
        started = await call_ok(
            client,
            "restyle_video",
            {
                "video_media_id": uploaded["media_id"],
                "restyle_id": styles["styles"][0]["restyle_id"],
                "wait_seconds": 0,
            },
        )
    assert styles["count"] >= 8 and started["status"] == "generating" and started["credits"] == 30


def test_demo_restyles_a_clip(tmp_path: Path) -> None:
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert run_demo(tmp_path / "demo", style="noir") == 0
    transcript = printed.getvalue()
    for step in ("list_restyles", "upload_video", "restyle_video", "Restyled video:", "Preview picture:"):
        assert step in transcript
    saved = [p for p in (tmp_path / "demo").glob("pixverse-*.mp4")]
    assert len(saved) == 1 and "Film-Noir" in saved[0].name
    assert (tmp_path / "demo" / f"{saved[0].stem}.preview.jpg").read_bytes()[:2] == b"\xff\xd8"
    with av.open(str(saved[0])) as container:
        frame = next(container.decode(video=0))
    # Noir is black and white: red, green and blue stay (nearly) equal in every pixel.
    rgb = frame.reformat(format="rgb24")
    plane, width = rgb.planes[0], rgb.width
    data = bytes(plane)
    spread = max(
        max(px) - min(px)
        for y in range(0, rgb.height, 7)
        for x in range(0, width, 7)
        for px in [data[y * plane.line_size + 3 * x : y * plane.line_size + 3 * x + 3]]
    )
    assert spread < 24
