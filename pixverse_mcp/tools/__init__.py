"""The MCP tools by family; each module's `install(server, runtime)` registers its tools."""
