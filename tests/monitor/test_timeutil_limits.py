"""Durations and times too large for a timedelta or a datetime are refused with InvalidDuration and a
clear message, never an OverflowError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sconeflow.monitor.timeutil import InvalidDuration, parse_duration, parse_time, resolve_window

MAX_DURATION = timedelta(days=36500)


@pytest.mark.parametrize(
    "text",
    [
        "PT99999999999999H",
        "P99999999999999D",
        "P999999999D",  # the largest timedelta: accepted before, but now - it is before year 1
        "99999999999999d",
        "1000000w",
        "9" * 400 + "s",  # float("9" * 400) is inf
        "PT" + "9" * 400 + "S",
        "36501d",
    ],
)
def test_huge_durations_are_refused_by_name(text: str) -> None:
    with pytest.raises(InvalidDuration, match="too long; at most 36500 days"):
        parse_duration(text)


def test_the_limit_itself_and_ordinary_durations_still_parse() -> None:
    assert parse_duration("36500d") == MAX_DURATION
    assert parse_duration("P36500D") == MAX_DURATION
    assert parse_duration("P1DT2H3M4.5S") == timedelta(days=1, hours=2, minutes=3, seconds=4.5)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("PT0.5S") == timedelta(milliseconds=500)


def test_times_out_of_range_are_refused_by_name() -> None:
    with pytest.raises(InvalidDuration):
        resolve_window("PT99999999999999H", None, None)
    with pytest.raises(InvalidDuration):
        parse_time("99999999999999d ago")
    with pytest.raises(InvalidDuration, match="before year 1"):
        parse_time("-36500d", now=datetime(50, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidDuration, match="before year 1"):
        resolve_window("36500d", None, None, now=datetime(50, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidDuration, match="outside the years"):
        parse_time("0001-01-01T00:00:00+01:00")  # before year 1 once in UTC
    with pytest.raises(InvalidDuration, match="outside the years"):
        parse_time("9999-12-31T23:30:00-01:00")  # after year 9999 once in UTC
