"""The floor for cold start: the smallest stdio MCP server this SDK allows, with one tool.

Runs on mcp 2.x (`MCPServer`) and on mcp 1.x (`FastMCP`), so each SDK generation has its own floor.
"""

from __future__ import annotations

try:
    from mcp.server import MCPServer
except ImportError:  # mcp < 2
    from mcp.server.fastmcp import FastMCP as MCPServer  # type: ignore[no-redef]

server = MCPServer("hello")


@server.tool()
def hello(name: str = "world") -> str:
    """Say hello."""
    return f"hello, {name}"


if __name__ == "__main__":
    server.run()
