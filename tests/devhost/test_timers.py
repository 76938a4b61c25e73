"""NCRONTAB schedules and next_occurrence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from devhost.timers import CronSchedule, IntervalSchedule, next_occurrence, parse_field, parse_schedule


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("*/5 * * * * *", datetime(2024, 1, 1, 0, 0, 3), datetime(2024, 1, 1, 0, 0, 5)),
        ("*/5 * * * * *", datetime(2024, 1, 1, 0, 0, 5), datetime(2024, 1, 1, 0, 0, 10)),
        ("0 */5 * * * *", datetime(2024, 1, 1, 0, 59, 1), datetime(2024, 1, 1, 1, 0, 0)),
        ("0 0 * * * *", datetime(2024, 1, 1, 23, 30), datetime(2024, 1, 2, 0, 0, 0)),
        ("0 30 9 * * 1-5", datetime(2024, 1, 5, 10, 0), datetime(2024, 1, 8, 9, 30)),  # Fri -> Mon
        ("0 0 0 1 1 *", datetime(2024, 6, 1), datetime(2025, 1, 1)),
        ("0 0 12 29 2 *", datetime(2024, 3, 1), datetime(2028, 2, 29, 12)),
        ("0 0 0 * * 0", datetime(2024, 1, 1), datetime(2024, 1, 7)),  # Sunday is 0
        ("0 0 0 * * SUN", datetime(2024, 1, 1), datetime(2024, 1, 7)),
        ("0 0 0 1 JAN-MAR/2 *", datetime(2024, 1, 15), datetime(2024, 3, 1)),
        ("10,20,40 * * * * *", datetime(2024, 1, 1, 0, 0, 20), datetime(2024, 1, 1, 0, 0, 40)),
        ("0 15-45/15 * * * *", datetime(2024, 1, 1, 0, 46), datetime(2024, 1, 1, 1, 15)),
        ("0 0 0 31 * *", datetime(2024, 4, 1), datetime(2024, 5, 31)),
        ("0 0 0 1 * 1", datetime(2024, 1, 1, 0, 0), datetime(2024, 4, 1)),  # day and weekday both match
        ("0 * * * *", datetime(2024, 1, 1, 0, 0, 1), datetime(2024, 1, 1, 1, 0)),  # 5 fields: second 0
    ],
)
def test_next_occurrence(schedule: str, after: datetime, expected: datetime) -> None:
    assert next_occurrence(schedule, after) == expected


def test_sub_second_input_rounds_to_next_whole_second() -> None:
    assert next_occurrence("* * * * * *", datetime(2024, 1, 1, 0, 0, 0, 999_000)) == datetime(
        2024, 1, 1, 0, 0, 1
    )


def test_aware_input_is_converted_to_utc() -> None:
    after = datetime(2024, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))  # 08:00 UTC
    result = next_occurrence("0 0 9 * * *", after)
    assert result == datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
    assert result.tzinfo is UTC


def test_interval_schedule() -> None:
    assert parse_schedule("00:05:00") == IntervalSchedule(timedelta(minutes=5))
    assert next_occurrence("00:00:30", datetime(2024, 1, 1)) == datetime(2024, 1, 1, 0, 0, 30)


def test_parse_field_forms() -> None:
    assert parse_field("*/20", "second", 0, 59) == {0, 20, 40}
    assert parse_field("5/20", "second", 0, 59) == {5, 25, 45}
    assert parse_field("1-3,7", "hour", 0, 23) == {1, 2, 3, 7}
    assert parse_field("5-7", "dayOfWeek", 0, 6) == {5, 6, 0}


@pytest.mark.parametrize("bad", ["* * * *", "61 * * * * *", "*/0 * * * * *", "5-1 * * * * *", "a * * * * *"])
def test_invalid_expressions(bad: str) -> None:
    with pytest.raises(ValueError, match=r"fields|range|step|value"):
        CronSchedule.parse(bad)


def test_never_firing_schedule() -> None:
    with pytest.raises(ValueError, match="never"):
        next_occurrence("0 0 0 30 2 *", datetime(2024, 1, 1))
