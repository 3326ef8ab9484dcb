"""What real MCP clients and the real PixVerse replies need, through the protocol against the sandbox.

Waiting past the default wait, ids that must not be coerced, the documented catalog shape, status
replies without an id, queued statuses, the `credit` key, descriptions, progress on one scale,
resource error codes, the size of tools/list, and unknown arguments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET_KEY, ProgressLog, call_error, call_ok, upload
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from pydantic import SecretStr, ValidationError

from pixverse_mcp.config import Settings
from pixverse_mcp.sandbox import SandboxServer
from pixverse_mcp.server import create_server

pytestmark = pytest.mark.anyio

PAID_TOOLS = ("restyle_video",)
FIVE_TOOLS = ("list_restyles", "upload_video", "restyle_video", "get_status", "get_balance")


def _configure(sandbox: SandboxServer, **changes: Any) -> None:
    sandbox.state.config = sandbox.state.config.model_copy(update=changes)


def _requests(sandbox: SandboxServer, endpoint: str) -> int:
    return int(sandbox.state.stats()["requests"].get(endpoint, 0))


async def test_a_job_that_outlasts_the_default_wait_answers_generating(
    settings: Settings, clip: Path, sandbox: SandboxServer
) -> None:
    # The default wait (10 s here) runs out while the job still generates: the answer is "generating"
    # with when to check again, never "unknown" or "did not answer in time".
    _configure(sandbox, job_seconds=120)
    async with Client(create_server(settings)) as client:
        media_id = await upload(client, clip)
        started = await call_ok(
            client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir"}
        )
    assert started["status"] == "generating", started
    assert started["check_again_in_seconds"] and "did not answer" not in started["message"]
    assert started["waited_seconds"] >= settings.default_wait_seconds - settings.max_wait_seconds / 10


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (True, "not true"),
        (False, "not false"),
        (9007199254740993.0, "string of digits"),
        (1e16, "string of digits"),
        (12.5, "whole number"),
        ([1], "string of its digits"),
    ],
)
async def test_ids_are_never_coerced(
    client: Client, sandbox: SandboxServer, value: object, needle: str
) -> None:
    text = await call_error(client, "get_status", {"video_id": value, "wait_seconds": 0})
    assert "video_id" in text and needle in text
    text = await call_error(client, "restyle_video", {"video_media_id": value, "restyle_prompt": "noir"})
    assert "video_media_id" in text
    assert _requests(sandbox, "result") == 0 and _requests(sandbox, "generate") == 0


async def test_seed_refuses_booleans_and_takes_whole_numbers(
    client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    media_id = await upload(client, clip)
    text = await call_error(
        client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "seed": True}
    )
    assert "seed" in text and _requests(sandbox, "generate") == 0
    started = await call_ok(
        client,
        "restyle_video",
        {"video_media_id": media_id, "restyle_prompt": "noir", "seed": 7.0, "wait_seconds": 0},
    )
    assert started["seed"] in (7, None)
    jobs = list(sandbox.state.jobs.values())
    assert [job.seed for job in jobs] == [7]


async def test_the_documented_catalog_shape_is_read_and_searched_by_name(client: Client) -> None:
    catalog = await call_ok(client, "list_restyles")
    first = catalog["styles"][0]
    assert first["name"] and first["thumbnail"].endswith(".jpg") and not first.get("prompt")
    found = await call_ok(client, "list_restyles", {"query": "sketch"})
    assert [s["name"] for s in found["styles"]] == ["Pencil Sketch"]
    loose = await call_ok(client, "list_restyles", {"query": "anime style"})
    assert [s["name"] for s in loose["styles"]] == ["Anime Cel"]
    misspelt = await call_ok(client, "list_restyles", {"query": "skech"})
    assert [s["name"] for s in misspelt["styles"]] == ["Pencil Sketch"]


async def test_the_web_catalog_shape_brings_prompts_and_markers(
    client: Client, sandbox: SandboxServer
) -> None:
    _configure(sandbox, list_shape="web")
    catalog = await call_ok(client, "list_restyles")
    marked = [s for s in catalog["styles"] if s.get("marker") == "new"]
    assert marked and all(s["thumbnail"] and s["prompt"] for s in catalog["styles"])
    assert catalog["total"] == len(catalog["styles"])


@pytest.mark.parametrize("result_id", ["absent", "zero"])
async def test_a_status_reply_without_id_is_about_the_job_asked_for(
    client: Client, clip: Path, sandbox: SandboxServer, result_id: str
) -> None:
    media_id = await upload(client, clip)
    started = await call_ok(
        client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 0}
    )
    _configure(sandbox, result_id=result_id)
    status = await call_ok(client, "get_status", {"video_id": started["video_id"], "wait_seconds": 0})
    assert status["video_id"] == started["video_id"] and status["status"] in ("generating", "succeeded")


async def test_queued_statuses_keep_the_wait_going(
    settings: Settings, clip: Path, sandbox: SandboxServer
) -> None:
    _configure(sandbox, queued_statuses=True, job_seconds=1.2)
    async with Client(create_server(settings)) as client:
        media_id = await upload(client, clip)
        queued = await call_ok(
            client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 0}
        )
        assert queued["status"] == "generating" and queued["status_code"] == 2
        assert queued["message"].startswith("Queued")
        done = await call_ok(client, "get_status", {"video_id": queued["video_id"], "wait_seconds": 14})
    assert done["status"] == "succeeded"


async def test_generate_replies_saying_credit_are_read(
    client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    _configure(sandbox, generate_credit_key="credit")
    media_id = await upload(client, clip)
    started = await call_ok(
        client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 0}
    )
    assert started["credits"] == sandbox.state.config.restyle_credits


async def test_500052_says_the_upload_was_refused_by_moderation(
    client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    sandbox.state.add_fault(endpoint="upload", kind="err_code", code=500052)
    text = await call_error(client, "upload_video", {"path": str(clip)})
    assert "500052" in text and "refused by moderation" in text and "different video" in text


async def test_descriptions_read_the_same_everywhere(client: Client) -> None:
    tools = (await client.list_tools()).tools
    prompts = (await client.list_prompts()).prompts
    texts = [t.description or "" for t in tools] + [p.description or "" for p in prompts]
    for text in texts:
        assert text and "\n " not in text and text == text.strip()
    [restyle] = prompts
    assert restyle.arguments and all(argument.description for argument in restyle.arguments)
    paid = next(t for t in tools if t.name == "restyle_video")
    trace = json.dumps(paid.input_schema["properties"]["trace_id"])
    # The recovery returns the job PixVerse made; PixVerse does not document it as free.
    assert "charg" not in trace and "free" not in trace


async def test_progress_has_one_scale_and_names_the_job_at_once(
    client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    _configure(sandbox, job_seconds=1.0)
    media_id = await upload(client, clip)
    progress = ProgressLog()
    done = await call_ok(
        client,
        "restyle_video",
        {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 14, "download": True},
        progress_callback=progress,
    )
    assert done["status"] == "succeeded" and done["local_path"]
    assert progress.messages[0] == f"job started: video_id {done['video_id']}"
    assert any(m.startswith("downloaded") for m in progress.messages)
    totals = {total for _, total in progress.values}
    values = [value for value, _ in progress.values]
    assert len(totals) == 1 and values == sorted(values)
    assert max(values) <= next(iter(totals))  # type: ignore[operator]


async def test_a_malformed_video_resource_is_invalid_params(client: Client) -> None:
    with pytest.raises(MCPError) as caught:
        await client.read_resource("pixverse://videos/abc")
    assert caught.value.error.code == INVALID_PARAMS and "video_id" in caught.value.error.message


async def test_tools_list_is_compact(client: Client) -> None:
    tools = [t for t in (await client.list_tools()).tools if t.name in FIVE_TOOLS]
    assert len(tools) == len(FIVE_TOOLS)
    # What reaches the model, as the wire carries it (compact JSON): everything but `_meta` (the
    # viewer's binding, read by the host).
    size = sum(
        len(
            json.dumps(
                t.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"meta"}),
                separators=(",", ":"),
            )
        )
        for t in tools
    )
    assert size / 4 <= 2400, f"tools/list costs about {size // 4} tokens"
    for tool in tools:
        schemas = json.dumps([tool.input_schema, tool.output_schema])
        assert '"title"' not in schemas.replace('"title": {', "")
        assert tool.input_schema.get("additionalProperties") is False


async def test_results_are_compact_json(client: Client) -> None:
    result = await client.call_tool("get_balance", {})
    text = result.content[0].text  # type: ignore[union-attr]
    assert "\n" not in text and json.loads(text)["total"] == result.structured_content["total"]  # type: ignore[index]


@pytest.mark.parametrize("tool", FIVE_TOOLS)
async def test_unknown_arguments_are_refused_before_anything_is_sent(
    client: Client, sandbox: SandboxServer, tool: str
) -> None:
    text = await call_error(client, tool, {"preview_only": True, "confirm": False})
    assert "'preview_only'" in text and "'confirm'" in text and "nothing was done" in text
    assert sum(sandbox.state.stats()["requests"].values()) == 0


async def test_a_paid_call_with_an_unknown_argument_starts_no_job(
    client: Client, clip: Path, sandbox: SandboxServer
) -> None:
    media_id = await upload(client, clip)
    text = await call_error(
        client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "confirm": False}
    )
    assert "restyle_prompt" in text  # the known arguments are listed
    assert _requests(sandbox, "generate") == 0 and not sandbox.state.jobs


@pytest.mark.parametrize("bad", ["sk-line\nbreak", "sk-ünïcode", "sk with space", "sk-tab\tx"])
def test_a_key_that_cannot_be_a_header_is_refused_without_showing_it(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(api_key=SecretStr(bad))
    assert bad not in str(caught.value) and "PIXVERSE_API_KEY" in str(caught.value)


def test_the_cli_refuses_a_bad_key_without_showing_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    from pixverse_mcp.cli import main

    monkeypatch.setenv("PIXVERSE_API_KEY", SECRET_KEY + "\nsecond-line")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "PIXVERSE_API_KEY" in err and SECRET_KEY not in err


async def test_a_failed_connection_is_a_clean_sentence_for_the_model_and_a_cause_in_the_log(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    nowhere = settings.with_changes(base_url=f"http://127.0.0.1:{port}")
    async with Client(create_server(nowhere)) as client:
        text = await call_error(client, "get_balance")
    assert "Could not connect to PixVerse" in text and "Errno" not in text
    causes = [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and "ConnectError" in r.getMessage()
    ]
    assert causes and any("refused" in cause.lower() or "errno" in cause.lower() for cause in causes), causes


async def test_the_tool_log_line_names_the_generate_trace_id_and_the_job(
    client: Client, clip: Path, sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    _configure(sandbox, job_seconds=0.5)
    media_id = await upload(client, clip)
    done = await call_ok(
        client, "restyle_video", {"video_media_id": media_id, "restyle_prompt": "noir", "wait_seconds": 10}
    )
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tool=restyle_video")]
    # Status checks after the generate have trace ids of their own; the line keeps the generate's.
    assert f"trace_id={done['trace_id']}" in line and f"video_id={done['video_id']}" in line
