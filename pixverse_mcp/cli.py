"""Command line: `pixverse-mcp [serve] | sandbox | demo`. Flags win over the environment.

`pixverse-mcp --print-config [claude|cursor|vscode|claude-code]` prints the config that adds this
install to an assistant instead of serving.

`main()` only parses arguments and hands a Settings object to the part that runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from pixverse_mcp import __version__, logs
from pixverse_mcp.connect import CLIENTS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixverse-mcp",
        description="MCP server that restyles videos with PixVerse (stdio by default).",
    )
    parser.add_argument("--version", action="version", version=f"pixverse-mcp {__version__}")
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", help="run the MCP server (the default command)")
    _add_serve_flags(serve)

    sandbox = commands.add_parser("sandbox", help="run the offline PixVerse-compatible sandbox API alone")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8787)
    sandbox.add_argument("--job-seconds", type=float, default=3.0, help="how long a job stays 'generating'")
    sandbox.add_argument("--api-key", default=None, help="the key the sandbox accepts (default sk-sandbox)")
    sandbox.add_argument("--max-concurrent-jobs", type=int, default=3)

    demo = commands.add_parser(
        "demo", help="restyle a sample clip end to end on the sandbox, as an MCP client"
    )
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="where the results go")
    demo.add_argument("--style", default="sketch", help="a style name to look for in the catalog")
    demo.add_argument(
        "--viewer",
        action="store_true",
        help="also write viewer.html: the result in the viewer, for any browser",
    )
    return parser


def _add_serve_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sandbox", action="store_true", default=None, help="use the embedded offline sandbox"
    )
    parser.add_argument(
        "--transport", choices=["stdio", "streamable-http", "sse"], default="stdio", help="default: stdio"
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP transports: address to bind")
    parser.add_argument("--port", type=int, default=8000, help="HTTP transports: port")
    parser.add_argument(
        "--stateless", action="store_true", help="streamable HTTP without sessions (replicas)"
    )
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="allow a non-loopback bind without PIXVERSE_MCP_TOKEN",
    )
    parser.add_argument("--base-url", default=None, help="PixVerse API base URL (PIXVERSE_BASE_URL)")
    parser.add_argument("--output-dir", type=Path, default=None, help="where videos are saved")
    parser.add_argument(
        "--allowed-dir",
        action="extend",
        nargs="+",
        type=Path,
        default=None,
        metavar="DIR",
        help="folders local videos may be read from (one or more, repeatable; PIXVERSE_ALLOWED_DIRS)",
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument(
        "--print-config",
        nargs="?",
        const="claude",
        choices=CLIENTS,
        metavar="{" + ",".join(CLIENTS) + "}",
        help="print the config that adds this server to an assistant (default: claude), then exit; "
        "--sandbox, --allowed-dir and --output-dir go into it",
    )
    parser.add_argument(
        "--url", default=None, help="with --print-config: the hosted server's URL (https://HOST/mcp)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    # `pixverse-mcp` alone, or with serve flags only, means `serve`.
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in {"-h", "--help", "--version"}):
        args_list.insert(0, "serve")
    args = parser.parse_args(args_list)
    if args.command != "serve":
        # The sandbox and the demo are tools of their own; the server's level is in its Settings.
        logs.configure(getattr(args, "log_level", None) or "INFO")
    if args.command == "sandbox":
        from pixverse_mcp.sandbox import SandboxConfig, serve_forever

        config = SandboxConfig(
            job_seconds=args.job_seconds,
            max_concurrent_jobs=args.max_concurrent_jobs,
            **({"api_key": args.api_key} if args.api_key else {}),
        )
        serve_forever(config, args.host, args.port)
        return 0
    if args.command == "demo":
        from pixverse_mcp.demo import run_demo

        return run_demo(args.out, style=args.style, viewer=args.viewer)

    if args.print_config or args.url:
        return _print_config(args)

    from pixverse_mcp.config import Settings

    try:
        settings = Settings.from_env(
            base_url=args.base_url,
            sandbox=args.sandbox,
            output_dir=args.output_dir,
            allowed_dirs=tuple(args.allowed_dir) if args.allowed_dir else None,
            log_level=args.log_level.upper() if args.log_level else None,
        )
    except (ValidationError, ValueError) as exc:
        print(f"pixverse-mcp: invalid setting: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    from pixverse_mcp.transport import run

    return run(
        settings,
        transport=args.transport,
        host=args.host,
        port=args.port,
        stateless=args.stateless,
        allow_unauthenticated=args.allow_unauthenticated,
    )


def _print_config(args: argparse.Namespace) -> int:
    from pixverse_mcp.connect import for_this_install

    if args.url is not None and not args.url.startswith(("https://", "http://")):
        print(f"pixverse-mcp: --url must be the server's http(s) address, got {args.url!r}", file=sys.stderr)
        return 2
    print(
        for_this_install(
            args.print_config or "claude",
            sandbox=bool(args.sandbox),
            allowed_dirs=args.allowed_dir or (),
            output_dir=args.output_dir,
            url=args.url,
        )
    )
    return 0
