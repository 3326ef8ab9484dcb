"""MCP Apps of this server: the Restyle viewer (an HTML view) and the app-only tools it calls."""

from pixverse_mcp.apps.viewer import VIEW_URI, ViewerApps

__all__ = ["VIEW_URI", "ViewerApps"]
