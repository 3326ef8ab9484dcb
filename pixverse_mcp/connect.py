"""How an assistant app is told to start this server: config snippets and one-click install links.

`pixverse-mcp --print-config CLIENT` prints `snippet(...)` for this install, so nobody writes the
JSON by hand; the README's Cursor and VS Code install links are `cursor_link()` and `vscode_link()`
of the published package (`uvx pixverse-restyle-mcp`). The API key is never printed: the snippets
carry a placeholder to replace (VS Code asks for it, as a password, when the server first starts).
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pixverse_mcp.identity import COMMAND, PACKAGE, SERVER_KEY

CLIENTS = ("claude", "cursor", "vscode", "claude-code")
"""The assistants `--print-config` knows: Claude Desktop, Cursor, VS Code and Claude Code."""

KEY_PLACEHOLDER = "YOUR_PIXVERSE_API_KEY"
TOKEN_PLACEHOLDER = "YOUR_PIXVERSE_MCP_TOKEN"
KEY_INPUT = "pixverse-api-key"
TOKEN_INPUT = "pixverse-mcp-token"


@dataclass(frozen=True)
class Launch:
    """How to start the server over stdio: the command, its arguments and the settings to pass."""

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    """Settings other than the key (folders), as environment variables."""
    needs_key: bool = True
    """False for `--sandbox`, which needs no PixVerse key."""


PUBLISHED = Launch("uvx", (PACKAGE,))
"""The published package, run by uv without an install step."""


def this_install() -> Launch:
    """The command that starts this install: its absolute path, or `uvx` from a throwaway uvx environment."""
    if any(part.startswith("archive-v") for part in Path(sys.prefix).parts):
        return PUBLISHED  # uvx's cache: the path would not outlive the cache
    script = Path(sys.executable).absolute().parent / (COMMAND + (".exe" if os.name == "nt" else ""))
    if script.is_file():
        return Launch(str(script))
    found = shutil.which(COMMAND)
    return Launch(str(Path(found).absolute())) if found else PUBLISHED


def _stdio_env(launch: Launch, key: str) -> dict[str, str]:
    return ({"PIXVERSE_API_KEY": key} if launch.needs_key else {}) | dict(launch.env)


def _stdio_entry(launch: Launch, key: str = KEY_PLACEHOLDER) -> dict[str, Any]:
    entry: dict[str, Any] = {"command": launch.command, "args": list(launch.args)}
    if env := _stdio_env(launch, key):
        entry["env"] = env
    return entry


def _secret_input(input_id: str, description: str) -> dict[str, Any]:
    return {"type": "promptString", "id": input_id, "description": description, "password": True}


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def snippet(client: str, launch: Launch) -> str:
    """The config that adds this server over stdio to `client` (JSON, or a `claude mcp add` line)."""
    if client in ("claude", "cursor"):
        # Claude Desktop's claude_desktop_config.json and Cursor's mcp.json share this shape.
        return _pretty({"mcpServers": {SERVER_KEY: _stdio_entry(launch)}})
    if client == "vscode":
        entry = {"type": "stdio", **_stdio_entry(launch, f"${{input:{KEY_INPUT}}}")}
        inputs = [_secret_input(KEY_INPUT, "PixVerse API key")] if launch.needs_key else []
        return _pretty({"servers": {SERVER_KEY: entry}, "inputs": inputs})
    if client == "claude-code":
        # The name before the options: --env takes several values, up to the "--".
        words = ["claude", "mcp", "add", "--transport", "stdio", "--scope", "user", SERVER_KEY]
        for name, value in _stdio_env(launch, KEY_PLACEHOLDER).items():
            words += ["--env", f"{name}={value}"]
        return shlex.join([*words, "--", launch.command, *launch.args])
    raise ValueError(f"unknown client {client!r}; choose one of {', '.join(CLIENTS)}")


def bearer(token: str) -> str:
    """The Authorization header value the HTTP transports accept."""
    return f"Bearer {token}"


def remote_snippet(client: str, url: str) -> str:
    """The config that connects `client` to a hosted server at `url` with the shared bearer token."""
    if client == "claude":
        # Claude Desktop's config file starts local programs only: mcp-remote (npm) is the bridge.
        # The header goes through an environment variable because Windows splits arguments at spaces.
        entry = {
            "command": "npx",
            "args": ["-y", "mcp-remote", url, "--header", "Authorization:${PIXVERSE_MCP_AUTH}"],
            "env": {"PIXVERSE_MCP_AUTH": bearer(TOKEN_PLACEHOLDER)},
        }
        return _pretty({"mcpServers": {SERVER_KEY: entry}})
    if client == "cursor":
        headers = {"Authorization": bearer(TOKEN_PLACEHOLDER)}
        return _pretty({"mcpServers": {SERVER_KEY: {"url": url, "headers": headers}}})
    if client == "vscode":
        headers = {"Authorization": bearer(f"${{input:{TOKEN_INPUT}}}")}
        return _pretty(
            {
                "servers": {SERVER_KEY: {"type": "http", "url": url, "headers": headers}},
                "inputs": [_secret_input(TOKEN_INPUT, "The server's PIXVERSE_MCP_TOKEN")],
            }
        )
    if client == "claude-code":
        header = f"Authorization: {bearer(TOKEN_PLACEHOLDER)}"
        words = ["claude", "mcp", "add", "--transport", "http", "--scope", "user", SERVER_KEY, url]
        return shlex.join([*words, "--header", header])
    raise ValueError(f"unknown client {client!r}; choose one of {', '.join(CLIENTS)}")


def cursor_link(launch: Launch = PUBLISHED) -> str:
    """Cursor's one-click install link: the server's mcp.json entry, base64-encoded."""
    config = base64.b64encode(json.dumps(_stdio_entry(launch), separators=(",", ":")).encode()).decode()
    return f"cursor://anysphere.cursor-deeplink/mcp/install?name={SERVER_KEY}&config={quote(config, safe='')}"


def vscode_config(launch: Launch = PUBLISHED) -> dict[str, Any]:
    """The server as VS Code's install link and `code --add-mcp` take it: named, with its key input."""
    config: dict[str, Any] = {"name": SERVER_KEY, **_stdio_entry(launch, f"${{input:{KEY_INPUT}}}")}
    if launch.needs_key:
        config["inputs"] = [_secret_input(KEY_INPUT, "PixVerse API key")]
    return config


def vscode_link(launch: Launch = PUBLISHED) -> str:
    """VS Code's one-click install link: the config as URL-encoded JSON."""
    return "vscode:mcp/install?" + quote(json.dumps(vscode_config(launch), separators=(",", ":")), safe="")


def for_this_install(
    client: str,
    *,
    sandbox: bool = False,
    allowed_dirs: Sequence[Path] = (),
    output_dir: Path | None = None,
    url: str | None = None,
) -> str:
    """What `--print-config` prints: the snippet for this install, with the given serve flags as settings."""
    if url is not None:
        return remote_snippet(client, url)
    base = this_install()
    env: dict[str, str] = {}
    if allowed_dirs:
        env["PIXVERSE_ALLOWED_DIRS"] = os.pathsep.join(
            str(Path(p).expanduser().absolute()) for p in allowed_dirs
        )
    if output_dir is not None:
        env["PIXVERSE_OUTPUT_DIR"] = str(Path(output_dir).expanduser().absolute())
    args = (*base.args, "--sandbox") if sandbox else base.args
    return snippet(client, Launch(base.command, args, env, needs_key=not sandbox))
