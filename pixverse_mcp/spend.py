"""What a restyle will cost, the spending caps, and the words of the confirmation question.

PixVerse does not publish the restyle price, so the estimate is learned from this account's own
jobs in the journal: the median credits per second of source video over the recent jobs whose cost
and source length are known, times the new clip's length. Before the first such job it is unknown.

The day is the UTC calendar day: the day total counts the credits of jobs started since 00:00 UTC,
read from the journal (so replicas sharing a PostgreSQL journal share it). Jobs refused by
moderation are refunded by PixVerse and do not count.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime

from pixverse_mcp.journal import Journal

JOB_CAP_VARIABLE = "PIXVERSE_MAX_CREDITS_PER_JOB"
DAY_CAP_VARIABLE = "PIXVERSE_MAX_CREDITS_PER_DAY"
ESTIMATE_SAMPLES = 20

NOTHING_SPENT = "Nothing was started and no credits were spent."
DECLINED = f"The restyle was declined. {NOTHING_SPENT}"
NO_ANSWER = f"No answer came to the spending question in time. {NOTHING_SPENT} Ask the user, then try again."
NOT_ASKED = (
    "PIXVERSE_CONFIRM_SPEND=ask is set, but this client cannot show the question (it did not declare "
    "the elicitation capability), so the restyle went ahead within the spending caps."
)


@dataclass(frozen=True, slots=True)
class Estimate:
    """The expected cost of one restyle, or why it is not known."""

    credits: int | None
    """Rounded up; None when unknown."""
    credits_per_second: float | None
    samples: int
    """How many earlier jobs the figure comes from."""
    source_seconds: float | None

    @property
    def known(self) -> bool:
        return self.credits is not None

    def describe(self) -> str:
        """One sentence for an answer or a refusal."""
        if (
            self.credits is not None
            and self.credits_per_second is not None
            and self.source_seconds is not None
        ):
            jobs = "job" if self.samples == 1 else "jobs"
            return (
                f"about {self.credits:,} credits (the median {self.credits_per_second:.3g} credits per "
                f"second of video over this account's last {self.samples} {jobs}, times "
                f"{self.source_seconds:.1f} s)"
            )
        if self.credits is not None:
            jobs = "job" if self.samples == 1 else "jobs"
            return (
                f"about {self.credits:,} credits (the median cost of this account's last {self.samples} "
                f"{jobs}; this clip's length is not known here)"
            )
        return (
            "unknown until the first job: PixVerse does not publish the restyle price, so the estimate "
            "is learned from this account's jobs"
        )


def estimate_from(samples: list[tuple[int, float]], source_seconds: float | None) -> Estimate:
    """The estimate from (credits, source seconds) pairs of earlier jobs; pure.

    For a clip of unknown length (uploaded by another server, or a PixVerse video) the estimate is
    the median cost of the earlier jobs themselves: rougher, but a cap can still be checked.
    """
    pairs = [(c, s) for c, s in samples if c > 0 and math.isfinite(s) and s > 0]
    if not pairs:
        return Estimate(credits=None, credits_per_second=None, samples=0, source_seconds=source_seconds)
    rate = statistics.median(c / s for c, s in pairs)
    if source_seconds is not None and math.isfinite(source_seconds) and source_seconds > 0:
        # The small margin keeps float noise (2.0 * 15 = 30.000000000000004) from adding a credit.
        credits = max(1, math.ceil(rate * source_seconds - 1e-9))
        return Estimate(
            credits=credits, credits_per_second=rate, samples=len(pairs), source_seconds=source_seconds
        )
    per_job = math.ceil(statistics.median(c for c, _ in pairs))
    return Estimate(credits=per_job, credits_per_second=rate, samples=len(pairs), source_seconds=None)


async def estimate(
    journal: Journal, source_seconds: float | None, *, samples: int = ESTIMATE_SAMPLES
) -> Estimate:
    """The expected cost of restyling a clip of `source_seconds`, from the journal's recent jobs."""
    recent = await journal.cost_samples(samples)
    return estimate_from([(s.credits, s.source_seconds) for s in recent], source_seconds)


def day_start(now: datetime) -> datetime:
    """00:00 UTC of `now`'s UTC day: where the day total starts."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def spent_today(journal: Journal, now: datetime | None = None) -> int | None:
    """Credits spent since 00:00 UTC, as the journal knows them; None when the journal cannot tell."""
    return await journal.credits_spent(day_start(now or datetime.now(UTC)))


def check_caps(
    estimate: Estimate, per_job_cap: int | None, per_day_cap: int | None, spent_today: int | None
) -> str | None:
    """The refusal, with the figures and how to raise the cap, when a restyle would pass a cap; else None.

    A cap that cannot be checked (no estimate yet, or no day total) lets the job go: the first job
    is what teaches the estimate. `unchecked_caps` says which cap went unchecked.
    """
    cost = estimate.credits
    if per_job_cap is not None and cost is not None and cost > per_job_cap:
        return (
            f"This restyle would cost {estimate.describe()}, more than the limit of {per_job_cap:,} credits "
            f"per job ({JOB_CAP_VARIABLE}). Use a shorter clip, or raise {JOB_CAP_VARIABLE} in the "
            f"server's environment. {NOTHING_SPENT}"
        )
    if per_day_cap is not None and spent_today is not None:
        if spent_today >= per_day_cap:
            return (
                f"Today's spending has reached the daily limit: {spent_today:,} of {per_day_cap:,} credits "
                f"spent since 00:00 UTC ({DAY_CAP_VARIABLE}). Wait for 00:00 UTC, or raise "
                f"{DAY_CAP_VARIABLE} in the server's environment. {NOTHING_SPENT}"
            )
        if cost is not None and spent_today + cost > per_day_cap:
            return (
                f"This restyle would cost {estimate.describe()}; with the {spent_today:,} credits spent "
                f"since 00:00 UTC that passes the daily limit of {per_day_cap:,} ({DAY_CAP_VARIABLE}); "
                f"{per_day_cap - spent_today:,} credits are left for today. Use a shorter clip, wait for "
                f"00:00 UTC, or raise {DAY_CAP_VARIABLE} in the server's environment. {NOTHING_SPENT}"
            )
    return None


def unchecked_caps(
    estimate: Estimate, per_job_cap: int | None, per_day_cap: int | None, spent_today: int | None
) -> str | None:
    """A note for the answer when a set cap could not be checked before starting the job."""
    notes = []
    if per_job_cap is not None and estimate.credits is None:
        why = (
            "the clip's length is not known" if estimate.samples else "no earlier job to learn the price from"
        )
        notes.append(f"{JOB_CAP_VARIABLE} could not be checked ({why})")
    if per_day_cap is not None and spent_today is None:
        notes.append(
            f"the job journal could not tell today's spending, so {DAY_CAP_VARIABLE} was not checked"
        )
    elif per_day_cap is not None and estimate.credits is None:
        notes.append(f"{DAY_CAP_VARIABLE} was checked against today's spending only")
    return ("Note: " + "; ".join(notes) + ".") if notes else None


def confirmation_question(estimate: Estimate, balance: int | None) -> str:
    """The question asked before a paid restyle (PIXVERSE_CONFIRM_SPEND=ask)."""
    cost = estimate.credits
    if cost is None:
        have = f"; you have {balance:,} credits" if balance is not None else ""
        return f"This restyle's cost is {estimate.describe()}{have}. Go ahead?"
    if balance is None:
        return f"This restyle will cost about {cost:,} credits. Go ahead?"
    if balance < cost:
        return (
            f"This restyle will cost about {cost:,} credits; you have {balance:,}, which may not be "
            "enough. Go ahead?"
        )
    return f"This restyle will cost about {cost:,} credits; {balance - cost:,} left. Go ahead?"
