"""The ``file_url`` rule: the sandbox takes only files it serves itself, and fetches nothing.

A real fetcher on the internet cannot reach the caller's loopback or private network, and the
sandbox has no internet. So a ``file_url`` either names one of the sandbox's own files (same
scheme, host and port as the request came in on, path ``/files/<name>``), which is read from the
data folder directly, or it is refused with one message, whatever the target. No socket is
opened and no name is resolved: a refusal can never tell an open port from a closed one.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

REFUSED: Final = "file_url could not be fetched"
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_FILES_PATH: Final = re.compile(r"/files/([^/]+)")


def own_file_name(url: str, own_root: str) -> str | None:
    """The ``<name>`` of ``url`` if it is ``<own_root>/files/<name>``, else None.

    Hosts are compared as written (case aside): ``localhost``, ``2130706433`` or ``[::1]`` are
    other hosts than ``127.0.0.1``, even when they would reach the same machine.
    """
    try:
        target, own = urlsplit(url), urlsplit(own_root)
        target_port, own_port = target.port, own.port  # ValueError for a port that is no port
    except ValueError:
        return None
    scheme = target.scheme.lower()
    if scheme not in DEFAULT_PORTS or target.username is not None or target.password is not None:
        return None
    if not target.hostname or target.hostname != own.hostname:
        return None
    if scheme != own.scheme.lower():
        return None
    if (target_port or DEFAULT_PORTS[scheme]) != (own_port or DEFAULT_PORTS.get(own.scheme.lower())):
        return None
    match = _FILES_PATH.fullmatch(target.path)
    return match.group(1) if match else None
