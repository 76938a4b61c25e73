"""Timer schedules: NCRONTAB expressions and TimeSpan intervals, in UTC (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from devhost.hostjson import parse_timespan

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")

# (name, low, high, symbolic names starting at `low`)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("dayOfWeek", 0, 6, _DAYS),
)

# Leap-day schedules restricted to a weekday repeat on a 28-year cycle.
_SEARCH_YEARS = 30


def _value(text: str, low: int, high: int, names: tuple[str, ...], field: str) -> int:
    upper = text.upper()
    if upper in names:
        return low + names.index(upper)
    if not text.isdigit():
        raise ValueError(f"invalid {field} value {text!r}")
    number = int(text)
    if field == "dayOfWeek" and number == 7:
        return 0  # 7 is an alias for Sunday in most cron dialects
    if not low <= number <= high:
        raise ValueError(f"{field} value {number} out of range {low}-{high}")
    return number


def parse_field(text: str, field: str, low: int, high: int, names: tuple[str, ...] = ()) -> frozenset[int]:
    """Parse one NCRONTAB field: ``*``, ``*/n``, ``a``, ``a-b``, ``a-b/n``, ``a/n`` and lists."""
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ValueError(f"empty item in {field} field {text!r}")
        range_part, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"invalid step in {field} field {text!r}")
            step = int(step_text)
        if range_part == "*":
            start, stop = low, high
        elif "-" in range_part:
            first, _, last = range_part.partition("-")
            start = _value(first, low, high, names, field)
            stop = _value(last, low, high, names, field)
            if field == "dayOfWeek" and last == "7":
                stop = 6  # "x-7" means through Sunday; 0 is covered below
                values.add(0)
            if start > stop:
                raise ValueError(f"invalid range in {field} field {text!r}")
        else:
            start = _value(range_part, low, high, names, field)
            stop = high if step_text else start
        values.update(range(start, stop + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 = Sunday

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        fields = expression.split()
        if len(fields) == 5:
            fields.insert(0, "0")  # classic 5-field cron: fire at second 0
        if len(fields) != 6:
            raise ValueError(f"NCRONTAB expression needs 6 fields, got {expression!r}")
        sets = [
            parse_field(text, name, low, high, names)
            for text, (name, low, high, names) in zip(fields, _FIELDS, strict=True)
        ]
        return cls(*sets)

    def next_after(self, after: datetime) -> datetime:
        """First matching time strictly after ``after`` (naive, UTC)."""
        t = after.replace(microsecond=0) + timedelta(seconds=1)
        limit = t.year + _SEARCH_YEARS
        # Day-of-month and day-of-week must both match (NCrontab semantics).
        while t.year <= limit:
            if t.month not in self.months:
                year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = datetime(year, month, 1)
            elif t.day not in self.days or (t.weekday() + 1) % 7 not in self.days_of_week:
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
            elif t.second not in self.seconds:
                t += timedelta(seconds=1)
            else:
                return t
        raise ValueError("schedule never fires")


@dataclass(frozen=True)
class IntervalSchedule:
    """A TimeSpan schedule ("hh:mm:ss"), which the host runs at a constant interval."""

    interval: timedelta

    def next_after(self, after: datetime) -> datetime:
        return after + self.interval


Schedule = CronSchedule | IntervalSchedule


def parse_schedule(text: str) -> Schedule:
    text = text.strip()
    if re.fullmatch(r"(\d+\.)?\d+:\d+(:\d+)?", text):
        interval = parse_timespan(text)
        if interval <= timedelta(0):
            raise ValueError(f"interval schedule must be positive: {text!r}")
        return IntervalSchedule(interval)
    return CronSchedule.parse(text)


def next_occurrence(schedule: str, after: datetime) -> datetime:
    """Next firing time after ``after``, computed in UTC.

    Aware datetimes are converted to UTC and the result is aware (UTC); naive
    ones are taken as UTC and the result is naive.
    """
    aware = after.tzinfo is not None
    naive_utc = after.astimezone(UTC).replace(tzinfo=None) if aware else after
    result = parse_schedule(schedule).next_after(naive_utc)
    return result.replace(tzinfo=UTC) if aware else result
