"""The restyle flow end to end through the MCP protocol, against the sandbox over loopback HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import call_error, call_ok
from mcp import Client

from pixverse_mcp.config import Settings
from pixverse_mcp.sandbox import SandboxServer
from pixverse_mcp.server import create_server

pytestmark = pytest.mark.anyio


async def test_tools_are_listed_with_schemas_and_annotations(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {"list_restyles", "upload_video", "restyle_video", "get_status", "get_balance"} <= set(tools)
    for tool in tools.values():
        assert tool.description and tool.output_schema, tool.name
    assert tools["list_restyles"].annotations.read_only_hint is True
    assert tools["get_status"].annotations.read_only_hint is True
    assert tools["restyle_video"].annotations.read_only_hint is False
    assert "credits" in tools["restyle_video"].description.lower()
    props = tools["restyle_video"].input_schema["properties"]
    assert {"video_media_id", "source_video_id", "restyle_id", "restyle_prompt", "seed"} <= set(props)
    assert all(props[name].get("description") for name in props)


async def test_whole_flow(client: Client, clip: Path, sandbox: SandboxServer) -> None:
    catalog = await call_ok(client, "list_restyles")
    assert catalog["count"] >= 8 and catalog["count"] == len(catalog["styles"]) == catalog["total"]
    style = catalog["styles"][0]
    assert style["restyle_id"].isdigit() and style["name"] and style["thumbnail"]

    uploaded = await call_ok(client, "upload_video", {"path": str(clip)})
    assert uploaded["media_id"].isdigit() and int(uploaded["media_id"]) > 2**53
    assert uploaded["media_type"] == "video"
    assert uploaded["width"] == 320 and uploaded["height"] == 240

    started = await call_ok(
        client, "restyle_video", {"video_media_id": uploaded["media_id"], "restyle_id": style["restyle_id"]}
    )
    assert started["status"] == "succeeded", started
    assert started["credits"] == sandbox.state.config.restyle_credits
    assert started["url"].startswith("http://127.0.0.1")
    assert started["width"] == 320 and started["height"] == 240 and started["size_bytes"] > 0
    assert started["trace_id"]

    again = await call_ok(client, "get_status", {"video_id": started["video_id"], "wait_seconds": 0})
    assert again["status"] == "succeeded" and again["status_code"] == 1 and again["url"] == started["url"]
    assert sandbox.state.stats()["jobs_created"] == 1


async def test_restyle_prompt_and_source_video_id(client: Client, clip: Path) -> None:
    uploaded = await call_ok(client, "upload_video", {"path": str(clip)})
    first = await call_ok(
        client,
        "restyle_video",
        {
            "video_media_id": int(uploaded["media_id"]),
            "restyle_prompt": "black and white noir film",
            "seed": 7,
        },
    )
    assert first["status"] == "succeeded" and first["restyle_prompt"] == "black and white noir film"
    second = await call_ok(
        client, "restyle_video", {"source_video_id": first["video_id"], "restyle_prompt": "pixel art"}
    )
    assert second["status"] == "succeeded" and second["video_id"] != first["video_id"]


async def test_query_filters_the_catalog(client: Client) -> None:
    everything = await call_ok(client, "list_restyles")
    name = everything["styles"][1]["name"]
    found = await call_ok(client, "list_restyles", {"query": name.upper()})
    assert name in [s["name"] for s in found["styles"]]
    assert found["count"] < everything["count"] and found["total"] == everything["total"]
    nothing = await call_ok(client, "list_restyles", {"query": "no-such-style-zzz"})
    assert nothing["count"] == 0 and "restyle_prompt" in nothing["message"]


async def test_catalog_is_cached(client: Client, sandbox: SandboxServer) -> None:
    await call_ok(client, "list_restyles")
    pages = sandbox.state.stats()["requests"]["list"]
    assert pages >= 2  # the catalog spans more than one page of the sandbox's list
    await call_ok(client, "list_restyles", {"query": "noir"})
    assert sandbox.state.stats()["requests"]["list"] == pages


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"restyle_id": 1}, "video_media_id or source_video_id"),
        ({"video_media_id": 1, "source_video_id": 2, "restyle_id": 1}, "not both"),
        ({"video_media_id": 1}, "restyle_id or restyle_prompt"),
        ({"video_media_id": 1, "restyle_id": 1, "restyle_prompt": "noir"}, "not both"),
        ({"video_media_id": 1, "restyle_prompt": "   "}, "blank"),
        ({"video_media_id": 1, "restyle_prompt": "x" * 2049}, "2049 characters"),
        ({"video_media_id": 1, "restyle_prompt": "noir", "seed": -1}, "seed"),
        ({"video_media_id": 1, "restyle_prompt": "noir", "seed": 2147483648}, "seed"),
        ({"video_media_id": "12abc", "restyle_prompt": "noir"}, "video_media_id"),
        ({"video_media_id": 0, "restyle_prompt": "noir"}, "video_media_id"),
        ({"video_media_id": 1, "restyle_id": 999999}, "not in the PixVerse restyle catalog"),
    ],
)
async def test_restyle_rules_send_nothing(
    client: Client, sandbox: SandboxServer, args: dict[str, object], needle: str
) -> None:
    text = await call_error(client, "restyle_video", args)
    assert needle in text
    stats = sandbox.state.stats()
    assert stats["requests"].get("generate", 0) == 0 and stats["jobs_created"] == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [({}, "path or url"), ({"path": "a.mp4", "url": "https://example.com/a.mp4"}, "not both")],
)
async def test_upload_rules_send_nothing(
    client: Client, sandbox: SandboxServer, args: dict[str, object], needle: str
) -> None:
    assert needle in await call_error(client, "upload_video", args)
    assert sandbox.state.stats()["requests"].get("upload", 0) == 0


async def test_base_url_path_is_kept(settings: Settings, clip: Path) -> None:
    from conftest import SECRET_KEY

    from pixverse_mcp.sandbox import SandboxConfig

    with SandboxServer(SandboxConfig(api_key=SECRET_KEY, job_seconds=0.1, path_prefix="/proxy/pv")) as behind:
        assert behind.base_url.endswith("/proxy/pv")
        server = create_server(settings.with_changes(base_url=behind.base_url))
        async with Client(server) as client:
            assert (await call_ok(client, "list_restyles"))["count"] >= 8
            uploaded = await call_ok(client, "upload_video", {"path": str(clip)})
            done = await call_ok(
                client, "restyle_video", {"video_media_id": uploaded["media_id"], "restyle_id": 1001}
            )
            assert done["status"] == "succeeded"
        assert behind.state.stats()["requests"]["generate"] == 1


async def test_trace_ids_are_unique_per_request(client: Client, clip: Path, sandbox: SandboxServer) -> None:
    uploaded = await call_ok(client, "upload_video", {"path": str(clip)})
    done = await call_ok(
        client, "restyle_video", {"video_media_id": uploaded["media_id"], "restyle_prompt": "neon"}
    )
    for _ in range(3):
        await call_ok(client, "get_status", {"video_id": done["video_id"], "wait_seconds": 0})
    seen = sandbox.state.stats()["trace_ids"]
    every = [trace for traces in seen.values() for trace in traces]
    assert len(every) >= 6 and len(every) == len(set(every))
    assert done["trace_id"] in seen["generate"]
