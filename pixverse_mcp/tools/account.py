"""The account: the credit balance and the job journal (both free)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import Field, WithJsonSchema

from pixverse_mcp import arguments
from pixverse_mcp.delivery import structured
from pixverse_mcp.errors import InputError
from pixverse_mcp.results import BalanceResult, JobEntry, JobList
from pixverse_mcp.runtime import Runtime
from pixverse_mcp.tooling import READ_ONLY, PixVerseServer, register


def install(server: PixVerseServer, runtime: Runtime) -> None:
    """Register get_balance, list_jobs and the pixverse://jobs resource."""

    @register(server, title="List earlier restyle jobs", annotations=READ_ONLY)
    async def list_jobs(
        status: Annotated[
            Any,
            WithJsonSchema({"enum": [*JOB_STATUSES, None]}),
            Field(description="Only jobs with this status."),
        ] = None,
        query: Annotated[
            Any,
            WithJsonSchema({"type": "string", "maxLength": MAX_QUERY_CHARS}),
            Field(description="Words to find in style, prompt, source or id."),
        ] = "",
        limit: Annotated[
            Any,
            WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
            Field(description="At most this many."),
        ] = 20,
    ) -> Annotated[CallToolResult, JobList]:
        """List restyle jobs this server started or checked, newest first, from its journal. Free.

        Use it to find a job's video_id again (after a restart, or a call that was cut off).
        """
        return structured(await job_list(runtime, status, query, limit))

    @server.resource(
        "pixverse://jobs",
        name="restyle-jobs",
        title="Restyle jobs",
        description="The newest restyle jobs this server started or checked, as JSON.",
        mime_type="application/json",
    )
    async def jobs_resource() -> str:
        return (await job_list(runtime, None, "", 50)).model_dump_json(exclude_none=True)

    @register(server, title="Get the credit balance", annotations=READ_ONLY)
    async def get_balance() -> Annotated[CallToolResult, BalanceResult]:
        """Show the PixVerse account's credits (monthly, package and total). Free."""
        balance = await runtime.api.balance()
        monthly, package = balance.credit_monthly or 0, balance.credit_package or 0
        return structured(
            BalanceResult(
                account_id=str(balance.account_id) if balance.account_id is not None else None,
                credit_monthly=monthly,
                credit_package=package,
                total=monthly + package,
                message=f"{monthly + package} credits left ({monthly} monthly, {package} from packages).",
            )
        )


JOB_STATUSES = (
    "succeeded",
    "generating",
    "deleted",
    "moderation_failed",
    "failed",
    "unknown",
    "uncertain",
    "sending",
)
MAX_QUERY_CHARS = 200
MAX_LIMIT = 200


async def job_list(runtime: Runtime, status: object, query: object, limit: object) -> JobList:
    """The journal's newest jobs, the arguments checked first."""
    if status is not None and status not in JOB_STATUSES:
        raise InputError(
            f"status must be one of {', '.join(JOB_STATUSES)}, got {status!r}.", argument="status"
        )
    text = arguments.text_argument(query, "query", max_len=MAX_QUERY_CHARS)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InputError(
            f"limit must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}.", argument="limit"
        )
    journal = runtime.journal
    records = await journal.list_jobs(status=status, query=text, limit=limit)
    entries = [
        JobEntry(
            video_id=r.video_id,
            status=r.status,
            style=r.style_name,
            prompt=r.prompt,
            source=r.source,
            credits=r.credits,
            url=r.url,
            local_path=r.local_path,
            trace_id=r.trace_id,
            group_id=r.group_id,
            started_at=r.started_at.isoformat(timespec="seconds"),
            finished_at=r.finished_at.isoformat(timespec="seconds") if r.finished_at else None,
        )
        for r in records
    ]
    if not journal.enabled:
        message = "The job journal is off (PIXVERSE_JOURNAL=off): no jobs are kept."
    elif entries:
        message = (
            "Newest first. Check a job with get_status(video_id); a job marked uncertain has no video_id: "
            "restyle_video with the same arguments recovers it through its trace_id."
        )
    else:
        message = "No jobs match." if (status or text) else "No jobs yet."
    return JobList(jobs=entries, count=len(entries), journal=journal.location, message=message)
