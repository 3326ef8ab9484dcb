"""Spend control as pure logic: the estimate, the caps, the question; and the settings that drive them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from pixverse_mcp.config import Settings
from pixverse_mcp.spend import (
    Estimate,
    check_caps,
    confirmation_question,
    day_start,
    estimate_from,
    unchecked_caps,
)

THIRTY = Estimate(credits=30, credits_per_second=2.0, samples=5, source_seconds=15.0)
UNKNOWN = Estimate(credits=None, credits_per_second=None, samples=0, source_seconds=15.0)


def test_no_jobs_yet_means_unknown() -> None:
    estimate = estimate_from([], 10.0)
    assert not estimate.known and estimate.credits is None
    assert estimate.describe().startswith("unknown until the first job")


def test_the_estimate_is_the_median_rate_times_the_clip() -> None:
    samples = [(30, 10.0), (20, 5.0), (10, 5.0), (1000, 1.0)]  # rates 3, 4, 2 and an outlier of 1000
    estimate = estimate_from(samples, 8.0)
    assert (estimate.credits_per_second, estimate.credits, estimate.samples) == (3.5, 28, 4)
    assert "about 28 credits" in estimate.describe() and "last 4 jobs" in estimate.describe()


def test_the_estimate_rounds_up_but_not_for_float_noise() -> None:
    assert estimate_from([(25, 3.0)], 15.0).credits == 125  # 25 / 3 * 15 is 125.00000000000001 in floats
    assert estimate_from([(10, 3.0)], 1.0).credits == 4  # 3.33 credits: a cap must not be passed by rounding
    assert estimate_from([(1, 100.0)], 0.5).credits == 1


def test_an_unknown_clip_length_falls_back_to_the_median_job() -> None:
    for seconds in (None, 0.0, float("nan"), -3.0):
        estimate = estimate_from([(30, 10.0), (50, 10.0), (40, 2.0)], seconds)
        assert estimate.credits == 40 and estimate.samples == 3
        assert "median cost" in estimate.describe() and "length is not known" in estimate.describe()


def test_jobs_without_a_cost_or_length_are_ignored() -> None:
    assert estimate_from([(0, 10.0), (30, 0.0)], 5.0).samples == 0


def test_within_the_caps_nothing_is_refused() -> None:
    assert check_caps(THIRTY, None, None, None) is None
    assert check_caps(THIRTY, 30, 100, 70) is None  # exactly at both caps is allowed


def test_a_job_over_the_job_cap_is_refused_with_the_figures() -> None:
    refusal = check_caps(THIRTY, 25, None, 0)
    assert refusal is not None
    assert "about 30 credits" in refusal and "25 credits per job" in refusal
    assert "PIXVERSE_MAX_CREDITS_PER_JOB" in refusal and "No credits were spent" in refusal.replace(
        "no", "No"
    )


def test_a_job_that_would_pass_the_day_cap_is_refused() -> None:
    refusal = check_caps(THIRTY, None, 1000, 980)
    assert refusal is not None
    assert (
        "980 credits spent since 00:00 UTC" in refusal
        and "1,000" in refusal
        and "20 credits are left" in refusal
    )
    assert "PIXVERSE_MAX_CREDITS_PER_DAY" in refusal


def test_a_day_cap_already_reached_refuses_even_an_unknown_cost() -> None:
    refusal = check_caps(UNKNOWN, 50, 500, 500)
    assert refusal is not None and "500 of 500 credits" in refusal and "00:00 UTC" in refusal


def test_unknown_figures_let_the_job_go_and_say_so() -> None:
    assert check_caps(UNKNOWN, 10, 500, 100) is None  # the first job is what teaches the estimate
    assert check_caps(THIRTY, None, 10, None) is None  # the journal could not tell today's total
    note = unchecked_caps(UNKNOWN, 10, 500, None)
    assert note is not None
    assert "PIXVERSE_MAX_CREDITS_PER_JOB could not be checked" in note
    assert "PIXVERSE_MAX_CREDITS_PER_DAY was not checked" in note
    assert unchecked_caps(THIRTY, 40, 500, 100) is None
    assert unchecked_caps(THIRTY, None, None, None) is None


def test_the_confirmation_question() -> None:
    assert (
        confirmation_question(THIRTY, 1500)
        == "This restyle will cost about 30 credits; 1,470 left. Go ahead?"
    )
    assert confirmation_question(THIRTY, None) == "This restyle will cost about 30 credits. Go ahead?"
    assert "may not be enough" in confirmation_question(THIRTY, 20)
    unknown = confirmation_question(UNKNOWN, 1500)
    assert "unknown until the first job" in unknown and "1,500 credits" in unknown
    assert unknown.endswith("Go ahead?")


def test_the_day_starts_at_midnight_utc() -> None:
    late = datetime(2026, 5, 20, 23, 59, 59, tzinfo=UTC)
    assert day_start(late) == datetime(2026, 5, 20, tzinfo=UTC)
    tokyo = timezone(timedelta(hours=9))
    assert day_start(datetime(2026, 5, 21, 8, 0, tzinfo=tokyo)) == datetime(2026, 5, 20, tzinfo=UTC)


def test_spend_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "PIXVERSE_MAX_CREDITS_PER_JOB": "60",
            "PIXVERSE_MAX_CREDITS_PER_DAY": "1_000",
            "PIXVERSE_CONFIRM_SPEND": "ASK",
            "PIXVERSE_JOURNAL": "on",
        }
    )
    assert (settings.max_credits_per_job, settings.max_credits_per_day) == (60, 1000)
    assert settings.confirm_spend == "ask" and settings.journal_enabled
    defaults = Settings.from_env({})
    assert (defaults.max_credits_per_job, defaults.max_credits_per_day, defaults.confirm_spend) == (
        None,
        None,
        "off",
    )
    assert defaults.journal_enabled and defaults.journal_url is None


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("PIXVERSE_MAX_CREDITS_PER_JOB", "lots", "whole number of credits"),
        ("PIXVERSE_MAX_CREDITS_PER_DAY", "0", "at least 1 (unset it for no limit)"),
        ("PIXVERSE_CONFIRM_SPEND", "always", "must be off or ask"),
        ("PIXVERSE_JOURNAL", "maybe", "must be on or off"),
    ],
)
def test_bad_spend_settings_say_what_to_set(name: str, value: str, said: str) -> None:
    with pytest.raises(ValueError, match=name) as raised:
        Settings.from_env({name: value})
    assert said in str(raised.value)


def test_a_journal_url_keeps_its_password_out_of_errors_and_reprs() -> None:
    url = "postgresql://team:hunter2-secret@db.example.com:5432/pixverse"
    settings = Settings.from_env({"PIXVERSE_JOURNAL_URL": url})
    assert settings.journal_url is not None and settings.journal_url.get_secret_value() == url
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
    with pytest.raises(ValidationError) as raised:
        Settings.from_env({"PIXVERSE_JOURNAL_URL": "mysql://team:hunter2-secret@db/pixverse"})
    assert "postgresql://" in str(raised.value) and "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    "url", ["sqlite://relative.db", "sqlite:///", "sqlite:relative.db", "http://db.example.com/journal"]
)
def test_a_journal_url_that_cannot_work_is_refused_at_start(url: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings.from_env({"PIXVERSE_JOURNAL_URL": url})
    assert "PIXVERSE_JOURNAL_URL" in str(raised.value)
