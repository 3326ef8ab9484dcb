"""The official `pixverse-mcp` package as a peer: a Python >= 3.12 venv of its own under .cache/.

It needs Python >= 3.12 and the 1.x MCP SDK, so it can never share our venv. When no such Python
exists, or PyPI cannot be reached, `find_peer()` says why and the benchmarks carry on without it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from _common import CACHE, SANDBOX_KEY
from mcp import StdioServerParameters

PEER_SPEC = ("pixverse-mcp==0.2.2", "mcp<2")
VENV = CACHE / "peer-venv"
MARKER = VENV / ".bench-installed"


@dataclass(frozen=True)
class Peer:
    """Where the peer's server and its SDK's floor can be started from."""

    python: str
    script: str
    version: str

    def params(self, base_url: str, workdir: Path) -> StdioServerParameters:
        """The peer over stdio; it reads PIXVERSE_BASE_URL and serves its paths at the root."""
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", str(workdir)),
            "PIXVERSE_BASE_URL": base_url,
            "PIXVERSE_API_KEY": SANDBOX_KEY,
        }
        # Its console script, not `python -m pixverse_mcp`: a cwd holding our package of the same
        # import name would shadow it.
        return StdioServerParameters(command=self.script, args=[], env=env, cwd=str(workdir))


def _python_version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def find_python312() -> str | None:
    """A Python >= 3.12 on this machine: on PATH, under pyenv, or in /usr/bin."""
    candidates = [shutil.which(f"python3.{minor}") for minor in range(20, 11, -1)]
    home = Path.home()
    candidates += sorted(glob.glob(str(home / ".pyenv/versions/3.1[2-9]*/bin/python3")), reverse=True)
    candidates += sorted(glob.glob("/usr/bin/python3.1[2-9]"), reverse=True)
    candidates += sorted(glob.glob("/usr/local/bin/python3.1[2-9]"), reverse=True)
    for python in filter(None, candidates):
        version = _python_version(python)
        if version is not None and version >= (3, 12):
            return python
    return None


def find_peer() -> tuple[Peer | None, str]:
    """The installed peer (installing it on first use), or None and the reason it cannot run."""
    script, python = VENV / "bin" / "pixverse-mcp", VENV / "bin" / "python"
    wanted = " ".join(PEER_SPEC)
    if not (MARKER.exists() and MARKER.read_text() == wanted and script.exists()):
        base = find_python312()
        if base is None:
            return None, "it needs Python >= 3.12 and none was found (PATH, ~/.pyenv, /usr/bin)"
        shutil.rmtree(VENV, ignore_errors=True)
        try:
            subprocess.run([base, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=120)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PEER_SPEC],
                check=True,
                capture_output=True,
                text=True,
                timeout=240,
            )
        except subprocess.CalledProcessError as exc:
            lines = [ln for ln in (exc.stderr or "").splitlines() if "is ignored" not in ln]
            return None, f"installing {wanted} failed: {' '.join(lines[-2:])[:300]}"
        except (OSError, subprocess.SubprocessError) as exc:
            return None, f"installing {wanted} failed: {type(exc).__name__}: {exc}"
        MARKER.write_text(wanted)
    versions = subprocess.run(
        [
            str(python),
            "-c",
            "import sys; from importlib.metadata import version as v; "
            "print(v('pixverse-mcp'), v('mcp'), '%d.%d.%d' % sys.version_info[:3])",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.split()
    if len(versions) != 3:
        return None, "the peer's venv is broken; delete bench/.cache/peer-venv and run again"
    label = f"pixverse-mcp {versions[0]} (mcp {versions[1]}, Python {versions[2]})"
    return Peer(str(python), str(script), label), ""
