"""Restyle videos with PixVerse from any MCP client."""

__version__ = "0.1.0"
