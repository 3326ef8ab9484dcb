"""Check that a release would publish cleanly: build the sdist and wheel, check them, list them.

    python3 dev.py release-check [--keep DIR]

Builds both into a temporary folder (or DIR) with `python -m build`, fails on any warning the build
prints, runs `twine check --strict`, and checks that the wheel holds the viewer's HTML files, the
icons, the license and both commands. Nothing is uploaded.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEP_TIMEOUT = 600.0
WHEEL_MUST_HOLD = (
    "pixverse_mcp/apps/viewer.html",
    "pixverse_mcp/apps/host_page.html",
    "pixverse_mcp/assets/icon.png",
    "pixverse_mcp/assets/icon-48.png",
    "pixverse_mcp/assets/icon-512.png",
    "pixverse_mcp/py.typed",
)
WARNING = re.compile(r"warn", re.IGNORECASE)


def _run(*command: str, env: dict[str, str] | None = None) -> str:
    print("+", " ".join(command), file=sys.stderr)
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False
    )
    output = done.stdout + done.stderr
    if done.returncode:
        print(output, file=sys.stderr)
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}")
    return output


def build(out: Path) -> list[str]:
    """Build the sdist and wheel into `out`; returns the warnings the build printed."""
    # The byte-compiling switch only makes setuptools say it skips a step: leave it out.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    output = _run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), ".", env=env)
    return [line for line in output.splitlines() if WARNING.search(line)]


def wheel_problems(wheel: Path) -> list[str]:
    """What the wheel lacks: data files, the license, the two commands."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next((archive.read(n).decode() for n in names if n.endswith("entry_points.txt")), "")
    problems = [f"the wheel lacks {name}" for name in WHEEL_MUST_HOLD if name not in names]
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        problems.append("the wheel lacks the LICENSE file")
    problems += [
        f"the wheel has no {command} command"
        for command in ("pixverse-mcp", "pixverse-restyle-mcp")
        if f"{command} = pixverse_mcp.cli:main" not in entry_points
    ]
    return problems


def check(out: Path) -> int:
    warnings = build(out)
    artifacts = sorted(out.iterdir())
    print(_run(sys.executable, "-m", "twine", "check", "--strict", *map(str, artifacts)).strip())
    wheel = next(path for path in artifacts if path.suffix == ".whl")
    with zipfile.ZipFile(wheel) as archive:
        data = [n for n in archive.namelist() if not n.endswith(".py")]
    print(f"\n{wheel.name} holds, besides the Python modules:")
    print("\n".join(f"  {name}" for name in sorted(data)))
    problems = [f"build warning: {line.strip()}" for line in warnings] + wheel_problems(wheel)
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    if not problems:
        print(f"\nrelease check passed: {', '.join(p.name for p in artifacts)}")
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dev.py release-check", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="build into this folder and keep it")
    args = parser.parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return check(args.keep.resolve())
    with tempfile.TemporaryDirectory(prefix="pixverse-release-") as scratch:
        return check(Path(scratch))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
