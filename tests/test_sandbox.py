"""The sandbox speaks the PixVerse API as documented, over real HTTP on loopback."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx2
import pytest

from pixverse_mcp.sandbox import STYLES, SandboxConfig, SandboxServer

KEY = "sk-test-key"
PREFIX = "/proxy"
MAX_SEED = 2_147_483_647


# -- helpers -----------------------------------------------------------------------------------


def make_clip(
    path: Path,
    *,
    seconds: float = 1.0,
    size: tuple[int, int] = (160, 120),
    fps: int = 10,
    container: str | None = None,
) -> Path:
    """A small H.264 clip with a moving colour pattern, built from bytes (no numpy)."""
    width, height = size
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(max(1, round(seconds * fps))):
            frame = av.VideoFrame(width, height, "yuv420p")
            for number, plane in enumerate(frame.planes):
                row = bytes((x * (3 + number) + index * 8 + number * 80) % 256 for x in range(plane.width))
                plane.update(row.ljust(plane.line_size, b"\0") * plane.height)
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def make_audio_only(path: Path) -> Path:
    """One second of silent AAC in an mp4 container."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=8000)
        stream.layout = "mono"
        for index in range(8):
            frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
            frame.planes[0].update(bytes(frame.planes[0].buffer_size))
            frame.sample_rate, frame.pts = 8000, index * 1024
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def first_frame_rgb(path: Path) -> tuple[bytes, int, int]:
    """The first frame as packed RGB bytes (row padding removed), with its size."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).reformat(format="rgb24")
    plane, row = frame.planes[0], frame.width * 3
    data = bytes(plane)
    rows = (data[y * plane.line_size : y * plane.line_size + row] for y in range(frame.height))
    return b"".join(rows), frame.width, frame.height


def headers(trace_id: str | None = None, key: str | None = KEY) -> dict[str, str]:
    out = {"Ai-trace-id": trace_id or str(uuid.uuid4())}
    if key is not None:
        out["API-KEY"] = key
    return out


def body(response: httpx2.Response) -> dict[str, Any]:
    data: dict[str, Any] = response.json()
    return data


def upload(client: httpx2.Client, clip: Path, trace_id: str | None = None) -> httpx2.Response:
    files = {"file": (clip.name, clip.read_bytes(), "video/mp4")}
    return client.post("openapi/v2/media/upload", headers=headers(trace_id), files=files)


def generate(client: httpx2.Client, payload: dict[str, Any], trace_id: str | None = None) -> httpx2.Response:
    return client.post("openapi/v2/video/restyle/generate", headers=headers(trace_id), json=payload)


def result(client: httpx2.Client, video_id: int) -> dict[str, Any]:
    reply = body(client.get(f"openapi/v2/video/result/{video_id}", headers=headers()))
    assert reply["ErrCode"] == 0, reply
    resp: dict[str, Any] = reply["Resp"]
    return resp


def wait_done(client: httpx2.Client, video_id: int, timeout: float = 15.0) -> dict[str, Any]:
    """Poll until the job leaves status 5 (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        resp = result(client, video_id)
        if resp["status"] != 5 or time.monotonic() > deadline:
            return resp
        time.sleep(0.05)


def media_id(client: httpx2.Client, clip: Path) -> int:
    reply = body(upload(client, clip))
    assert reply["ErrCode"] == 0, reply
    value: int = reply["Resp"]["media_id"]
    return value


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    return {
        "ok": make_clip(root / "ok.mp4"),
        "mkv": make_clip(root / "ok.mkv", container="matroska"),
        "long17": make_clip(root / "long17.mp4", seconds=17, size=(64, 48), fps=2),
        "long31": make_clip(root / "long31.mp4", seconds=31, size=(32, 32), fps=1),
        "wide": make_clip(root / "wide.mp4", seconds=0.5, size=(1922, 16), fps=2),
        "audio": make_audio_only(root / "audio.m4a"),
    }


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    config = SandboxConfig(
        api_key=KEY, job_seconds=0.5, max_concurrent_jobs=50, credit_monthly=100_000, path_prefix=PREFIX
    )
    with SandboxServer(config) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(server: SandboxServer) -> SandboxServer:
    server.state.reset()
    return server


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[httpx2.Client]:
    # A trailing slash keeps the prefix when relative paths are joined.
    with httpx2.Client(base_url=sandbox.base_url + "/", timeout=10.0) as http:
        yield http


# -- shape of the package -------------------------------------------------------------------


def test_import_is_light_and_independent() -> None:
    code = (
        "import sys, pixverse_mcp.sandbox\n"
        "assert 'av' not in sys.modules, 'PyAV imported eagerly'\n"
        "other = [m for m in sys.modules if m.startswith('pixverse_mcp.')"
        " and not m.startswith('pixverse_mcp.sandbox')]\n"
        "assert not other, other\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_server_urls_keep_the_prefix(sandbox: SandboxServer) -> None:
    assert sandbox.base_url == sandbox.root_url + PREFIX
    assert sandbox.root_url.startswith("http://127.0.0.1:")
    # The API is only under the prefix.
    reply = httpx2.get(f"{sandbox.root_url}/openapi/v2/account/balance", headers=headers())
    assert reply.status_code == 404


# -- headers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["wrong", None])
def test_bad_or_missing_api_key_is_400012(
    client: httpx2.Client, sandbox: SandboxServer, key: str | None
) -> None:
    reply = client.get("openapi/v2/account/balance", headers=headers(key=key))
    assert reply.status_code == 401
    assert body(reply)["ErrCode"] == 400012
    assert sandbox.state.stats()["requests"]["balance"] == 1  # rejected requests are counted


def test_missing_trace_id_is_400011(client: httpx2.Client) -> None:
    reply = client.get("openapi/v2/account/balance", headers={"API-KEY": KEY})
    assert body(reply)["ErrCode"] == 400011


def test_api_keys_are_counted_never_echoed(client: httpx2.Client, sandbox: SandboxServer) -> None:
    client.get("openapi/v2/account/balance", headers=headers(key="sk-secret-one"))
    client.get("openapi/v2/account/balance", headers=headers())
    stats = client.get(f"{sandbox.root_url}/_sandbox/stats")
    assert stats.json()["api_keys_seen"] == 2
    assert "sk-secret-one" not in stats.text and KEY not in stats.text


# -- upload ------------------------------------------------------------------------------------


def test_upload_returns_big_id_and_a_served_url(client: httpx2.Client, clips: dict[str, Path]) -> None:
    reply = body(upload(client, clips["ok"]))
    assert reply["ErrCode"] == 0
    resp = reply["Resp"]
    assert resp["media_id"] > 2**53 and resp["media_type"] == "video"
    served = client.get(resp["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "video/mp4"
    assert served.content == clips["ok"].read_bytes()
    assert served.headers["content-length"] == str(len(served.content))


def test_upload_needs_exactly_one_of_file_and_file_url(client: httpx2.Client, clips: dict[str, Path]) -> None:
    both = client.post(
        "openapi/v2/media/upload",
        headers=headers(),
        files={"file": ("a.mp4", clips["ok"].read_bytes(), "video/mp4")},
        data={"file_url": "http://127.0.0.1/a.mp4"},
    )
    assert body(both)["ErrCode"] == 400017
    neither = client.post("openapi/v2/media/upload", headers=headers(), data={"other": "x"})
    assert body(neither)["ErrCode"] == 400011


def test_upload_file_url_only_from_loopback(client: httpx2.Client, clips: dict[str, Path]) -> None:
    served_url = body(upload(client, clips["ok"]))["Resp"]["url"]
    fetched = body(client.post("openapi/v2/media/upload", headers=headers(), data={"file_url": served_url}))
    assert fetched["ErrCode"] == 0 and fetched["Resp"]["media_type"] == "video"
    for url in ("https://example.com/clip.mp4", "http://10.1.2.3/clip.mp4", "ftp://127.0.0.1/clip.mp4"):
        reply = body(client.post("openapi/v2/media/upload", headers=headers(), data={"file_url": url}))
        assert reply["ErrCode"] == 400017
        assert "could not be fetched" in reply["ErrMsg"]


def test_upload_rejects_non_video_and_long_files(client: httpx2.Client, clips: dict[str, Path]) -> None:
    junk = client.post(
        "openapi/v2/media/upload",
        headers=headers(),
        files={"file": ("x.mp4", b"not a video" * 100, "video/mp4")},
    )
    assert body(junk)["ErrCode"] == 400017 and body(junk)["ErrMsg"] == "not a video resource"
    assert body(upload(client, clips["long31"]))["ErrCode"] == 400017


def test_audio_upload_is_accepted_but_cannot_be_restyled(
    client: httpx2.Client, clips: dict[str, Path]
) -> None:
    reply = body(upload(client, clips["audio"]))
    assert reply["ErrCode"] == 0 and reply["Resp"]["media_type"] == "audio"
    refused = body(generate(client, {"video_media_id": reply["Resp"]["media_id"], "restyle_id": 1001}))
    assert refused["ErrCode"] == 400017 and refused["ErrMsg"] == "not a video resource"


# -- generate: parameter rules -----------------------------------------------------------------


MID = "<media id>"  # replaced by a fresh upload's media_id


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"video_media_id": MID, "source_video_id": None, "restyle_id": 1001}, 400017),  # null is given
        ({"restyle_id": 1001}, 400017),  # no source at all
        ({"video_media_id": MID}, 400017),  # no style
        ({"video_media_id": MID, "restyle_id": 1001, "restyle_prompt": "noir"}, 400017),
        ({"video_media_id": MID, "restyle_id": 1001, "restyle_prompt": None}, 400017),  # null is given
        ({"video_media_id": MID, "restyle_prompt": "   "}, 400011),
        ({"video_media_id": MID, "restyle_prompt": "x" * 2049}, 400018),
        ({"video_media_id": MID, "restyle_prompt": 42}, 400013),
        ({"video_media_id": MID, "restyle_id": 1001, "seed": -1}, 400013),
        ({"video_media_id": MID, "restyle_id": 1001, "seed": MAX_SEED + 1}, 400013),
        ({"video_media_id": MID, "restyle_id": 1001, "seed": "7"}, 400013),
        ({"video_media_id": MID, "restyle_id": 1001, "seed": 1.5}, 400013),
        ({"video_media_id": MID, "restyle_id": 1001, "seed": True}, 400013),
        ({"video_media_id": MID, "restyle_id": 999}, 400017),  # unknown style
        ({"video_media_id": MID, "restyle_id": "abc"}, 400013),
        ({"video_media_id": 1.5, "restyle_id": 1001}, 400013),
        ({"video_media_id": None, "restyle_id": 1001}, 400011),
    ],
)
def test_generate_parameter_rules(
    client: httpx2.Client, sandbox: SandboxServer, clips: dict[str, Path], payload: dict[str, Any], code: int
) -> None:
    mid = media_id(client, clips["ok"])
    reply = body(generate(client, {key: mid if value == MID else value for key, value in payload.items()}))
    assert reply["ErrCode"] == code, reply
    assert sandbox.state.stats()["jobs_created"] == 0


def test_either_style_message(client: httpx2.Client, clips: dict[str, Path]) -> None:
    reply = body(generate(client, {"video_media_id": media_id(client, clips["ok"])}))
    assert reply["ErrMsg"] == "either restyle_id or restyle_prompt must be provided"


@pytest.mark.parametrize(
    "extra",
    [
        {"restyle_prompt": "x" * 2048},
        {"restyle_id": 1002, "seed": MAX_SEED},
        {"restyle_id": 1002, "seed": 0},
        {"restyle_prompt": "a gloomy black and white detective scene"},
    ],
)
def test_generate_accepts_boundary_values(
    client: httpx2.Client, clips: dict[str, Path], extra: dict[str, Any]
) -> None:
    reply = body(generate(client, {"video_media_id": media_id(client, clips["ok"]), **extra}))
    assert reply["ErrCode"] == 0, reply
    assert reply["Resp"]["video_id"] > 2**53 and reply["Resp"]["credits"] == 30


def test_ids_may_be_digit_strings(client: httpx2.Client, clips: dict[str, Path]) -> None:
    mid = media_id(client, clips["ok"])
    reply = body(generate(client, {"video_media_id": str(mid), "restyle_id": "1003"}))
    assert reply["ErrCode"] == 0, reply


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"video_media_id": 2**53 + 1}, "no matching video_media_id, please re-upload"),
        ({"source_video_id": 2**53 + 1}, "no matching source_video_id"),
    ],
)
def test_unknown_sources(client: httpx2.Client, payload: dict[str, Any], message: str) -> None:
    reply = body(generate(client, {**payload, "restyle_id": 1001}))
    assert reply["ErrCode"] == 400017 and reply["ErrMsg"].startswith(message)


@pytest.mark.parametrize(("clip", "reason"), [("mkv", "mp4 or mov"), ("long17", "16 s"), ("wide", "1920")])
def test_restyle_limits(client: httpx2.Client, clips: dict[str, Path], clip: str, reason: str) -> None:
    mid = media_id(client, clips[clip])  # upload accepts it (webm/mkv, 30 s, any size) ...
    reply = body(generate(client, {"video_media_id": mid, "restyle_id": 1001}))
    assert reply["ErrCode"] == 400017 and reason in reply["ErrMsg"]  # ... restyle does not


# -- jobs ----------------------------------------------------------------------------------------


def test_job_goes_from_5_to_1_with_a_restyled_mp4(
    client: httpx2.Client, clips: dict[str, Path], tmp_path: Path
) -> None:
    mid = media_id(client, clips["ok"])
    reply = body(generate(client, {"video_media_id": mid, "restyle_id": 1001, "seed": 7}))
    video_id = reply["Resp"]["video_id"]
    early = result(client, video_id)
    assert early["status"] == 5 and early["url"] == "" and early["size"] == 0
    done = wait_done(client, video_id)
    assert done["status"] == 1 and done["id"] == video_id and done["seed"] == 7
    assert (done["outputWidth"], done["outputHeight"]) == (160, 120)
    download = client.get(done["url"])
    assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
    assert len(download.content) == done["size"]
    out = tmp_path / "out.mp4"
    out.write_bytes(download.content)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name in ("h264", "mpeg4")
        assert stream.average_rate == 10
        assert sum(1 for _ in container.decode(stream)) == 10
    before, w, h = first_frame_rgb(clips["ok"])
    after, w2, h2 = first_frame_rgb(out)
    assert (w, h) == (w2, h2)
    assert sum(abs(a - b) for a, b in zip(before, after, strict=True)) / len(before) > 10
    # A finished job can be the source of the next restyle.
    again = body(generate(client, {"source_video_id": video_id, "restyle_prompt": "pencil sketch"}))
    assert again["ErrCode"] == 0, again


def test_unfinished_job_is_not_a_source(client: httpx2.Client, clips: dict[str, Path]) -> None:
    video_id = body(generate(client, {"video_media_id": media_id(client, clips["ok"]), "restyle_id": 1001}))[
        "Resp"
    ]["video_id"]
    reply = body(generate(client, {"source_video_id": video_id, "restyle_id": 1002}))
    assert reply["ErrCode"] == 400017


def test_result_unknown_and_bad_ids(client: httpx2.Client) -> None:
    assert body(client.get(f"openapi/v2/video/result/{2**53 + 5}", headers=headers()))["ErrCode"] == 500008
    assert body(client.get("openapi/v2/video/result/abc", headers=headers()))["ErrCode"] == 400013


def test_trace_id_reuse_replays_without_a_new_job(
    client: httpx2.Client, sandbox: SandboxServer, clips: dict[str, Path]
) -> None:
    trace = str(uuid.uuid4())
    first_upload = upload(client, clips["ok"], trace)
    assert upload(client, clips["ok"], trace).content == first_upload.content
    mid = body(first_upload)["Resp"]["media_id"]
    gen_trace = str(uuid.uuid4())
    first = generate(client, {"video_media_id": mid, "restyle_id": 1001}, gen_trace)
    second = generate(client, {"video_media_id": mid, "restyle_id": 1004}, gen_trace)
    assert first.content == second.content
    stats = sandbox.state.stats()
    assert stats["jobs_created"] == 1 and stats["jobs_per_trace_id"] == {gen_trace: 1}
    assert stats["requests"]["generate"] == 2 and stats["trace_ids"]["generate"] == [gen_trace, gen_trace]
    assert len(sandbox.state.media) == 1
    balance = body(client.get("openapi/v2/account/balance", headers=headers()))["Resp"]
    assert balance["credit_monthly"] == 100_000 - 30


def test_concurrency_limit_is_500044(clips: dict[str, Path]) -> None:
    config = SandboxConfig(api_key=KEY, job_seconds=60, max_concurrent_jobs=2)
    with (
        SandboxServer(config) as sandbox,
        httpx2.Client(base_url=sandbox.base_url + "/", timeout=10) as client,
    ):
        mid = media_id(client, clips["ok"])
        codes = [
            body(generate(client, {"video_media_id": mid, "restyle_id": 1001}))["ErrCode"] for _ in range(3)
        ]
        assert codes == [0, 0, 500044]
        assert sandbox.state.stats()["jobs_created"] == 2
        assert (
            body(client.get("openapi/v2/account/balance", headers=headers()))["Resp"]["credit_monthly"] == 940
        )


def test_credits_monthly_first_then_package_then_500090(clips: dict[str, Path]) -> None:
    config = SandboxConfig(
        api_key=KEY, job_seconds=0, credit_monthly=40, credit_package=30, restyle_credits=30
    )
    with (
        SandboxServer(config) as sandbox,
        httpx2.Client(base_url=sandbox.base_url + "/", timeout=10) as client,
    ):
        mid = media_id(client, clips["ok"])
        balances = []
        for _ in range(3):
            code = body(generate(client, {"video_media_id": mid, "restyle_id": 1001}))["ErrCode"]
            resp = body(client.get("openapi/v2/account/balance", headers=headers()))["Resp"]
            balances.append((code, resp["credit_monthly"], resp["credit_package"]))
        assert balances == [(0, 10, 30), (0, 0, 10), (500090, 0, 10)]
        assert resp["account_id"] > 0


# -- style list and static files ----------------------------------------------------------------


def test_style_list_pages_under_the_prefix(client: httpx2.Client) -> None:
    seen: list[int] = []
    page = 1
    while True:
        params = {"page_num": page, "page_size": 20}
        resp = body(client.get("openapi/v2/video/restyle/list", params=params, headers=headers()))["Resp"]
        assert set(resp) == {"total", "data"} and resp["total"] == len(STYLES)
        assert len(resp["data"]) <= 6  # the sandbox's page size cap
        if not resp["data"]:
            break
        for item in resp["data"]:
            assert set(item) == {"restyle_id", "name", "thumbnail"}
            seen.append(item["restyle_id"])
        page += 1
    assert len(seen) == len(set(seen)) == len(STYLES) >= 8 and page == 3
    first = body(client.get("openapi/v2/video/restyle/list", headers=headers()))["Resp"]["data"][0]
    assert first["thumbnail"].endswith(f"/covers/{first['restyle_id']}.jpg")
    cover = client.get(first["thumbnail"])
    assert cover.headers["content-type"] == "image/jpeg" and cover.content[:2] == b"\xff\xd8"


@pytest.mark.parametrize("params", [{"page_num": 0}, {"page_size": "x"}, {"page_num": -1}])
def test_style_list_bad_page_values(client: httpx2.Client, params: dict[str, Any]) -> None:
    reply = client.get("openapi/v2/video/restyle/list", params=params, headers=headers())
    assert body(reply)["ErrCode"] == 400013


def test_static_routes_reject_unknown_names(sandbox: SandboxServer) -> None:
    for path in ("/files/../../etc/passwd", "/files/0000000000000000.mp4", "/covers/1.jpg"):
        assert httpx2.get(sandbox.root_url + path).status_code == 404


# -- faults --------------------------------------------------------------------------------------


def add_fault(sandbox: SandboxServer, **rule: Any) -> None:
    """Faults go through the HTTP control route, as another process would send them."""
    reply = httpx2.post(f"{sandbox.root_url}/_sandbox/faults", json=rule)
    assert reply.status_code == 200, reply.text


def test_fault_html(client: httpx2.Client, sandbox: SandboxServer) -> None:
    add_fault(sandbox, endpoint="balance", kind="html")
    add_fault(sandbox, endpoint="balance", kind="html", http_status=503)
    first = client.get("openapi/v2/account/balance", headers=headers())
    second = client.get("openapi/v2/account/balance", headers=headers())
    assert first.status_code == 502 and first.headers["content-type"].startswith("text/html")
    assert second.status_code == 503 and "<html>" in second.text
    assert body(client.get("openapi/v2/account/balance", headers=headers()))["ErrCode"] == 0  # used up


def test_fault_err_code_with_retry_after(client: httpx2.Client, sandbox: SandboxServer) -> None:
    add_fault(sandbox, endpoint="*", kind="err_code", code=500069, http_status=503, retry_after=2, count=2)
    for _ in range(2):
        reply = client.get("openapi/v2/video/restyle/list", headers=headers())
        assert reply.status_code == 503 and reply.headers["retry-after"] == "2"
        assert body(reply)["ErrCode"] == 500069
    assert body(client.get("openapi/v2/video/restyle/list", headers=headers()))["ErrCode"] == 0


def test_fault_lowercase(client: httpx2.Client, sandbox: SandboxServer) -> None:
    add_fault(sandbox, endpoint="balance", kind="lowercase")
    reply = body(client.get("openapi/v2/account/balance", headers=headers()))
    assert set(reply) == {"err_code", "err_msg", "resp"} and reply["err_code"] == 0
    assert reply["resp"]["credit_package"] == 500


def test_fault_malformed(client: httpx2.Client, sandbox: SandboxServer) -> None:
    add_fault(sandbox, endpoint="list", kind="malformed")
    reply = client.get("openapi/v2/video/restyle/list", headers=headers())
    assert reply.status_code == 200
    with pytest.raises(ValueError):
        reply.json()


def test_fault_drop_is_a_connection_error(client: httpx2.Client, sandbox: SandboxServer) -> None:
    add_fault(sandbox, endpoint="list", kind="drop")
    with pytest.raises(httpx2.TransportError):
        client.get("openapi/v2/video/restyle/list", headers=headers())
    assert body(client.get("openapi/v2/video/restyle/list", headers=headers()))["ErrCode"] == 0


def test_fault_hang_before(client: httpx2.Client, sandbox: SandboxServer) -> None:
    add_fault(sandbox, endpoint="balance", kind="hang", seconds=1.0)
    with pytest.raises(httpx2.TimeoutException):
        client.get("openapi/v2/account/balance", headers=headers(), timeout=0.3)
    assert body(client.get("openapi/v2/account/balance", headers=headers()))["ErrCode"] == 0


@pytest.mark.parametrize("kind", ["drop", "hang", "html", "err_code", "malformed"])
def test_fault_after_generate_creates_the_job_and_a_retry_replays_it(
    client: httpx2.Client, sandbox: SandboxServer, clips: dict[str, Path], kind: str
) -> None:
    mid = media_id(client, clips["ok"])
    add_fault(sandbox, endpoint="generate", kind=kind, when="after", seconds=2.0)
    trace = str(uuid.uuid4())
    payload = {"video_media_id": mid, "restyle_id": 1001}
    try:
        lost = client.post(
            "openapi/v2/video/restyle/generate", headers=headers(trace), json=payload, timeout=0.5
        )
    except httpx2.TransportError:  # drop: connection closed; hang: read timeout
        assert kind in ("drop", "hang")
    else:
        assert kind in ("html", "err_code", "malformed")
        assert lost.status_code == 502 or b'"ErrCode": 0, "ErrMsg"' not in lost.content
    # PixVerse created the job (and took the credits); only the reply was lost.
    assert sandbox.state.stats()["jobs_created"] == 1
    retry = body(generate(client, payload, trace))
    assert retry["ErrCode"] == 0
    assert retry["Resp"]["video_id"] in sandbox.state.jobs
    stats = sandbox.state.stats()
    assert stats["jobs_created"] == 1 and stats["jobs_per_trace_id"][trace] == 1
    assert stats["credit_monthly"] == 100_000 - 30


def test_fault_lowercase_after_generate(
    client: httpx2.Client, sandbox: SandboxServer, clips: dict[str, Path]
) -> None:
    mid = media_id(client, clips["ok"])
    sandbox.state.add_fault(endpoint="generate", kind="lowercase", when="after")  # in-process control
    reply = body(generate(client, {"video_media_id": mid, "restyle_id": 1001}))
    assert reply["err_code"] == 0 and reply["resp"]["video_id"] in sandbox.state.jobs


def test_fault_before_generate_creates_nothing(
    client: httpx2.Client, sandbox: SandboxServer, clips: dict[str, Path]
) -> None:
    mid = media_id(client, clips["ok"])
    add_fault(sandbox, endpoint="generate", kind="err_code", code=500044)
    trace = str(uuid.uuid4())
    assert body(generate(client, {"video_media_id": mid, "restyle_id": 1001}, trace))["ErrCode"] == 500044
    assert sandbox.state.stats()["jobs_created"] == 0
    assert body(generate(client, {"video_media_id": mid, "restyle_id": 1001}, trace))["ErrCode"] == 0


@pytest.mark.parametrize("outcome", [6, 7, 8])
def test_fault_job_outcome(
    client: httpx2.Client, sandbox: SandboxServer, clips: dict[str, Path], outcome: int
) -> None:
    mid = media_id(client, clips["ok"])
    add_fault(sandbox, kind="job_outcome", code=outcome)
    video_id = body(generate(client, {"video_media_id": mid, "restyle_id": 1001}))["Resp"]["video_id"]
    done = wait_done(client, video_id)
    assert done["status"] == outcome and done["url"] == ""
    monthly = body(client.get("openapi/v2/account/balance", headers=headers()))["Resp"]["credit_monthly"]
    assert monthly == (100_000 if outcome == 7 else 100_000 - 30)  # moderation is refunded
    # The rule is used up: the next job renders normally.
    next_id = body(generate(client, {"video_media_id": mid, "restyle_id": 1001}))["Resp"]["video_id"]
    assert wait_done(client, next_id)["status"] == 1


def test_fault_rules_are_validated_and_cleared(client: httpx2.Client, sandbox: SandboxServer) -> None:
    bad = httpx2.post(f"{sandbox.root_url}/_sandbox/faults", json={"kind": "explode"})
    assert bad.status_code == 400
    add_fault(sandbox, endpoint="balance", kind="html")
    sandbox.state.add_fault(kind="drop", endpoint="balance")
    assert sandbox.state.stats()["faults_pending"] == 2
    assert httpx2.delete(f"{sandbox.root_url}/_sandbox/faults").status_code == 200
    assert body(client.get("openapi/v2/account/balance", headers=headers()))["ErrCode"] == 0


# -- stats and reset -----------------------------------------------------------------------------


def test_stats_and_reset(client: httpx2.Client, sandbox: SandboxServer, clips: dict[str, Path]) -> None:
    mid = media_id(client, clips["ok"])
    generate(client, {"video_media_id": mid, "restyle_id": 1001})
    client.get("openapi/v2/video/restyle/list", headers=headers())
    add_fault(sandbox, endpoint="list", kind="html")
    stats = httpx2.get(f"{sandbox.root_url}/_sandbox/stats").json()
    assert stats["requests"] == {"upload": 1, "generate": 1, "list": 1, "result": 0, "balance": 0}
    assert stats["jobs_created"] == 1 and len(stats["trace_ids"]["upload"]) == 1
    assert httpx2.post(f"{sandbox.root_url}/_sandbox/reset").status_code == 200
    stats = httpx2.get(f"{sandbox.root_url}/_sandbox/stats").json()
    assert stats["requests"]["upload"] == 0 and stats["jobs_created"] == 0 and stats["faults_pending"] == 0
    assert body(client.get("openapi/v2/video/restyle/list", headers=headers()))["ErrCode"] == 0
    gone = body(generate(client, {"video_media_id": mid, "restyle_id": 1001}))
    assert gone["ErrCode"] == 400017


def test_stop_returns_while_a_request_hangs() -> None:
    sandbox = SandboxServer(SandboxConfig(api_key=KEY)).start()
    sandbox.state.add_fault(kind="hang", seconds=30)
    with pytest.raises(httpx2.TimeoutException):
        httpx2.get(f"{sandbox.base_url}/openapi/v2/account/balance", headers=headers(), timeout=0.2)
    sandbox.stop()
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"{sandbox.root_url}/_sandbox/stats", timeout=1)
