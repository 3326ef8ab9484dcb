#!/usr/bin/env python3
"""Developer entry point that needs nothing but Python 3.11+.

    python3 dev.py demo    the end-to-end restyle on the offline sandbox
    python3 dev.py test    the test suite
    python3 dev.py lint    ruff check, ruff format --check, mypy
    python3 dev.py bench   the benchmarks in bench/
    python3 dev.py release-check   build the sdist and wheel, twine check them, list the wheel
    python3 dev.py bundle  build the Claude Desktop bundle (.mcpb) into dist/ (needs Node.js)
    python3 dev.py lock    upgrade the dependencies within pyproject.toml's ranges, pin them in
                           constraints.txt

Each command first makes .venv/ and installs the package with its dev extras into it, at the
versions pinned in constraints.txt (again only when pyproject.toml or constraints.txt changed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".installed-from"
CONSTRAINTS = ROOT / "constraints.txt"


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py itself may be started by an older python3
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")
    wanted = (ROOT / "pyproject.toml").read_text() + CONSTRAINTS.read_text()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not PYTHON.exists():
        print("creating .venv ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing pixverse-restyle-mcp and its dev tools into .venv ...", file=sys.stderr)
    pip_install("-c", str(CONSTRAINTS))
    STAMP.write_text(wanted)


def pip_install(*extra: str) -> None:
    subprocess.run(
        [
            str(PYTHON),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *extra,
            "-e",
            f"{ROOT}[dev]",
        ],
        check=True,
    )


def lock() -> int:
    """Upgrade within pyproject.toml's ranges, then pin what is installed in constraints.txt."""
    pip_install("--upgrade")
    frozen = subprocess.run(
        [str(PYTHON), "-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    header = "".join(
        line for line in CONSTRAINTS.read_text().splitlines(keepends=True) if line.startswith("#")
    )
    pins = [line for line in frozen.splitlines() if line and not line.startswith(("-e", "pixverse"))]
    CONSTRAINTS.write_text(header + "\n".join(pins) + "\n")
    STAMP.unlink(missing_ok=True)
    print(f"pinned {len(pins)} packages in {CONSTRAINTS.name}", file=sys.stderr)
    return 0


def run(*args: str) -> int:
    return subprocess.run(list(args), cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command not in {"demo", "test", "lint", "bench", "release-check", "bundle", "lock"}:
        print(__doc__)
        return 0 if command in {"help", "-h", "--help"} else 2
    ensure_venv()
    if command == "lock":
        return lock()
    py = str(PYTHON)
    if command == "demo":
        return run(py, "-m", "pixverse_mcp", "demo", *rest)
    if command == "test":
        return run(py, "-m", "pytest", *rest)
    if command == "bench":
        return run(py, "bench/run.py", *rest)
    if command == "release-check":
        return run(py, "release/check.py", *rest)
    if command == "bundle":
        return run(py, "release/bundle.py", *rest)
    for check in (
        [py, "-m", "ruff", "check", "."],
        [py, "-m", "ruff", "format", "--check", "."],
        [py, "-m", "mypy"],
    ):
        if code := run(*check):
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
