"""What people install and find: the icon, the registry entry, the bundle's manifest, the package
metadata, the install links and `--print-config`, each kept in step with the code."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shlex
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import av
import pytest
from mcp import Client

from pixverse_mcp import __version__, cli, connect, identity
from pixverse_mcp.config import Settings
from pixverse_mcp.icon import ASSET_FILES, SERVER_ICON_SIZES, asset_bytes, decode_png, draw, encode_png
from pixverse_mcp.server import create_server

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MANIFEST = json.loads((ROOT / "manifest.json").read_text())
SERVER_JSON = json.loads((ROOT / "server.json").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


# -- the icon ------------------------------------------------------------------------------------


def _rgba_by_ffmpeg(png: bytes) -> tuple[int, int, bytes]:
    """Decode a PNG with PyAV (FFmpeg's decoder, not ours): width, height and tight RGBA rows."""
    with av.open(io.BytesIO(png), format="png_pipe") as container:
        frame = next(container.decode(video=0)).reformat(format="rgba")
    plane, stride = frame.planes[0], frame.width * 4
    data = bytes(plane)
    rows = b"".join(data[r * plane.line_size : r * plane.line_size + stride] for r in range(frame.height))
    return frame.width, frame.height, rows


@pytest.mark.parametrize("size", sorted(ASSET_FILES))
def test_the_committed_icon_is_what_the_code_draws(size: int) -> None:
    # Compared by pixels, through FFmpeg's PNG decoder: zlib builds may compress the same pixels
    # to other bytes. After changing the drawing: python -m pixverse_mcp.icon
    assert _rgba_by_ffmpeg(asset_bytes(size)) == (size, size, draw(size))


def test_png_encoding_round_trips_and_stays_small() -> None:
    pixels = draw(48)
    png = encode_png(48, pixels)
    assert decode_png(png) == (48, 48, pixels)
    assert _rgba_by_ffmpeg(png) == (48, 48, pixels)
    # The server info carries the small sizes as data: URIs.
    assert len(asset_bytes(48)) < 1536 and len(asset_bytes(128)) < 4096
    corner, middle = pixels[:4], pixels[(24 * 48 + 24) * 4 : (24 * 48 + 25) * 4]
    assert corner[3] == 0 and middle == b"\xff\xff\xff\xff"  # transparent corner, white play sign


async def test_the_server_info_carries_the_icon(settings: Settings, mode: str) -> None:
    async with Client(create_server(settings), mode=mode) as client:
        info = client.server_info
    assert info is not None and info.website_url == identity.PROJECT_URL
    assert [icon.sizes for icon in info.icons or []] == [[f"{s}x{s}"] for s in SERVER_ICON_SIZES]
    for icon, size in zip(info.icons or [], SERVER_ICON_SIZES, strict=True):
        assert icon.mime_type == "image/png" and icon.src.startswith("data:image/png;base64,")
        png = base64.b64decode(icon.src.removeprefix("data:image/png;base64,"), validate=True)
        assert _rgba_by_ffmpeg(png) == (size, size, draw(size))


# -- the bundle's manifest and the registry entry --------------------------------------------------


async def _model_visible(settings: Settings) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The tools and prompts a model sees (a client without MCP Apps: no app-only tools)."""
    async with Client(create_server(settings)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        prompts = {
            prompt.name: [argument.name for argument in prompt.arguments or []]
            for prompt in (await client.list_prompts()).prompts
        }
    return tools, prompts


async def test_the_manifest_lists_exactly_the_servers_tools_and_prompts(settings: Settings) -> None:
    # A new tool or prompt must be added to manifest.json too: Claude Desktop shows that list.
    tools, prompts = await _model_visible(settings)
    assert [tool["name"] for tool in MANIFEST["tools"]] == list(tools)
    assert all(tool["description"] for tool in MANIFEST["tools"])
    assert {p["name"]: p.get("arguments", []) for p in MANIFEST["prompts"]} == prompts
    for prompt in MANIFEST["prompts"]:
        assert all(f"${{arguments.{name}}}" in prompt["text"] for name in prompt["arguments"])


def _variables_the_config_reads() -> list[str]:
    """Every environment variable `Settings.from_env` looks at, in the order it reads them."""

    class Recording(Mapping[str, str]):
        def __init__(self) -> None:
            self.names: list[str] = []

        def __getitem__(self, name: str) -> str:
            self.names.append(name)
            raise KeyError(name)

        def __iter__(self) -> Iterator[str]:
            return iter(())

        def __len__(self) -> int:
            return 0

        def get(self, name: str, default: Any = None) -> Any:
            self.names.append(name)
            return default

    environ = Recording()
    Settings.from_env(environ)
    return list(dict.fromkeys(environ.names))


def test_the_registry_entry_follows_the_code() -> None:
    package = SERVER_JSON["packages"][0]
    assert SERVER_JSON["version"] == package["version"] == __version__
    assert SERVER_JSON["name"] == identity.REGISTRY_NAME and f"mcp-name: {identity.REGISTRY_NAME}" in README
    assert SERVER_JSON["$schema"].endswith("/2025-12-11/server.schema.json")
    assert len(SERVER_JSON["description"]) <= 100  # the registry's limit
    assert (package["registryType"], package["identifier"]) == ("pypi", identity.PACKAGE)
    assert package["transport"] == {"type": "stdio"}
    variables = {v["name"]: v for v in package["environmentVariables"]}
    assert sorted(variables) == sorted(_variables_the_config_reads())
    assert {name for name, v in variables.items() if v.get("isSecret")} == {
        "PIXVERSE_API_KEY",
        "PIXVERSE_MCP_TOKEN",
        "PIXVERSE_JOURNAL_URL",
    }
    assert variables["PIXVERSE_API_KEY"]["isRequired"] is True
    remote = SERVER_JSON["remotes"][0]
    assert remote["type"] == "streamable-http" and remote["url"].endswith("/mcp")
    (header,) = remote["headers"]
    assert header["name"] == "Authorization" and header["value"] == connect.bearer("{token}")
    assert header["isSecret"] is True


def test_the_published_names_agree() -> None:
    project = PYPROJECT["project"]
    assert project["name"] == MANIFEST["name"] == identity.PACKAGE
    assert MANIFEST["version"] == __version__
    assert project["license"] == MANIFEST["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert set(project["scripts"]) == {identity.COMMAND, identity.PACKAGE}
    urls = {
        project["urls"]["Repository"],
        MANIFEST["repository"]["url"],
        SERVER_JSON["repository"]["url"],
        SERVER_JSON["websiteUrl"],
        identity.PROJECT_URL,
    }
    assert urls == {identity.PROJECT_URL}
    # The bundle's Python range is the package's, in the space-separated form the manifest takes.
    assert MANIFEST["compatibility"]["runtimes"]["python"] == f"{project['requires-python']} <4"
    assert MANIFEST["server"]["mcp_config"]["command"] == "uv" and MANIFEST["server"]["type"] == "uv"


def test_the_readme_starts_with_the_demo_and_test_commands() -> None:
    lines = README.splitlines()
    assert lines[2] == "```sh"
    assert lines[3].startswith("python3 dev.py demo") and lines[4].startswith("python3 dev.py test")


# -- install links and --print-config ----------------------------------------------------------------


def test_the_cursor_link_decodes_to_the_published_entry() -> None:
    link = connect.cursor_link()
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("cursor", "anysphere.cursor-deeplink", "/mcp/install")
    query = parse_qs(parts.query, strict_parsing=True)
    assert query["name"] == [identity.SERVER_KEY]
    config = json.loads(base64.b64decode(query["config"][0], validate=True))
    assert config == {
        "command": "uvx",
        "args": [identity.PACKAGE],
        "env": {"PIXVERSE_API_KEY": connect.KEY_PLACEHOLDER},
    }
    assert link in README


def test_the_vscode_link_decodes_to_the_published_entry() -> None:
    link = connect.vscode_link()
    assert link.startswith("vscode:mcp/install?")
    config = json.loads(unquote(link.removeprefix("vscode:mcp/install?")))
    assert config["name"] == identity.SERVER_KEY
    assert (config["command"], config["args"]) == ("uvx", [identity.PACKAGE])
    assert config["env"] == {"PIXVERSE_API_KEY": "${input:pixverse-api-key}"}
    assert config["inputs"] == [
        {
            "type": "promptString",
            "id": "pixverse-api-key",
            "description": "PixVerse API key",
            "password": True,
        }
    ]
    assert link in README
    assert f"code --add-mcp '{json.dumps(connect.vscode_config(), separators=(',', ':'))}'" in README


def _printed(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(list(argv)) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


@pytest.mark.parametrize("client", ["claude", "cursor"])
def test_print_config_gives_an_mcp_servers_entry_for_this_install(
    client: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = _printed(
        capsys, "--print-config", client, "--allowed-dir", str(tmp_path / "a"), str(tmp_path / "b")
    )
    entry = json.loads(out)["mcpServers"][identity.SERVER_KEY]
    command = Path(entry["command"])
    assert command.is_absolute() and command.name == identity.COMMAND and entry["args"] == []
    assert entry["env"] == {
        "PIXVERSE_API_KEY": connect.KEY_PLACEHOLDER,
        "PIXVERSE_ALLOWED_DIRS": f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}",
    }
    # The printed command is this install's, and it runs.
    ran = subprocess.run([command, "--version"], capture_output=True, text=True, timeout=30, check=True)
    assert __version__ in ran.stdout


def test_print_config_for_vscode_asks_for_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    config = json.loads(_printed(capsys, "--print-config", "vscode"))
    entry = config["servers"][identity.SERVER_KEY]
    assert entry["type"] == "stdio" and Path(entry["command"]).is_absolute()
    assert entry["env"] == {"PIXVERSE_API_KEY": "${input:pixverse-api-key}"}
    assert [item["id"] for item in config["inputs"] if item["password"]] == ["pixverse-api-key"]


def test_print_config_for_claude_code_is_one_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    words = shlex.split(_printed(capsys, "--print-config", "claude-code", "--sandbox"))
    split = words.index("--")
    assert words[:split] == ["claude", "mcp", "add", "--transport", "stdio", "--scope", "user", "pixverse"]
    assert Path(words[split + 1]).name == identity.COMMAND and words[split + 2 :] == ["--sandbox"]
    # With a key: `--env NAME=VALUE` after the name, up to the "--".
    words = shlex.split(_printed(capsys, "--print-config", "claude-code"))
    split = words.index("--")
    assert words[split - 2 : split] == ["--env", f"PIXVERSE_API_KEY={connect.KEY_PLACEHOLDER}"]


def test_print_config_never_prints_the_key(capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    monkeypatch.setenv("PIXVERSE_API_KEY", "sk-real-key-do-not-print")
    for client in connect.CLIENTS:
        assert "sk-real-key-do-not-print" not in _printed(capsys, "--print-config", client)


def test_print_config_refuses_a_url_that_is_not_http(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--print-config", "cursor", "--url", "file:///etc/passwd"]) == 2
    assert "--url" in capsys.readouterr().err


def test_the_readme_shows_print_config() -> None:
    assert re.search(r"pixverse-mcp --print-config", README)
    assert "uvx pixverse-restyle-mcp" in README


def test_a_missing_system_package_fails_on_ci_and_is_skipped_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from conftest import needs_system_package

    needs_system_package(True, "apt-get install -y chromium")  # present: nothing happens
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"\.ci/run installs it"):
        needs_system_package(False, "apt-get install -y chromium")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        needs_system_package(False, "apt-get install -y chromium")
