"""The sandbox's reply-shape options: the documented shapes by default, live ones on demand."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from pixverse_mcp.samples import make_clip
from pixverse_mcp.sandbox import STYLES, Fault, SandboxConfig, SandboxServer
from pixverse_mcp.sandbox.endpoints import ENDPOINT_NAMES, ENDPOINTS

KEY = "sk-shapes"
BASE_CONFIG = SandboxConfig(api_key=KEY, job_seconds=0, max_concurrent_jobs=20, list_max_page_size=20)


def headers() -> dict[str, str]:
    return {"API-KEY": KEY, "Ai-trace-id": str(uuid.uuid4())}


def body(response: httpx2.Response) -> dict[str, Any]:
    data: dict[str, Any] = response.json()
    return data


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(BASE_CONFIG) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("shapes") / "clip.mp4", seconds=0.4, width=64, height=48, fps=5)


@pytest.fixture
def client(server: SandboxServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=server.base_url + "/openapi/v2/", timeout=10.0) as http:
        yield http


def configure(server: SandboxServer, **changes: Any) -> SandboxServer:
    """The running sandbox with these options (the handlers read the config on every request)."""
    server.state.config = BASE_CONFIG.model_copy(update=changes)
    server.state.reset()
    return server


def upload(client: httpx2.Client, clip: Path) -> dict[str, Any]:
    files = {"file": (clip.name, clip.read_bytes(), "video/mp4")}
    return body(client.post("media/upload", headers=headers(), files=files))


def start_job(client: httpx2.Client, clip: Path, **extra: Any) -> dict[str, Any]:
    media_id = upload(client, clip)["Resp"]["media_id"]
    return body(
        client.post("video/restyle/generate", headers=headers(), json={"video_media_id": media_id, **extra})
    )


def result(client: httpx2.Client, video_id: int) -> dict[str, Any]:
    resp: dict[str, Any] = body(client.get(f"video/result/{video_id}", headers=headers()))["Resp"]
    return resp


# -- style list ------------------------------------------------------------------------------------


def test_documented_list_shape_by_default(server: SandboxServer, client: httpx2.Client) -> None:
    configure(server)
    resp = body(client.get("video/restyle/list", headers=headers()))["Resp"]
    assert set(resp) == {"total", "data"} and resp["total"] == len(STYLES)
    assert [item["restyle_id"] for item in resp["data"]] == [style.restyle_id for style in STYLES]
    for item, style in zip(resp["data"], STYLES, strict=True):
        assert set(item) == {"restyle_id", "name", "thumbnail"}  # no prompt, no description
        assert item["name"] == style.name
    thumbnail = client.get(resp["data"][3]["thumbnail"])
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert thumbnail.content[:3] == b"\xff\xd8\xff" and thumbnail.content[-2:] == b"\xff\xd9"


def test_web_list_shape(server: SandboxServer, client: httpx2.Client, clip: Path) -> None:
    configure(server, list_shape="web")
    items = body(client.get("video/restyle/list", headers=headers()))["Resp"]["data"]
    assert len(items) == len(STYLES)
    for item, style in zip(items, STYLES, strict=True):
        assert set(item) == {"restyle_id", "display_name", "thumbnail_url", "restyle_prompt", "marker"}
        assert item["display_name"] == style.name and item["restyle_prompt"] == style.prompt
        assert item["marker"] in ("", "new")
    assert sum(item["marker"] == "new" for item in items) == 2
    assert client.get(items[0]["thumbnail_url"]).content[:2] == b"\xff\xd8"
    # A listed prompt, sent back as a free prompt, renders with that style's filter chain.
    thermal = next(item for item in items if item["display_name"] == "Thermal Vision")
    video_id = start_job(client, clip, restyle_prompt=thermal["restyle_prompt"])["Resp"]["video_id"]
    assert result(client, video_id)["style"] == "Thermal Vision"


# -- job status replies --------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "expected"), [("present", "video id"), ("absent", None), ("zero", 0)])
def test_result_id_options(
    server: SandboxServer, client: httpx2.Client, clip: Path, option: str, expected: Any
) -> None:
    configure(server, result_id=option)
    video_id = start_job(client, clip, restyle_id=1001)["Resp"]["video_id"]
    resp = result(client, video_id)
    if expected is None:
        assert "id" not in resp and resp["status"] in (1, 5)
    else:
        assert resp["id"] == (video_id if expected == "video id" else expected)


def wait_rendered(server: SandboxServer, video_id: int) -> None:
    deadline = time.monotonic() + 15
    while not server.state.jobs[video_id].render_done:
        assert time.monotonic() < deadline, "the render did not finish"
        time.sleep(0.02)


def test_queued_statuses_go_2_3_5_then_1(server: SandboxServer, client: httpx2.Client, clip: Path) -> None:
    configure(server, queued_statuses=True, job_seconds=30)
    video_id = start_job(client, clip, restyle_id=1002)["Resp"]["video_id"]
    wait_rendered(server, video_id)
    job = server.state.jobs[video_id]
    seen = []
    # The job's age is set, not waited for: each third of job_seconds in turn, then past the end.
    for age in (1, 11, 21, 31):
        job.started = time.monotonic() - age
        seen.append(result(client, video_id)["status"])
    assert seen == [2, 3, 5, 1]


def test_queued_and_in_progress_jobs_count_against_the_limit(
    server: SandboxServer, client: httpx2.Client, clip: Path
) -> None:
    configure(server, queued_statuses=True, job_seconds=30, max_concurrent_jobs=1)
    first = start_job(client, clip, restyle_id=1001)["Resp"]["video_id"]
    assert result(client, first)["status"] == 2
    assert start_job(client, clip, restyle_id=1001)["ErrCode"] == 500044
    server.state.jobs[first].started = time.monotonic() - 11
    assert result(client, first)["status"] == 3
    assert start_job(client, clip, restyle_id=1001)["ErrCode"] == 500044


def test_default_statuses_stay_5_then_1(server: SandboxServer, client: httpx2.Client, clip: Path) -> None:
    configure(server, job_seconds=30)
    video_id = start_job(client, clip, restyle_id=1003)["Resp"]["video_id"]
    wait_rendered(server, video_id)
    job = server.state.jobs[video_id]
    job.started = time.monotonic() - 1
    assert result(client, video_id)["status"] == 5
    job.started = time.monotonic() - 31
    assert result(client, video_id)["status"] == 1


# -- generate and upload replies -----------------------------------------------------------------


@pytest.mark.parametrize("key", ["credits", "credit"])
def test_generate_credit_key(server: SandboxServer, client: httpx2.Client, clip: Path, key: str) -> None:
    configure(server, generate_credit_key=key)
    resp = start_job(client, clip, restyle_id=1001)["Resp"]
    assert set(resp) == {"video_id", key} and resp[key] == BASE_CONFIG.restyle_credits


def test_upload_moderation_refusal_500052(server: SandboxServer, client: httpx2.Client, clip: Path) -> None:
    configure(server)
    server.state.add_fault(endpoint="upload", kind="err_code", code=500052)
    refused = upload(client, clip)
    assert refused["ErrCode"] == 500052 and refused["ErrMsg"] == "Uploaded media refused by moderation"
    assert not server.state.media
    assert upload(client, clip)["ErrCode"] == 0  # the rule is used up


# -- the endpoint table ----------------------------------------------------------------------------


def test_every_endpoint_in_the_table_is_routed_and_counted(server: SandboxServer) -> None:
    configure(server)
    for endpoint in ENDPOINTS:
        path = endpoint.path.replace("{video_id}", "1")
        httpx2.request(endpoint.method, f"{server.base_url}/openapi/v2{path}", headers=headers())
    assert server.state.stats()["requests"] == {name: 1 for name in ENDPOINT_NAMES}


def test_fault_endpoints_are_the_table_names(server: SandboxServer) -> None:
    for name in (*ENDPOINT_NAMES, "*"):
        assert Fault(endpoint=name, kind="html").endpoint == name
    refused = httpx2.post(f"{server.root_url}/_sandbox/faults", json={"endpoint": "status", "kind": "html"})
    assert refused.status_code == 400 and "upload, generate, list, result, balance" in refused.json()["error"]
