"""The journal's statements, written once in the SQL both SQLite and PostgreSQL speak.

Parameters are `:name` (SQLite's form; the PostgreSQL backend turns them into `%(name)s`), so the
text holds no `%` and no `::` cast. The upserts fill in what a later call learns without erasing
what an earlier one knew. The parameter builders at the end bound every value.
"""

from __future__ import annotations

import math
from typing import Any

from pixverse_mcp.journal.records import JobStart, clip_text, storable_int

COLUMNS = (
    "video_id, trace_id, request_key, status, status_code, source_kind, source, source_fingerprint, "
    "source_seconds, restyle_id, style_name, prompt, seed, credits, url, local_path, client_name, "
    "group_id, started_at, finished_at, group_item, group_part"
)

UPSERT_ATTEMPT = """
INSERT INTO pixverse_jobs (trace_id, request_key, status, source_kind, source, source_fingerprint,
    source_seconds, restyle_id, style_name, prompt, seed, client_name, group_id, group_item, group_part,
    started_at, updated_at)
VALUES (:trace_id, :request_key, :status, :source_kind, :source, :source_fingerprint,
    :source_seconds, :restyle_id, :style_name, :prompt, :seed, :client_name, :group_id, :group_item,
    :group_part, :now, :now)
ON CONFLICT (trace_id) DO UPDATE SET
    status = CASE WHEN pixverse_jobs.video_id IS NULL THEN excluded.status ELSE pixverse_jobs.status END,
    updated_at = excluded.updated_at
"""

UPSERT_STARTED = """
INSERT INTO pixverse_jobs (trace_id, request_key, video_id, status, status_code, credits, url,
    local_path, finished_at, source_kind, source, source_fingerprint, source_seconds, restyle_id,
    style_name, prompt, seed, client_name, group_id, group_item, group_part, started_at, updated_at)
VALUES (:trace_id, :request_key, :video_id, :status, :status_code, :credits, :url,
    :local_path, :finished_at, :source_kind, :source, :source_fingerprint, :source_seconds, :restyle_id,
    :style_name, :prompt, :seed, :client_name, :group_id, :group_item, :group_part, :now, :now)
ON CONFLICT (trace_id) DO UPDATE SET
    video_id = COALESCE(pixverse_jobs.video_id, excluded.video_id),
    credits = COALESCE(excluded.credits, pixverse_jobs.credits),
    status = CASE WHEN pixverse_jobs.video_id IS NULL THEN excluded.status ELSE pixverse_jobs.status END,
    status_code = CASE WHEN pixverse_jobs.video_id IS NULL THEN excluded.status_code
        ELSE pixverse_jobs.status_code END,
    url = COALESCE(pixverse_jobs.url, excluded.url),
    local_path = COALESCE(pixverse_jobs.local_path, excluded.local_path),
    finished_at = COALESCE(pixverse_jobs.finished_at, excluded.finished_at),
    updated_at = excluded.updated_at
"""

# An end state is never replaced by a later non-final one (a stale poll from another replica).
UPSERT_STATUS = """
INSERT INTO pixverse_jobs (video_id, status, status_code, url, local_path, style_name, prompt, seed,
    credits, client_name, started_at, finished_at, updated_at)
VALUES (:video_id, :status, :status_code, :url, :local_path, :style_name, :prompt, :seed,
    :credits, :client_name, :now, :finished_at, :now)
ON CONFLICT (video_id) DO UPDATE SET
    status = CASE WHEN pixverse_jobs.finished_at IS NOT NULL AND excluded.finished_at IS NULL
        THEN pixverse_jobs.status ELSE excluded.status END,
    status_code = CASE WHEN pixverse_jobs.finished_at IS NOT NULL AND excluded.finished_at IS NULL
        THEN pixverse_jobs.status_code ELSE excluded.status_code END,
    url = COALESCE(excluded.url, pixverse_jobs.url),
    local_path = COALESCE(excluded.local_path, pixverse_jobs.local_path),
    style_name = COALESCE(pixverse_jobs.style_name, excluded.style_name),
    prompt = COALESCE(pixverse_jobs.prompt, excluded.prompt),
    seed = COALESCE(excluded.seed, pixverse_jobs.seed),
    credits = COALESCE(pixverse_jobs.credits, excluded.credits),
    client_name = COALESCE(pixverse_jobs.client_name, excluded.client_name),
    finished_at = COALESCE(pixverse_jobs.finished_at, excluded.finished_at),
    updated_at = excluded.updated_at
"""

FIND_UNCERTAIN = """
SELECT trace_id FROM pixverse_jobs
WHERE request_key = :request_key AND video_id IS NULL AND started_at >= :since
    AND (status = 'uncertain' OR (status = 'sending' AND updated_at < :stale))
ORDER BY started_at DESC, id DESC LIMIT 1
"""

# Moderation failures are refunded by PixVerse, so they do not count as spent.
CREDITS_SPENT = """
SELECT COALESCE(SUM(credits), 0) FROM pixverse_jobs
WHERE video_id IS NOT NULL AND credits IS NOT NULL AND started_at >= :since
    AND status <> 'moderation_failed'
"""

COST_SAMPLES = """
SELECT credits, source_seconds FROM pixverse_jobs WHERE credits > 0 AND source_seconds > 0
ORDER BY started_at DESC, id DESC LIMIT :limit
"""

SEARCHED_TEXT = (
    "lower(COALESCE(style_name, '') || ' ' || COALESCE(prompt, '') || ' ' || COALESCE(source, '') "
    "|| ' ' || COALESCE(restyle_id, '') || ' ' || COALESCE(video_id, '') || ' ' || COALESCE(group_id, ''))"
)

# A group's plan is replaced whole by the one call that writes it; the first writer's time stays.
UPSERT_GROUP = """
INSERT INTO pixverse_groups (group_id, plan, client_name, created_at, updated_at)
VALUES (:group_id, :plan, :client_name, :now, :now)
ON CONFLICT (group_id) DO UPDATE SET plan = excluded.plan, updated_at = excluded.updated_at
"""

GET_GROUP = """
SELECT group_id, plan, client_name, created_at, updated_at FROM pixverse_groups WHERE group_id = :group_id
"""

GROUP_PLAN_LIMIT = 256 * 1024
"""The longest plan kept (characters): a group of at most a few dozen jobs needs a few KB."""
GROUP_JOBS_LIMIT = 500
"""The most jobs read back for one group."""


def start_params(start: JobStart) -> dict[str, Any]:
    """The parameters of a job's start, each bounded: a hostile client or reply may send anything."""
    return {
        "trace_id": clip_text(start.trace_id, 200),
        "request_key": clip_text(start.request_key, 200),
        "source_kind": start.source_kind,
        "source": clip_text(start.source),
        "source_fingerprint": clip_text(start.source_fingerprint, 200),
        "source_seconds": _seconds(start.source_seconds),
        "restyle_id": clip_text(start.restyle_id, 100),
        "style_name": clip_text(start.style_name),
        "prompt": clip_text(start.prompt),
        "seed": storable_int(start.seed),
        "client_name": clip_text(start.client_name, 200),
        "group_id": clip_text(start.group_id, 200),
        "group_item": _small(start.group_item),
        "group_part": _small(start.group_part),
    }


def _small(value: int | None) -> int | None:
    """An item or part number worth keeping: 0 to 9999."""
    return value if value is not None and 0 <= value < 10_000 else None


def _seconds(value: float | None) -> float | None:
    """A length worth keeping: finite and positive (NaN would poison the estimate's median)."""
    return value if value is not None and math.isfinite(value) and value > 0 else None


def like_pattern(word: str) -> str:
    """A LIKE pattern that finds `word` anywhere, its % and _ taken as plain characters."""
    escaped = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped[:100]}%"
