"""Build the Claude Desktop bundle (.mcpb): stage it, lock it, validate it, pack it.

    python3 dev.py bundle [--out DIR]       (default DIR: dist/)

The bundle is a "uv" server (manifest spec 0.4): Claude Desktop runs
`uv run --directory <bundle> --frozen pixverse-mcp serve ...`, and uv installs Python, the
dependencies (compiled wheels such as PyAV and pydantic-core included) and this package from the
bundle's own source. The stage holds manifest.json, the icons, pyproject.toml, README.md, LICENSE,
the package source and a uv.lock made here, so every install resolves to the same versions.
Needs `npx` (Node.js) for the @anthropic-ai/mcpb CLI and uv (a dev dependency) for the lock.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MCPB = "@anthropic-ai/mcpb@2"
"""The CLI that validates and packs; its major version fixes the manifest specs it knows."""
STEP_TIMEOUT = 300.0
ASSETS = ROOT / "pixverse_mcp" / "assets"
SOURCE_FILES = ("manifest.json", "pyproject.toml", "README.md", "LICENSE")


def uv_command() -> str:
    """uv from this environment (the dev extras install it), else from PATH."""
    beside = Path(sys.executable).parent / ("uv.exe" if os.name == "nt" else "uv")
    found = str(beside) if beside.is_file() else shutil.which("uv")
    if found is None:
        raise SystemExit("uv is needed to lock the bundle: pip install uv (python3 dev.py installs it)")
    return found


def npx_command() -> str:
    found = shutil.which("npx")
    if found is None:
        raise SystemExit(
            "npx (Node.js) is needed for the @anthropic-ai/mcpb CLI: install Node.js 18 or newer"
        )
    return found


def _run(*command: str) -> None:
    print("+", " ".join(command), file=sys.stderr)
    subprocess.run(command, check=True, timeout=STEP_TIMEOUT)


def stage(folder: Path) -> Path:
    """Copy what the bundle holds into `folder` and lock its dependencies; returns `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SOURCE_FILES:
        shutil.copy2(ROOT / name, folder / name)
    shutil.copytree(
        ROOT / "pixverse_mcp",
        folder / "pixverse_mcp",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"),
    )
    for icon in json.loads((ROOT / "manifest.json").read_text())["icons"]:
        shutil.copy2(ASSETS / icon["src"], folder / icon["src"])
    # The interpreter only reads the project's metadata here; the lock itself is for every platform.
    _run(uv_command(), "lock", "--quiet", "--directory", str(folder), "--python", sys.executable)
    for leftover in folder.glob("*.egg-info"):  # setuptools' metadata from reading the project
        shutil.rmtree(leftover)
    return folder


def validate(manifest: Path) -> None:
    _run(npx_command(), "--yes", MCPB, "validate", str(manifest))


def pack(folder: Path, out_dir: Path) -> Path:
    """Validate the staged bundle and pack it into `out_dir`; returns the .mcpb file."""
    manifest = json.loads((folder / "manifest.json").read_text())
    validate(folder / "manifest.json")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{manifest['name']}-{manifest['version']}.mcpb"
    target.unlink(missing_ok=True)
    _run(npx_command(), "--yes", MCPB, "pack", str(folder), str(target))
    return target


def build(out_dir: Path) -> Path:
    """Stage, validate and pack the bundle; returns the .mcpb file."""
    with tempfile.TemporaryDirectory(prefix="pixverse-bundle-") as scratch:
        return pack(stage(Path(scratch) / "bundle"), out_dir)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dev.py bundle", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "dist", help="where the .mcpb goes (default: dist/)"
    )
    args = parser.parse_args(argv)
    target = build(args.out.resolve())
    print(f"built {target} ({target.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
