"""6. Context cost: what the tools/list reply and typical results cost a conversation.

Every conversation carries the tools/list reply in the model's context, so its size is paid on
every turn. Measured on the in-memory client against `create_server` (no process, no network for
tools/list): the tools array as the SDK puts it on the wire (compact JSON, no null fields), with
tokens estimated as characters / 4. Then a few real results, against an in-process sandbox, to
show what a call adds to the context.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from _common import SANDBOX_KEY, Section, say, small_clip
from mcp import Client
from pydantic import SecretStr

from pixverse_mcp.config import Settings
from pixverse_mcp.sandbox import SandboxConfig, SandboxServer
from pixverse_mcp.server import create_server

# The goal counts today's five tools; tools added later are listed beside it, not in it.
GOAL_TOOLS = ("list_restyles", "upload_video", "restyle_video", "get_status", "get_balance")
GOAL_TOKENS = 2400


def wire_json(value: Any) -> str:
    """`value` as the SDK serialises it: compact JSON, non-ASCII kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def tokens(text: str) -> int:
    """The usual rough estimate: four characters a token."""
    return round(len(text) / 4)


def _size(text: str) -> str:
    return f"{len(text.encode()):,} B, {tokens(text):,} tokens"


def _tool_row(section: Section, tool: dict[str, Any]) -> None:
    whole = wire_json(tool)
    parts = {
        "input schema": wire_json(tool.get("inputSchema", {})),
        "output schema": wire_json(tool["outputSchema"]) if "outputSchema" in tool else "",
        "description": wire_json(tool.get("description", "")),
    }
    rest = len(whole) - sum(len(p) for p in parts.values())
    detail = ", ".join(f"{name} {tokens(text)}" for name, text in parts.items())
    section.row(f"`{tool['name']}`", f"{_size(whole)} (tokens: {detail}, the rest {round(rest / 4)})")


async def _result_sizes(section: Section, workdir: Path) -> None:
    """Real answers of the tools against an in-process sandbox, with a job that ends in a second."""
    folder = workdir / "context"
    folder.mkdir()
    shutil.copy(small_clip(), folder / "clip.mp4")
    with SandboxServer(SandboxConfig(job_seconds=1.0)) as sandbox:
        settings = Settings(
            api_key=SecretStr(SANDBOX_KEY),
            base_url=sandbox.base_url,
            allowed_dirs=(folder,),
            output_dir=folder / "out",
            log_level="WARNING",  # keep the tool-call log lines out of the progress output
        )
        async with Client(create_server(settings)) as client:

            async def answer(what: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
                result = await client.call_tool(tool, args)
                if result.is_error:
                    raise RuntimeError(f"{tool} failed: {result.content}")
                texts = "".join(getattr(block, "text", "") for block in result.content)
                images = [
                    len(getattr(block, "data", "")) for block in result.content if block.type == "image"
                ]
                whole = wire_json(result.model_dump(mode="json", by_alias=True, exclude_none=True))
                figure = f"text {_size(texts)}; whole result {len(whole.encode()):,} B"
                if images:
                    figure += f" (of which a preview picture of {sum(images) / 1024:.0f} KiB, base64)"
                section.row(what, figure)
                return dict(result.structured_content or {})

            await answer("`get_balance` answer", "get_balance", {})
            await answer("`list_restyles` answer, one style found", "list_restyles", {"query": "sketch"})
            media = await answer("`upload_video` answer", "upload_video", {"path": "clip.mp4"})
            started = await answer(
                "`restyle_video` answer, job started",
                "restyle_video",
                {"video_media_id": media["media_id"], "restyle_prompt": "a pencil sketch", "wait_seconds": 0},
            )
            video_id = started["video_id"]
            await answer(
                "`get_status` answer, still generating (a typical poll)",
                "get_status",
                {"video_id": video_id, "wait_seconds": 0},
            )
            await answer(
                "`get_status` answer, succeeded", "get_status", {"video_id": video_id, "wait_seconds": 20}
            )


async def run(workdir: Path) -> Section:
    section = Section("Context cost")
    # tools/list needs no PixVerse: the base URL is never called.
    settings = Settings(
        api_key=SecretStr(SANDBOX_KEY),
        base_url="http://127.0.0.1:9",
        allowed_dirs=(workdir,),
        output_dir=workdir / "out",
        log_level="WARNING",
    )
    async with Client(create_server(settings)) as client:
        listed = await client.list_tools()
    # `_meta` (the viewer's binding) is for the host, not the model: it is counted apart.
    tools = [
        t.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"meta"}) for t in listed.tools
    ]
    metas = sum(len(wire_json(t.meta)) for t in listed.tools if t.meta)
    counted = [t for t in tools if t["name"] in GOAL_TOOLS]
    others = [t for t in tools if t["name"] not in GOAL_TOOLS]
    missing = sorted(set(GOAL_TOOLS) - {t["name"] for t in counted})
    everything, five = wire_json(tools), wire_json(counted)
    outputs = sum(len(wire_json(t.get("outputSchema", {}))) for t in counted if "outputSchema" in t)
    say(f"  tools/list: {len(tools)} tools, {_size(everything)}")

    section.row(f"tools/list reply, tools array of all {len(tools)} tools", _size(everything))
    section.row("besides: `_meta` for hosts (the viewer's binding, not shown to the model)", f"{metas:,} B")
    section.row(
        f"the {len(counted)} restyle tools ({', '.join(GOAL_TOOLS)})"
        + (f"; missing: {', '.join(missing)}" if missing else ""),
        f"{_size(five)}; output schemas {outputs / len(five):.0%} of it",
        f"<= {GOAL_TOKENS:,} tokens",
        tokens(five) <= GOAL_TOKENS and not missing,
    )
    for tool in counted:
        _tool_row(section, tool)
    if others:
        section.row(
            "other tools (not in the goal)",
            "; ".join(f"`{t['name']}` {_size(wire_json(t))}" for t in others),
        )
    await _result_sizes(section, workdir)
    section.notes.append(
        "The tools array of the tools/list reply on the in-memory client, serialised as the SDK sends "
        "it (compact JSON, no null fields); tokens are characters / 4, a rough estimate that differs by "
        "model. Per tool, the input schema includes its parameters' descriptions; the rest is the name, "
        "title, annotations and keys. Results: real answers against an in-process sandbox; the text is "
        "what a model reads, the whole result also carries structuredContent for clients that use it."
    )
    return section
