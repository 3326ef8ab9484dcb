"""An offline, PixVerse-compatible HTTP API that really restyles videos (with PyAV).

It is the other side of the wire: it imports nothing from the rest of ``pixverse_mcp``, so a
client that misreads the protocol fails against it. PyAV is imported only when a video is
probed or rendered, so importing this package is fast.

    from pixverse_mcp.sandbox import SandboxConfig, SandboxServer
    with SandboxServer(SandboxConfig(job_seconds=0.2)) as sandbox:
        ...  # PIXVERSE_BASE_URL=sandbox.base_url, PIXVERSE_API_KEY=sandbox.config.api_key
"""

from .app import create_app
from .catalog import STYLES, Style
from .faults import Fault
from .render import write_test_clip
from .server import SandboxServer, serve_forever
from .state import SandboxConfig, SandboxState

__all__ = [
    "STYLES",
    "Fault",
    "SandboxConfig",
    "SandboxServer",
    "SandboxState",
    "Style",
    "create_app",
    "serve_forever",
    "write_test_clip",
]
