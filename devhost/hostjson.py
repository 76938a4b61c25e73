"""host.json options the dev host honours, with the Functions host defaults."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

# .NET TimeSpan text: [-][d.]hh:mm[:ss[.fffffff]]
_TIMESPAN_RE = re.compile(
    r"^(?P<sign>-)?(?:(?P<days>\d+)\.)?(?P<hours>\d+):(?P<minutes>\d+)"
    r"(?::(?P<seconds>\d+)(?:\.(?P<fraction>\d{1,7}))?)?$"
)

# Storage queues return at most 32 messages per request; the host clamps to it.
MAX_BATCH_SIZE = 32
MIN_POLLING_INTERVAL = timedelta(milliseconds=100)


def parse_timespan(value: str | float) -> timedelta:
    """Parse a host.json duration.

    Strings use .NET TimeSpan syntax (``"hh:mm:ss"``, ``"d.hh:mm:ss.fff"``); plain
    numbers (or digit-only strings) are milliseconds, as the queue extension
    accepts for ``maxPollingInterval``.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid TimeSpan: {value!r}")
    if isinstance(value, (int, float)):
        return timedelta(milliseconds=value)
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return timedelta(milliseconds=float(text))
    match = _TIMESPAN_RE.match(text)
    if match is None:
        raise ValueError(f"invalid TimeSpan: {value!r}")
    hours, minutes = int(match["hours"]), int(match["minutes"])
    seconds = int(match["seconds"] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"invalid TimeSpan: {value!r}")
    fraction = (match["fraction"] or "").ljust(7, "0")
    result = timedelta(
        days=int(match["days"] or 0),
        hours=hours,
        minutes=minutes,
        seconds=seconds,
        microseconds=int(fraction) // 10,
    )
    return -result if match["sign"] else result


def _get(section: Mapping[str, Any], key: str) -> Any:
    """Case-insensitive lookup: host.json keys are case-insensitive in the host."""
    lowered = key.lower()
    for name, value in section.items():
        if name.lower() == lowered:
            return value
    return None


def _section(section: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    current: Mapping[str, Any] = section
    for key in path:
        value = _get(current, key)
        if not isinstance(value, Mapping):
            return {}
        current = value
    return current


@dataclass(frozen=True)
class QueueOptions:
    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: timedelta = timedelta(0)
    max_polling_interval: timedelta = timedelta(minutes=1)
    message_encoding: str = "base64"


@dataclass(frozen=True)
class HostOptions:
    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)


def _int_option(section: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = _get(section, key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"host.json: {key} must be an integer, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"host.json: {key} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"host.json: {key} must be >= {minimum}, got {number}")
    return number


def _timespan_option(section: Mapping[str, Any], key: str, default: timedelta) -> timedelta:
    value = _get(section, key)
    if value is None:
        return default
    if not isinstance(value, (str, int, float)):
        raise ValueError(f"host.json: {key} must be a TimeSpan, got {value!r}")
    return parse_timespan(value)


def parse_queue_options(section: Mapping[str, Any]) -> QueueOptions:
    batch_size = min(_int_option(section, "batchSize", 16, 1), MAX_BATCH_SIZE)
    # The extension defaults newBatchThreshold to half the batch size.
    threshold = _int_option(section, "newBatchThreshold", batch_size // 2, 0)
    encoding = _get(section, "messageEncoding")
    encoding = "base64" if encoding is None else str(encoding).lower()
    if encoding not in ("base64", "none"):
        raise ValueError(f"host.json: messageEncoding must be base64 or none, got {encoding!r}")
    polling = _timespan_option(section, "maxPollingInterval", timedelta(minutes=1))
    return QueueOptions(
        batch_size=batch_size,
        new_batch_threshold=threshold,
        max_dequeue_count=_int_option(section, "maxDequeueCount", 5, 1),
        visibility_timeout=max(_timespan_option(section, "visibilityTimeout", timedelta(0)), timedelta(0)),
        max_polling_interval=max(polling, MIN_POLLING_INTERVAL),
        message_encoding=encoding,
    )


def parse_host_options(data: Mapping[str, Any]) -> HostOptions:
    http = _section(data, "extensions", "http")
    prefix = _get(http, "routePrefix")
    route_prefix = "api" if prefix is None else str(prefix).strip("/")
    return HostOptions(
        route_prefix=route_prefix,
        queues=parse_queue_options(_section(data, "extensions", "queues")),
    )


def load_host_options(path: Path) -> HostOptions:
    """Read host.json; a missing file means all defaults."""
    if not path.is_file():
        return HostOptions()
    data = json.loads(path.read_text(encoding="utf-8-sig"))
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a JSON object")
    return parse_host_options(data)
