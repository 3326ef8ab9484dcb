"""Before a paid restyle: the estimate, the spending caps and, when asked for, the user's go-ahead.

Nothing here sends a paid request: a refusal, a declined question or an unanswered one raises a
`ToolError` that says nothing was started. The question is asked (MCP elicitation) only when
``PIXVERSE_CONFIRM_SPEND=ask`` and the client declared it can show one; a client that cannot gets
the restyle within the caps, and the answer says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio
from mcp.server.elicitation import render_elicitation_schema
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import NoBackChannelError
from mcp.types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from pydantic import BaseModel, Field

from pixverse_mcp import spend
from pixverse_mcp.errors import PixVerseError
from pixverse_mcp.journal import JobStart
from pixverse_mcp.runtime import Runtime
from pixverse_mcp.tooling import NeedsInput

log = logging.getLogger(__name__)

BALANCE_SECONDS = 5.0
"""Reading the balance for an answer or the question; past this it is left out."""


CONFIRM_KEY = "spend_confirmation"
"""The key of the spending question in a 2026-07-28 `InputRequiredResult`."""


class GoAhead(BaseModel):
    """The form of the spending question."""

    go_ahead: bool = Field(True, description="Start this paid restyle")


@dataclass(frozen=True)
class SpendCheck:
    """What the checks found: the estimate, today's spending, and a note for the answer."""

    estimate: spend.Estimate
    spent_today: int | None
    note: str | None


async def balance_total(runtime: Runtime) -> int | None:
    """The account's credits (monthly and package), or None when PixVerse does not say in time."""
    with anyio.move_on_after(BALANCE_SECONDS):
        try:
            balance = await runtime.api.balance()
        except PixVerseError as exc:
            log.info("could not read the balance: %s", type(exc).__name__)
            return None
        return (balance.credit_monthly or 0) + (balance.credit_package or 0)
    return None


async def check_spend(runtime: Runtime, ctx: Context, starts: list[JobStart], *, dry_run: bool) -> SpendCheck:
    """Estimate the cost of `starts` (one job or a group), refuse what passes a cap, ask if set to.

    Raises:
        ToolError: a cap would be passed, or the user declined or did not answer; nothing was sent.
    """
    settings = runtime.settings
    journal = runtime.journal
    estimates = [await spend.estimate(journal, start.source_seconds) for start in starts]
    total = _total(estimates)
    per_day = settings.max_credits_per_day
    spent = await spend.spent_today(journal) if per_day is not None else None
    for one in estimates:
        refusal = spend.check_caps(one, settings.max_credits_per_job, None, None)
        if refusal is not None:
            raise ToolError(refusal)
    refusal = spend.check_caps(total, None, per_day, spent)
    if refusal is not None:
        raise ToolError(refusal)
    notes = [spend.unchecked_caps(total, settings.max_credits_per_job, per_day, spent)]
    if not dry_run and settings.confirm_spend == "ask":
        notes.append(await _confirm(runtime, ctx, total))
    return SpendCheck(total, spent, " ".join(note for note in notes if note) or None)


def _total(estimates: list[spend.Estimate]) -> spend.Estimate:
    """One estimate for several jobs: the sum when every part is known, else unknown."""
    if len(estimates) == 1:
        return estimates[0]
    known = [e.credits for e in estimates if e.credits is not None]
    seconds = [e.source_seconds for e in estimates if e.source_seconds is not None]
    samples = max((e.samples for e in estimates), default=0)
    rate = next((e.credits_per_second for e in estimates if e.credits_per_second is not None), None)
    if len(known) == len(estimates) and len(seconds) == len(estimates):
        return spend.Estimate(sum(known), rate, samples, sum(seconds))
    return spend.Estimate(None, rate, samples, sum(seconds) if len(seconds) == len(estimates) else None)


async def _confirm(runtime: Runtime, ctx: Context, estimate: spend.Estimate) -> str | None:
    """Ask the user to go ahead; None when they agreed, a note when they could not be asked."""
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.elicitation is None:
        return spend.NOT_ASKED
    responses = ctx.input_responses or {}
    if CONFIRM_KEY in responses:  # the call again, with the user's answer (2026-07-28)
        given = responses[CONFIRM_KEY]
        content = given.content if isinstance(given, ElicitResult) else None
        agreed = isinstance(given, ElicitResult) and given.action == "accept"
        if agreed and (content or {}).get("go_ahead", True) is not False:
            return None
        raise ToolError(spend.DECLINED)
    question = spend.confirmation_question(estimate, await balance_total(runtime))
    # No answer in time starts nothing (PIXVERSE_CONFIRM_TIMEOUT_SECONDS).
    with anyio.move_on_after(runtime.settings.confirm_timeout_seconds):
        try:
            answer = await ctx.elicit(question, GoAhead)
        except NoBackChannelError:
            # 2026-07-28: the question goes out with the answer; the client calls again with the reply.
            request = ElicitRequest(
                params=ElicitRequestFormParams(
                    message=question, requested_schema=render_elicitation_schema(GoAhead)
                )
            )
            raise NeedsInput(
                InputRequiredResult(input_requests={CONFIRM_KEY: request}, request_state="spend")
            ) from None
        except Exception as exc:  # a client that declared the capability but cannot take the question
            log.info("the spending question could not be asked: %s", type(exc).__name__)
            raise ToolError(
                f"The spending question could not be shown ({type(exc).__name__}). {spend.NOTHING_SPENT} "
                "Ask the user, then try again."
            ) from None
        if answer.action == "accept" and (answer.data is None or answer.data.go_ahead):
            return None
        raise ToolError(spend.DECLINED)
    raise ToolError(spend.NO_ANSWER)
