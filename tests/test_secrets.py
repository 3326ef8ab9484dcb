"""The API key and the MCP token never show: not in reprs, errors, results, resources or logs.

Every other test runs with the recognisable SECRET_KEY and checks its results and the captured
log (conftest); the stdio and HTTP tests check the spawned servers' stderr. This file covers the rest.
"""

from __future__ import annotations

import json

import pytest
from conftest import SECRET_KEY, call_error
from mcp import Client
from mcp.types import TextResourceContents
from pydantic import SecretStr

from pixverse_mcp.client import PixVerseClient
from pixverse_mcp.config import Settings
from pixverse_mcp.sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.anyio


async def test_reprs_mask_the_key(settings: Settings) -> None:
    with_token = settings.with_changes(mcp_token=SecretStr("token-" + SECRET_KEY))
    async with PixVerseClient(with_token) as client:
        shown = [repr(with_token), str(with_token), repr(client), with_token.model_dump_json()]
    shown.append(repr(SandboxConfig(api_key=SECRET_KEY)))
    for text in shown:
        assert SECRET_KEY not in text


def test_settings_from_env_keep_the_key_secret() -> None:
    settings = Settings.from_env({"PIXVERSE_API_KEY": SECRET_KEY, "PIXVERSE_MCP_TOKEN": SECRET_KEY})
    assert settings.api_key is not None and settings.api_key.get_secret_value() == SECRET_KEY
    assert SECRET_KEY not in repr(settings) and SECRET_KEY not in json.dumps(settings.model_dump(mode="json"))


async def test_resources_and_errors_carry_no_key(client: Client, sandbox: SandboxServer) -> None:
    catalog = await client.read_resource("pixverse://restyles")
    for block in catalog.contents:
        assert isinstance(block, TextResourceContents) and SECRET_KEY not in block.text
    sandbox.state.add_fault(endpoint="*", kind="html", count=50)
    for tool, args in [("get_balance", {}), ("get_status", {"video_id": 1, "wait_seconds": 0})]:
        assert SECRET_KEY not in await call_error(client, tool, args)
    sandbox.state.clear_faults()
    assert sandbox.state.stats()["api_keys_seen"] == 1
