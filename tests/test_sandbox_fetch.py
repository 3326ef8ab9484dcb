"""``file_url`` uploads: the sandbox's own files only, and nothing that could scan the machine."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from pixverse_mcp.samples import make_clip
from pixverse_mcp.sandbox import SandboxConfig, SandboxServer
from pixverse_mcp.sandbox.fetch import own_file_name

KEY = "sk-fetch"
NAME = "0123456789abcdef.mp4"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    # A path prefix: the API lives under it, the served files do not.
    with SandboxServer(SandboxConfig(api_key=KEY, path_prefix="/pv")) as sandbox:
        yield sandbox


@pytest.fixture
def client(server: SandboxServer) -> Iterator[httpx2.Client]:
    server.state.reset()
    with httpx2.Client(base_url=server.base_url + "/openapi/v2/", timeout=10.0) as http:
        yield http


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("fetch") / "clip.mp4", seconds=0.4, width=64, height=48, fps=5)


def upload(client: httpx2.Client, **form: Any) -> httpx2.Response:
    headers = {"API-KEY": KEY, "Ai-trace-id": str(uuid.uuid4())}
    return client.post("media/upload", headers=headers, **form)


def upload_url(client: httpx2.Client, url: str) -> tuple[int, bytes]:
    reply = upload(client, data={"file_url": url})
    return reply.status_code, reply.content


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the rule, as a pure function ----------------------------------------------------------------


OWN = "http://127.0.0.1:8787"


@pytest.mark.parametrize(
    "url",
    [
        f"http://127.0.0.1:8787/files/{NAME}",
        f"HTTP://127.0.0.1:8787/files/{NAME}?download=1#top",
    ],
)
def test_own_file_urls(url: str) -> None:
    assert own_file_name(url, OWN) == NAME


def test_default_ports_compare_equal() -> None:
    assert own_file_name(f"http://sandbox.test/files/{NAME}", "http://sandbox.test:80") == NAME
    assert own_file_name(f"https://sandbox.test:443/files/{NAME}", "https://sandbox.test") == NAME
    assert own_file_name(f"http://sandbox.test:443/files/{NAME}", "https://sandbox.test") is None


@pytest.mark.parametrize(
    "url",
    [
        f"http://127.0.0.1:8788/files/{NAME}",  # another port
        f"https://127.0.0.1:8787/files/{NAME}",  # another scheme
        f"ftp://127.0.0.1:8787/files/{NAME}",
        f"http://localhost:8787/files/{NAME}",  # the same machine, spelled otherwise
        f"http://2130706433:8787/files/{NAME}",
        f"http://0x7f.1:8787/files/{NAME}",
        f"http://0177.0.0.1:8787/files/{NAME}",
        f"http://127.1:8787/files/{NAME}",
        f"http://[::1]:8787/files/{NAME}",
        f"http://[::ffff:127.0.0.1]:8787/files/{NAME}",
        f"http://user:pw@127.0.0.1:8787/files/{NAME}",
        f"http://127.0.0.1:99999/files/{NAME}",  # not a port
        f"http://127.0.0.1:8787/pv/files/{NAME}",
        f"http://127.0.0.1:8787/files/sub/{NAME}",
        "http://127.0.0.1:8787/files/",
        "http://127.0.0.1:8787/",
        "not a url",
    ],
)
def test_other_urls_are_not_own_files(url: str) -> None:
    assert own_file_name(url, OWN) is None


# -- over HTTP -----------------------------------------------------------------------------------


def test_own_file_url_is_taken_from_the_data_folder(
    server: SandboxServer, client: httpx2.Client, clip: Path
) -> None:
    first = upload(client, files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")}).json()["Resp"]
    assert first["url"].startswith(f"{server.root_url}/files/")  # no prefix: files are at the root
    again = upload(client, data={"file_url": first["url"]}).json()
    assert again["ErrCode"] == 0 and again["Resp"]["media_type"] == "video"
    assert again["Resp"]["media_id"] != first["media_id"]
    assert httpx2.get(again["Resp"]["url"]).content == clip.read_bytes()


def test_open_and_closed_loopback_ports_get_the_same_reply(
    server: SandboxServer, client: httpx2.Client, clip: Path
) -> None:
    existing = upload(client, files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")}).json()["Resp"]
    name = existing["url"].rsplit("/", 1)[1]
    with socket.create_server(("127.0.0.1", 0)) as listener:
        open_port, closed_port = listener.getsockname()[1], free_port()
        sandbox_port = server.port
        urls = [
            f"http://127.0.0.1:{open_port}/files/{name}",
            f"http://127.0.0.1:{closed_port}/files/{name}",
            f"http://127.0.0.1:{open_port}/",
            # The sandbox's own port and file, through other spellings of the loopback address.
            f"http://localhost:{sandbox_port}/files/{name}",
            f"http://2130706433:{sandbox_port}/files/{name}",
            f"http://0x7f.1:{sandbox_port}/files/{name}",
            f"http://[::1]:{sandbox_port}/files/{name}",
            f"http://[::ffff:127.0.0.1]:{sandbox_port}/files/{name}",
            f"http://127.0.0.1:{sandbox_port}/files/{NAME}",  # own origin, no such file
            "http://10.0.0.1/clip.mp4",
            "http://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0/clip.mp4",
            "http://224.0.0.1/clip.mp4",
            "https://example.com/clip.mp4",
        ]
        replies = {url: upload_url(client, url) for url in urls}
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected to the listening port
    status, content = replies[urls[0]]
    assert (
        status == 400
        and content == b'{"ErrCode": 400017, "ErrMsg": "file_url could not be fetched", "Resp": {}}'
    )
    assert {url: reply for url, reply in replies.items() if reply != (status, content)} == {}
    assert len(server.state.media) == 1  # refusals store nothing


def test_host_names_are_never_resolved(client: httpx2.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up: list[Any] = []
    real = socket.getaddrinfo

    def recording(host: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    status, content = upload_url(client, f"http://sandbox-probe.invalid/files/{NAME}")
    assert status == 400 and b"file_url could not be fetched" in content
    assert not [host for host in looked_up if "sandbox-probe" in str(host)]
