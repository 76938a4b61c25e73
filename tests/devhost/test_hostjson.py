"""host.json options and TimeSpan parsing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from devhost.hostjson import HostOptions, QueueOptions, load_host_options, parse_host_options, parse_timespan


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:30", timedelta(seconds=30)),
        ("01:02:03", timedelta(hours=1, minutes=2, seconds=3)),
        ("00:00:00.5", timedelta(milliseconds=500)),
        ("00:00:01.250", timedelta(seconds=1, milliseconds=250)),
        ("1.00:00:00", timedelta(days=1)),
        ("00:10", timedelta(minutes=10)),
        ("-00:00:05", timedelta(seconds=-5)),
        (2000, timedelta(seconds=2)),
        ("1500", timedelta(milliseconds=1500)),
    ],
)
def test_parse_timespan(text: str | int, expected: timedelta) -> None:
    assert parse_timespan(text) == expected


@pytest.mark.parametrize("bad", ["soon", "00:61:00", "1:2:3:4", ""])
def test_parse_timespan_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid TimeSpan"):
        parse_timespan(bad)


def test_defaults_when_missing(tmp_path: Path) -> None:
    assert load_host_options(tmp_path / "host.json") == HostOptions()
    defaults = parse_host_options({"version": "2.0"})
    assert defaults.route_prefix == "api"
    assert defaults.queues == QueueOptions(
        batch_size=16,
        new_batch_threshold=8,
        max_dequeue_count=5,
        visibility_timeout=timedelta(0),
        max_polling_interval=timedelta(minutes=1),
        message_encoding="base64",
    )


def test_reads_extensions(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text(
        json.dumps(
            {
                "version": "2.0",
                "extensions": {
                    "http": {"routePrefix": "/"},
                    "queues": {
                        "batchSize": 64,
                        "newBatchThreshold": 1,
                        "maxDequeueCount": 2,
                        "visibilityTimeout": "00:00:10",
                        "maxPollingInterval": "00:00:02",
                        "messageEncoding": "None",
                    },
                },
            }
        )
    )
    options = load_host_options(path)
    assert options.route_prefix == ""
    assert options.queues == QueueOptions(
        batch_size=32,  # clamped to the storage service maximum
        new_batch_threshold=1,
        max_dequeue_count=2,
        visibility_timeout=timedelta(seconds=10),
        max_polling_interval=timedelta(seconds=2),
        message_encoding="none",
    )


def test_keys_are_case_insensitive_and_polling_has_a_floor() -> None:
    options = parse_host_options({"Extensions": {"Queues": {"BatchSize": 4, "maxPollingInterval": 10}}})
    assert options.queues.batch_size == 4
    assert options.queues.new_batch_threshold == 2
    assert options.queues.max_polling_interval == timedelta(milliseconds=100)


@pytest.mark.parametrize(
    "queues",
    [{"batchSize": 0}, {"messageEncoding": "utf8"}, {"maxDequeueCount": "x"}, {"visibilityTimeout": []}],
)
def test_invalid_values(queues: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"^host\.json: "):
        parse_host_options({"extensions": {"queues": queues}})
