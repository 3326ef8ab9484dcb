"""The floor: the smallest MCP server this SDK allows, with one tool.

    python hello_server.py                              # stdio (cold start, tool-call overhead)
    python hello_server.py --http PORT [--stateless]    # streamable HTTP at /mcp (throughput)

Runs on mcp 2.x (`MCPServer`) and on mcp 1.x (`FastMCP`), so each SDK generation has its own
floor. Over HTTP it is served as `pixverse_mcp.transport` serves ours: the SDK's streamable HTTP
app at /mcp with streamed (SSE) replies and the loopback Host check, on uvicorn without access
logs.
"""

from __future__ import annotations

import sys

try:
    from mcp.server import MCPServer
except ImportError:  # mcp < 2
    from mcp.server.fastmcp import FastMCP as MCPServer  # type: ignore[no-redef]

server = MCPServer("hello")


@server.tool()
def hello(name: str = "world") -> str:
    """Say hello."""
    return f"hello, {name}"


def serve_http(port: int, *, stateless: bool) -> None:
    import uvicorn

    app = server.streamable_http_app(
        streamable_http_path="/mcp", json_response=False, stateless_http=stateless, host="127.0.0.1"
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, log_level="warning")


if __name__ == "__main__":
    # No argparse: the stdio floor's start-up must import nothing the hello tool does not need.
    if "--http" in sys.argv:
        serve_http(int(sys.argv[sys.argv.index("--http") + 1]), stateless="--stateless" in sys.argv)
    else:
        server.run()
