"""Where a local file may be read from: confinement, the open-once, error texts, safe names."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pixverse_mcp.errors import InputError
from pixverse_mcp.paths import ensure_inside, open_local_file, resolve_local_path, safe_filename
from pixverse_mcp.samples import make_clip


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder.resolve()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder.resolve()


def refused(raw: str, roots: list[Path]) -> InputError:
    """The InputError that open_local_file raises for ``raw``."""
    with pytest.raises(InputError) as info:
        open_local_file(raw, roots)
    assert info.value.argument == "path"
    return info.value


# --------------------------------------------------------------------------- path confinement


def test_symlink_out_of_root_is_refused(root: Path, outside: Path) -> None:
    target = make_clip(outside / "secret.mp4", seconds=0.5)
    (root / "link.mp4").symlink_to(target)
    message = str(refused("link.mp4", [root]))
    assert "outside the folders" in message
    assert str(root) in message
    assert str(outside) not in message  # where the link points is none of the caller's business
    assert "PIXVERSE_ALLOWED_DIRS" in message
    assert "Move" in message


def test_dotdot_escape_is_refused(root: Path, outside: Path) -> None:
    make_clip(outside / "clip.mp4", seconds=0.5)
    for raw in ("../outside/clip.mp4", f"{root}/../outside/clip.mp4", "sub/../../outside/clip.mp4"):
        assert "outside the folders" in str(refused(raw, [root]))


def test_relative_path_resolves_against_first_root(root: Path, outside: Path) -> None:
    (root / "sub").mkdir()
    inside_first = make_clip(root / "sub" / "a.mp4", seconds=0.5)
    inside_second = make_clip(outside / "b.mp4", seconds=0.5)
    assert resolve_local_path("sub/a.mp4", [root, outside]) == inside_first
    assert resolve_local_path(str(inside_second), [root, outside]) == inside_second
    with pytest.raises(InputError, match=r"no file at 'b\.mp4'"):
        open_local_file("b.mp4", [root, outside])  # relative: looked up in the first root only


def test_tilde_expands_to_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "Videos").mkdir(parents=True)
    clip = make_clip(home / "Videos" / "me.mp4", seconds=0.5)
    monkeypatch.setenv("HOME", str(home))
    assert resolve_local_path("~/Videos/me.mp4", [Path("~")]) == clip.resolve()


def test_quoted_path_and_file_uri_are_accepted(root: Path) -> None:
    clip = make_clip(root / "my clip.mp4", seconds=0.5)
    assert resolve_local_path(f'"{clip}"', [root]) == clip
    assert resolve_local_path(clip.as_uri(), [root]) == clip


def test_missing_file_gets_a_suggestion(root: Path) -> None:
    make_clip(root / "holiday.mp4", seconds=0.5)
    message = str(refused("holliday.mp4", [root]))
    assert "no file at" in message
    assert "Did you mean" in message
    assert str(root / "holiday.mp4") in message


def test_missing_file_outside_root_lists_nothing(root: Path, outside: Path) -> None:
    make_clip(outside / "private.mp4", seconds=0.5)
    message = str(refused(str(outside / "privat.mp4"), [root]))
    assert "outside the folders" in message
    assert "private.mp4" not in message


def test_directory_is_refused(root: Path) -> None:
    (root / "videos").mkdir()
    make_clip(root / "videos" / "x.mp4", seconds=0.5)
    message = str(refused("videos", [root]))
    assert "is a folder" in message
    assert "x.mp4" in message


def test_symlink_loop_is_refused_without_naming_its_target(root: Path) -> None:
    (root / "a.mp4").symlink_to(root / "b.mp4")
    (root / "b.mp4").symlink_to(root / "a.mp4")
    message = str(refused("a.mp4", [root]))
    assert "loop of symbolic links" in message and "b.mp4" not in message


def test_only_video_files_are_suggested(root: Path) -> None:
    (root / "id_ed25519").write_text("secret")
    (root / ".hidden.mp4").write_bytes(b"")
    make_clip(root / "beach.mov", seconds=0.5)
    message = str(refused("id_ed2551", [root]))
    assert "id_ed25519" not in message and ".hidden" not in message
    assert "'beach.mov'" in message


class _SwapBeforeOpen:
    """Stands in for os.open: changes the file system once, just before the real open."""

    def __init__(self, change: object) -> None:
        self.change = change
        self.real_open = os.open

    def __call__(self, path: object, flags: int, *args: int) -> int:
        if self.change is not None:
            change, self.change = self.change, None
            change()  # type: ignore[operator]
        return self.real_open(path, flags, *args)  # type: ignore[arg-type]


def test_a_file_swapped_for_a_symlink_after_resolving_is_not_followed(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = make_clip(root / "clip.mp4", seconds=0.5)
    secret = make_clip(outside / "secret.mp4", seconds=0.5)

    def swap() -> None:
        clip.unlink()
        clip.symlink_to(secret)

    monkeypatch.setattr(os, "open", _SwapBeforeOpen(swap))
    message = str(refused("clip.mp4", [root]))
    assert "changed while it was being opened" in message and str(outside) not in message


def test_a_folder_swapped_for_a_link_after_resolving_is_caught_after_opening(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "sub").mkdir()
    make_clip(root / "sub" / "clip.mp4", seconds=0.5)
    make_clip(outside / "clip.mp4", seconds=0.5)

    def swap() -> None:
        (root / "sub").rename(root / "parked")
        (root / "sub").symlink_to(outside)

    monkeypatch.setattr(os, "open", _SwapBeforeOpen(swap))
    message = str(refused("sub/clip.mp4", [root]))
    assert "outside the folders" in message and str(outside) not in message


def test_the_check_after_opening_without_proc_compares_the_file_itself(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where /proc cannot name the descriptor's file: the path is resolved again and must lead to it.
    (root / "sub").mkdir()
    make_clip(root / "sub" / "clip.mp4", seconds=0.5)
    make_clip(outside / "clip.mp4", seconds=0.5)
    real_readlink = os.readlink

    def no_proc(path: str) -> str:
        if str(path).startswith("/proc/self/fd/"):
            raise FileNotFoundError(errno.ENOENT, "no /proc here")
        return real_readlink(path)

    monkeypatch.setattr(os, "readlink", no_proc)
    with open_local_file("sub/clip.mp4", [root]) as file:
        assert file.size == (root / "sub" / "clip.mp4").stat().st_size

    def swap_there_and_back() -> None:
        (root / "sub").rename(root / "parked")
        (root / "sub").symlink_to(outside)

    monkeypatch.setattr(os, "open", _SwapBeforeOpen(swap_there_and_back))
    assert "outside the folders" in str(refused("sub/clip.mp4", [root]))


def test_a_pipe_swapped_in_after_resolving_is_refused_without_waiting(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = make_clip(root / "clip.mp4", seconds=0.5)

    def swap() -> None:
        clip.unlink()
        os.mkfifo(clip)

    monkeypatch.setattr(os, "open", _SwapBeforeOpen(swap))
    messages: list[str] = []
    # A blocking open would wait for a writer forever: run it aside, and end such a wait to fail clearly.
    opener = threading.Thread(target=lambda: messages.append(str(refused("clip.mp4", [root]))), daemon=True)
    opener.start()
    opener.join(timeout=10)
    waited = opener.is_alive()
    if waited:
        os.close(os.open(clip, os.O_WRONLY | os.O_NONBLOCK))
        opener.join(timeout=10)
    assert not waited, "the open waited on the pipe"
    assert len(messages) == 1 and "is not a regular file but a pipe" in messages[0]


def test_unreadable_file_gets_its_own_message(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The tests may run as root, who reads everything: the refusal is made here instead.
    make_clip(root / "clip.mp4", seconds=0.5)

    def denied(path: object, flags: int, *args: int) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "open", denied)
    message = str(refused("clip.mp4", [root]))
    assert "cannot be read: permission denied" in message and "chmod" in message
    assert str(root / "clip.mp4") not in message


def test_an_opened_file_reads_only_what_it_held_when_opened(root: Path) -> None:
    clip = make_clip(root / "clip.mp4", seconds=0.5)
    size = clip.stat().st_size
    with open_local_file("clip.mp4", [root]) as file:
        assert not file.changed()
        with clip.open("ab") as grow:
            grow.write(b"more")
        assert file.changed()
        assert file.read_at(size - 2, 100) == clip.read_bytes()[size - 2 : size]
        view = file.reader()
        assert view.read() == clip.read_bytes()[:size]
        assert view.seek(-4, os.SEEK_END) == size - 4 and view.tell() == size - 4
        assert view.read(100) == clip.read_bytes()[size - 4 : size]
        view.close()  # leaves the descriptor to the LocalFile
        assert file.read_at(0, 4) == clip.read_bytes()[:4]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=600))
@example("a" * 300 + ".mp4")
@example("~nosuchuser-7d1f/x.mp4")
@example("\0")
@example("\ud800.mp4")
def test_any_path_text_is_opened_or_refused_with_a_clear_message(
    tmp_path_factory: pytest.TempPathFactory, raw: str
) -> None:
    folder = tmp_path_factory.getbasetemp() / "any-path"
    folder.mkdir(exist_ok=True)
    try:
        open_local_file(raw, [folder]).close()
    except InputError as exc:
        assert exc.argument == "path" and len(str(exc)) > 20


@pytest.mark.parametrize("raw", ["", "   ", '""'])
def test_empty_path_is_refused(root: Path, raw: str) -> None:
    assert "empty" in str(refused(raw, [root]))


# --------------------------------------------------------------------------- file names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Anime Style", "Anime-Style"),
        ("../../etc/passwd", "etc-passwd"),
        ("a/b\\c", "a-b-c"),
        ("", "video"),
        ("....", "video"),
        (".hidden", "hidden"),
        ("CON", "_CON"),
        ("nul.mp4", "_nul.mp4"),
        ("赛博朋克 ✨", "赛博朋克"),
        ("ｆｕｌｌ／ｗｉｄｔｈ", "full-width"),
        ("12345678901234567890", "12345678901234567890"),
    ],
)
def test_safe_filename_examples(text: str, expected: str) -> None:
    assert safe_filename(text) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.integers(min_value=1, max_value=120))
def test_safe_filename_is_always_safe(text: str, max_len: int) -> None:
    name = safe_filename(text, max_len)
    assert name
    assert len(name) <= max_len or name == "video"
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".")
    assert ".." not in name


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=100))
def test_safe_names_stay_inside_output_folder(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    out = tmp_path_factory.getbasetemp() / "out"
    out.mkdir(exist_ok=True)
    written = ensure_inside(out / f"pixverse-1-{safe_filename(text)}.mp4", out)
    assert written.parent == out.resolve()


def test_ensure_inside_refuses_escapes(tmp_path: Path, outside: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "evil").symlink_to(outside)
    assert ensure_inside(Path("ok.mp4"), out) == out.resolve() / "ok.mp4"
    for hostile in ("../x.mp4", "a/../../x.mp4", "/etc/passwd", "evil/x.mp4", ".", ""):
        with pytest.raises(InputError, match="outside the output folder"):
            ensure_inside(Path(hostile), out)
