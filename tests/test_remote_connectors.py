"""The header each documented remote config sends is the one a hosted server accepts.

The configs are the ones `--print-config CLIENT --url URL` prints (and the README shows); the token
placeholder is replaced the way a user would, and the resulting header is sent to a real
streamable-HTTP server on loopback.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr
from test_http import INITIALIZE, MCP_HEADERS, TOKEN, serving

from pixverse_mcp import connect, identity
from pixverse_mcp.config import Settings
from pixverse_mcp.transport import build_http_app

pytestmark = pytest.mark.anyio

URL = "https://mcp.example.com/mcp"


def _authorization(client: str) -> str:
    """The Authorization header value the client's printed config makes it send, token filled in."""
    text = connect.remote_snippet(client, URL).replace(connect.TOKEN_PLACEHOLDER, TOKEN)
    if client == "claude-code":
        words = shlex.split(text)
        assert words[words.index(identity.SERVER_KEY) + 1] == URL
        name, _, value = words[words.index("--header") + 1].partition(":")
    else:
        config: dict[str, Any] = json.loads(text)
        servers = config.get("mcpServers") or config["servers"]
        entry = servers[identity.SERVER_KEY]
        if client == "claude":
            # mcp-remote: --header NAME:VALUE, the value read from the entry's environment.
            args = entry["args"]
            assert args[args.index("mcp-remote") + 1] == URL
            name, _, template = args[args.index("--header") + 1].partition(":")
            value = template.replace("${PIXVERSE_MCP_AUTH}", entry["env"]["PIXVERSE_MCP_AUTH"])
        else:
            assert entry["url"] == URL
            name, value = "Authorization", entry["headers"]["Authorization"]
            # VS Code fills its input with what the user typed: the token.
            value = value.replace(f"${{input:{connect.TOKEN_INPUT}}}", TOKEN)
    assert name.strip() == "Authorization"
    return value.strip()


@pytest.mark.parametrize("client", connect.CLIENTS)
async def test_each_printed_remote_config_sends_the_accepted_header(client: str, settings: Settings) -> None:
    value = _authorization(client)
    assert value == f"Bearer {TOKEN}"
    app = build_http_app(settings.with_changes(mcp_token=SecretStr(TOKEN)))
    with serving(app) as root:
        async with httpx2.AsyncClient(timeout=10) as http:
            accepted = await http.post(
                f"{root}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": value}
            )
            assert accepted.status_code == 200, accepted.text
            # Other forms people try are refused: another scheme, the bare token, the token in the URL.
            for wrong in (f"Token {TOKEN}", TOKEN, f"Bearer: {TOKEN}", f"Bearer {TOKEN} extra"):
                refused = await http.post(
                    f"{root}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": wrong}
                )
                assert refused.status_code == 401, wrong
            in_url = await http.post(f"{root}/mcp?token={TOKEN}", json=INITIALIZE, headers=MCP_HEADERS)
            assert in_url.status_code == 401
