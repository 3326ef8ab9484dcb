"""A group of restyles (restyle_many): its items checked before anything is sent, and its plan on record.

`parse_items` checks every item of the call the way restyle_video checks its arguments, and
refuses the whole call naming each bad item by its index (`items[2]`), so a list with one typo
costs nothing. `GroupPlan` is what the journal keeps of a group (as JSON): each item's label,
source and style, and each of its parts' generate request, so that any later call (get_status
with the group_id, on any replica) can report, join and continue it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, WithJsonSchema

from pixverse_mcp import arguments
from pixverse_mcp.errors import InputError

MAX_ITEMS = 12
"""Items per call: a contact sheet of twelve rows still reads at a glance, and twelve jobs are a
few minutes of a plan's concurrency."""
MAX_JOBS = 24
"""Jobs per call, the parts of split clips counted: a split clip adds one job per 15.9 s."""
SOURCE_KEYS = ("video_media_id", "source_video_id", "path", "url")
STYLE_KEYS = ("restyle_id", "restyle_prompt")
ITEM_KEYS = (*SOURCE_KEYS, *STYLE_KEYS, "seed", "split")
GROUP_ID = re.compile(r"^[0-9a-f]{16}$")
MAX_LABEL = 60

_ID = {"type": ["integer", "string"], "pattern": "^[0-9]{1,20}$"}
ITEMS_SCHEMA = WithJsonSchema(
    {
        "type": ["array", "null"],
        "minItems": 1,
        "maxItems": MAX_ITEMS,
        "items": {
            "type": "object",
            "properties": {
                "video_media_id": _ID,
                "source_video_id": _ID,
                "path": {"type": "string"},
                "url": {"type": "string"},
                "restyle_id": _ID,
                "restyle_prompt": {"type": "string", "maxLength": arguments.MAX_PROMPT_CHARS},
                "seed": {"type": "integer", "minimum": 0, "maximum": arguments.MAX_SEED},
                "split": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
    }
)

SourceKind = Literal["media", "video", "path", "url"]


@dataclass(frozen=True)
class ItemRequest:
    """One item of a restyle_many call, checked; nothing sent yet."""

    index: int
    source_kind: SourceKind
    source_id: int | None
    """video_media_id or source_video_id."""
    path: str | None
    url: str | None
    restyle_id: int | None
    restyle_prompt: str | None
    seed: int | None
    split: bool

    @property
    def source_key(self) -> tuple[object, ...]:
        return (self.source_kind, self.source_id, self.path, self.url)

    @property
    def style_key(self) -> tuple[object, ...]:
        return (self.restyle_id, self.restyle_prompt)


def refusal(problems: dict[int, str], total: int) -> InputError:
    """The error that refuses a whole call, naming each bad item."""
    listed = " ".join(f"items[{index}]: {text.rstrip('.')}." for index, text in sorted(problems.items()))
    count = f"{len(problems)} of {total} items are" if len(problems) > 1 else f"1 of {total} items is"
    return InputError(
        f"restyle_many started nothing, uploaded nothing and spent nothing: {count} refused. {listed} "
        "Fix those items (or leave them out) and call again.",
        argument="items",
    )


def parse_items(value: object) -> tuple[list[ItemRequest], dict[int, str]]:
    """The items that pass their own checks, and the problem of each one that does not (by index).

    Raises:
        InputError: not a list, empty, or over MAX_ITEMS.
    """
    if not isinstance(value, list):
        raise InputError(
            'items must be a list of objects, e.g. [{"path": "clip.mp4", "restyle_id": 1003}, '
            '{"path": "clip.mp4", "restyle_prompt": "in neon"}].',
            argument="items",
        )
    if not value:
        raise InputError(
            "items is empty: give at least one item (a source and a style), e.g. the same clip with "
            "several styles to compare them.",
            argument="items",
        )
    if len(value) > MAX_ITEMS:
        raise InputError(
            f"items has {len(value)} entries; restyle_many takes at most {MAX_ITEMS} per call. Split the "
            "list over several calls. Nothing was started.",
            argument="items",
        )
    problems: dict[int, str] = {}
    parsed: list[ItemRequest] = []
    for index, item in enumerate(value):
        try:
            parsed.append(_item(index, item))
        except InputError as exc:
            problems[index] = exc.message
    seen: dict[tuple[object, ...], int] = {}
    for item in parsed:
        key = (item.source_key, item.style_key, item.seed, item.split)
        if key in seen:
            problems[item.index] = (
                f"repeats items[{seen[key]}] (the same source, style and seed); give it another seed or "
                "leave it out"
            )
        seen.setdefault(key, item.index)
    return [item for item in parsed if item.index not in problems], problems


def _item(index: int, item: object) -> ItemRequest:
    if not isinstance(item, dict):
        raise InputError("must be an object with a source and a style")
    unknown = [key for key in item if key not in ITEM_KEYS]
    if unknown:
        raise InputError(
            f"has no field {', '.join(repr(str(k)[:40]) for k in unknown)}; an item's fields are "
            f"{', '.join(ITEM_KEYS)}"
        )
    source = arguments.exactly_one(**{key: item.get(key) for key in SOURCE_KEYS})
    style = arguments.exactly_one(**{key: item.get(key) for key in STYLE_KEYS})
    split = item.get("split", False)
    if not isinstance(split, bool):
        raise InputError("split must be true or false")
    if split and source != "path":
        raise InputError("split=true works on a local path only (the clip is cut here, then uploaded)")
    source_id = path = url = None
    if source in ("video_media_id", "source_video_id"):
        source_id = arguments.id_argument(item[source], source)
    elif source == "path":
        path = arguments.text_argument(item["path"], "path", max_len=4096)
    else:
        url = arguments.validate_video_url(arguments.text_argument(item["url"], "url", max_len=4096))
    restyle_id = arguments.id_argument(item["restyle_id"], "restyle_id") if style == "restyle_id" else None
    prompt = arguments.prompt_argument(item["restyle_prompt"]) if style == "restyle_prompt" else None
    return ItemRequest(
        index=index,
        source_kind={"video_media_id": "media", "source_video_id": "video"}.get(source, source),  # type: ignore[arg-type]
        source_id=source_id,
        path=path,
        url=url,
        restyle_id=restyle_id,
        restyle_prompt=prompt,
        seed=arguments.seed_argument(item.get("seed")),
        split=split,
    )


def checked_body(body: dict[str, Any]) -> dict[str, Any]:
    """A generate request read back from the journal, checked as a tool argument would be: a record
    edited by hand must not send PixVerse anything a tool call could not.

    Raises:
        InputError: a field that is not a generate field, or a value that breaks its rule.
    """
    allowed = {"video_media_id", "source_video_id", "restyle_id", "restyle_prompt", "seed"}
    if not body.keys() <= allowed:
        raise InputError(f"unexpected fields {sorted(body.keys() - allowed)}")
    source = arguments.exactly_one(
        video_media_id=body.get("video_media_id"), source_video_id=body.get("source_video_id")
    )
    style = arguments.exactly_one(
        restyle_id=body.get("restyle_id"), restyle_prompt=body.get("restyle_prompt")
    )
    checked: dict[str, Any] = {source: arguments.id_argument(body[source], source)}
    if style == "restyle_id":
        checked["restyle_id"] = arguments.id_argument(body["restyle_id"], "restyle_id")
    else:
        checked["restyle_prompt"] = arguments.prompt_argument(body["restyle_prompt"])
    if (seed := arguments.seed_argument(body.get("seed"))) is not None:
        checked["seed"] = seed
    return checked


def group_id_argument(value: object) -> str:
    if not isinstance(value, str) or not GROUP_ID.match(value.strip()):
        raise InputError(
            "group_id must be the group_id a restyle_many answer gave (16 characters, 0-9 and a-f).",
            argument="group_id",
        )
    return value.strip()


def labels(styles: Sequence[str], sources: Sequence[str], seeds: Sequence[int | None]) -> list[str]:
    """A short label per item: the style, with the source when the group has several, and the seed
    when two items would otherwise read the same."""
    several_sources = len(set(sources)) > 1
    made = [
        f"{source}: {style}" if several_sources else style
        for style, source in zip(styles, sources, strict=True)
    ]
    counts = {label: made.count(label) for label in made}
    return [
        (f"{label} (seed {seed})" if counts[label] > 1 and seed is not None else label)[:MAX_LABEL]
        for label, seed in zip(made, seeds, strict=True)
    ]


def prompt_label(prompt: str) -> str:
    words = " ".join(prompt.split())
    return words if len(words) <= 40 else words[:39].rstrip() + "…"


# --------------------------------------------------------------------------- the plan on record


class PartPlan(BaseModel):
    """One job of an item: the generate request to send (or sent) and the span of source it covers."""

    body: dict[str, Any]
    trace_id: str
    seconds: float | None = None
    """The length of source this job restyles, when known (for the estimate)."""
    start_seconds: float | None = None
    """For a part of a split clip: where it starts and ends in the source, and how the cut was chosen."""
    end_seconds: float | None = None
    cut: str | None = None
    refused: str | None = None
    """PixVerse refused the generate (no job was made): why."""
    uncertain: bool = False
    """The generate's outcome is unknown: `trace_id` may have made a job."""


class ItemPlan(BaseModel):
    """One item of the group."""

    label: str
    source: str
    style: str | None = None
    restyle_id: str | None = None
    restyle_prompt: str | None = None
    seed: int | None = None
    seconds: float | None = None
    split_path: str | None = None
    """The local clip a split item came from (inside the allowed folders): its sound goes back in."""
    joined_path: str | None = None
    fitted: list[str] | None = None
    parts: list[PartPlan]


class GroupPlan(BaseModel):
    """What the journal keeps of a group."""

    group_id: str
    items: list[ItemPlan]
    contact_sheet_path: str | None = None
