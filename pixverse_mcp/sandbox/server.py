"""Running the sandbox: in a background thread (tests, ``--sandbox``) or in the foreground."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn

from .app import create_app
from .state import SandboxConfig, SandboxState

logger = logging.getLogger(__name__)


def _uvicorn_config(app: object, log_level: str, access_log: bool) -> uvicorn.Config:
    # log_config=None: never reconfigure the host process's logging; uvicorn's loggers
    # propagate to the root logger, which writes to stderr.
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        log_config=None,
        log_level=log_level,
        access_log=access_log,
        lifespan="off",
        loop="asyncio",
        http="h11",  # _DroppedReply relies on the h11 cycle's transport
        ws="none",
        timeout_graceful_shutdown=1,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns on TCP_NODELAY only for sockets that name it, and without
    # it every reply on a kept-alive connection waits ~40 ms for Nagle's algorithm.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class SandboxServer:
    """A sandbox on loopback, served by uvicorn in a daemon thread with its own event loop.

    ``with SandboxServer(SandboxConfig(job_seconds=0.2)) as sandbox:`` then point a client at
    ``sandbox.base_url`` with ``sandbox.config.api_key``; ``sandbox.state`` is the live state.
    """

    def __init__(self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SandboxConfig()
        self.host = host
        self.port = port
        self.state = SandboxState(self.config)
        self.app = create_app(self.config, self.state)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        """``http://host:port`` (static files and /_sandbox/ control routes live here)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The value a client uses as PIXVERSE_BASE_URL (root URL plus the path prefix)."""
        return self.root_url + self.config.path_prefix

    def start(self, timeout: float = 10.0) -> Self:
        """Bind (a free port when port=0), start serving, return once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("the sandbox is already running")
        if self.state.closing.is_set():
            raise RuntimeError("a stopped sandbox cannot be restarted; create a new SandboxServer")
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(_uvicorn_config(self.app, "warning", access_log=False))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="pixverse-sandbox", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sandbox did not start on {self.root_url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Shut down within about a second: open requests (a hanging fault) are not waited for."""
        self.state.closing.set()  # hanging fault replies end first, so shutdown finds no open request
        if self._server is not None:
            time.sleep(0.06)
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=3.0)
        self._server = self._thread = None
        self.state.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_forever(config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 8787) -> None:
    """Serve the sandbox in the foreground until Ctrl-C (``pixverse-mcp sandbox --port P``)."""
    config = config or SandboxConfig()
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    state = SandboxState(config)
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    logger.info(
        "PixVerse sandbox on http://%s:%d%s (data in %s)", shown, bound, config.path_prefix, state.data_dir
    )
    server = uvicorn.Server(_uvicorn_config(create_app(config, state), "info", access_log=True))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled; the shutdown is done
        pass
    finally:
        state.close()
