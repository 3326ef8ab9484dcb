"""The names this project is published and found under, in one place.

`PROJECT_URL` is where the source lives; the package metadata (pyproject.toml), the registry entry
(server.json) and the Claude Desktop bundle (manifest.json) carry the same address, and a test keeps
them in step.
"""

from __future__ import annotations

PACKAGE = "pixverse-restyle-mcp"
"""The name on PyPI: `uvx pixverse-restyle-mcp` runs the server."""

COMMAND = "pixverse-mcp"
"""The command an install puts on PATH (the package name is a second, equal command)."""

REGISTRY_NAME = "io.github.pixverse-restyle-mcp/pixverse-restyle-mcp"
"""The server's name in the MCP Registry; the README carries it as `mcp-name:` for PyPI's check."""

PROJECT_URL = "https://github.com/pixverse-restyle-mcp/pixverse-restyle-mcp"
"""Where the source, the issues and the documentation live."""

SERVER_KEY = "pixverse"
"""The key assistants' config files list this server under."""
