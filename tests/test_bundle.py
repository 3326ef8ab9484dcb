"""The Claude Desktop bundle, for real: built and validated with the mcpb CLI, unpacked, and started
the way its manifest says, with the user's settings substituted as Claude Desktop does, by uv.

Needs npm (the @anthropic-ai/mcpb CLI comes through npx, cached after the first run) and the
PyPI index (uv installs the locked dependencies into the unpacked bundle, from its cache after
the first run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import call_ok
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from pixverse_mcp.samples import make_clip

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "release"))
import bundle  # noqa: E402 - release/bundle.py, the builder `dev.py bundle` runs

# Generous: the first run on a machine downloads the dependencies into uv's cache.
START_SECONDS = 120.0


def claude_desktop_launch(
    manifest: dict[str, Any], bundle_dir: Path, user_config: dict[str, Any], system_dirs: dict[str, str]
) -> tuple[str, list[str], dict[str, str]]:
    """The command, arguments and environment Claude Desktop makes from `mcp_config`.

    As the MCPB spec (and the mcpb package's reference code) says: the user's values over the
    defaults, defaults may use ${HOME} and the other system folders, booleans become "true" or
    "false", and an argument that is exactly `${user_config.KEY}` of a multiple choice expands into
    one argument per value.
    """
    variables: dict[str, Any] = {"__dirname": str(bundle_dir), "pathSeparator": os.sep, "/": os.sep}
    variables |= system_dirs

    def substitute(text: str) -> str:
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(variables.get(m.group(1), m.group(0))), text)

    options = manifest["user_config"]
    merged = {key: option["default"] for key, option in options.items() if "default" in option}
    merged |= user_config
    missing = [
        key for key, option in options.items() if option.get("required") and merged.get(key) in (None, "", [])
    ]
    assert not missing, f"Claude Desktop would not start it without {missing}"
    for key, value in merged.items():
        if isinstance(value, list):
            variables[f"user_config.{key}"] = [substitute(str(item)) for item in value]
        elif isinstance(value, bool):
            variables[f"user_config.{key}"] = "true" if value else "false"
        else:
            variables[f"user_config.{key}"] = substitute(str(value))

    config = manifest["server"]["mcp_config"]
    args: list[str] = []
    for arg in config["args"]:
        whole = re.fullmatch(r"\$\{(user_config\.[^}]+)\}", arg)
        if whole and isinstance(variables.get(whole.group(1)), list):
            args += variables[whole.group(1)]
        else:
            args.append(substitute(arg))
    env = {name: substitute(value) for name, value in config.get("env", {}).items()}
    return substitute(config["command"]), args, env


@pytest.fixture
def unpacked(tmp_path: Path) -> Path:
    """The bundle as `python3 dev.py bundle` builds it (validated and packed), unpacked again."""
    mcpb = bundle.build(tmp_path / "dist")
    assert mcpb.name.endswith(".mcpb") and mcpb.stat().st_size < 2_000_000
    folder = tmp_path / "installed"
    subprocess.run(
        [bundle.npx_command(), "--yes", bundle.MCPB, "unpack", str(mcpb), str(folder)],
        check=True,
        timeout=bundle.STEP_TIMEOUT,
        capture_output=True,
    )
    return folder


@pytest.mark.skipif(shutil.which("npm") is None, reason="the bundle is built with the mcpb CLI from npm")
async def test_the_bundle_builds_validates_unpacks_and_serves(unpacked: Path, tmp_path: Path) -> None:
    manifest = json.loads((unpacked / "manifest.json").read_text())
    assert manifest == json.loads((ROOT / "manifest.json").read_text())
    for name in ("uv.lock", "pyproject.toml", "LICENSE", "pixverse_mcp/__main__.py", manifest["icon"]):
        assert (unpacked / name).is_file(), name
    assert not list(unpacked.rglob("__pycache__")) and not list(unpacked.glob("*.egg-info"))

    home = tmp_path / "home"
    desktop = home / "Desktop"
    for folder in (home / "Downloads", desktop):
        folder.mkdir(parents=True)
    clip = make_clip(desktop / "clip.mp4", seconds=1.0, width=160, height=120)
    # The defaults for the folders, and sandbox mode on: as a first-time user would install it.
    command, args, env = claude_desktop_launch(
        manifest, unpacked, {"sandbox": True}, {"HOME": str(home), "DESKTOP": str(desktop)}
    )
    assert args[-2:] == [str(home / "Downloads"), str(desktop)]  # the folder list, one argument each
    assert env["PIXVERSE_OUTPUT_DIR"] == str(home / "Downloads" / "pixverse")
    assert command == "uv"
    # Nothing of this test run's environment decides the server's settings, venv or Python.
    inherited = ("PIXVERSE_", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    environment |= env
    # Claude Desktop brings uv and a Python; here uv is the dev dependency and the Python is this one.
    environment |= {"UV_PYTHON": sys.executable, "UV_PYTHON_DOWNLOADS": "never", "HOME": str(home)}
    environment["PATH"] = os.pathsep.join(
        [str(Path(bundle.uv_command()).parent), environment.get("PATH", "")]
    )
    params = StdioServerParameters(command=bundle.uv_command(), args=args, env=environment, cwd=str(tmp_path))
    errlog = tmp_path / "server.log"
    try:
        with errlog.open("w") as err:
            async with Client(
                stdio_client(params, errlog=err), mode="legacy", read_timeout_seconds=START_SECONDS
            ) as client:
                tools = [tool.name for tool in (await client.list_tools()).tools]
                prompts = [prompt.name for prompt in (await client.list_prompts()).prompts]
                # The second folder arrived too: a clip on the Desktop may be read.
                uploaded = await call_ok(client, "upload_video", {"path": str(clip)})
    except Exception as exc:
        pytest.fail(f"the bundled server failed ({exc!r}); it said:\n{errlog.read_text()[-3000:]}")
    assert tools == [tool["name"] for tool in manifest["tools"]], errlog.read_text()[-2000:]
    assert prompts == [prompt["name"] for prompt in manifest["prompts"]]
    assert uploaded["media_id"]
    assert "sandbox" in errlog.read_text()
