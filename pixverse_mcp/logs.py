"""Logging set-up: stderr only, one format, and library loggers that cannot print request headers."""

from __future__ import annotations

import logging
import sys

# HTTP libraries log request details at DEBUG; the API key travels in a header.
QUIET_LIBRARIES = ("httpx2", "httpcore2", "httpx", "httpcore", "h11", "h2", "hpack")


def configure(level: str) -> None:
    """Log to stderr (stdout carries the stdio protocol) at `level`; HTTP libraries at WARNING at least."""
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    quiet_libraries()


def quiet_libraries() -> None:
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
