"""`python -m registry bulk MANIFEST`: register many models through the job queue.

The manifest is JSON Lines, one registration a line: {"name", "version", "owner", "body"}
(optionally "owner_name"), where "body" is what the PUT would send. Every line is validated
first and all bad lines are reported with their numbers before anything is sent; the good ones
then go to the configured job queue in batches. Re-running a manifest registers nothing twice:
the worker treats an identical registration as a replay.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from registry.bootstrap import build
from registry.domain.jobs import RegisterJob
from registry.domain.model import Registration
from registry.domain.vocabulary import State
from registry.identity import Principal
from registry.services.dependencies import Dependencies
from registry.services.registration import request_context, request_digest_input
from registry.settings import Settings, SettingsError, load_settings
from registry.validation import InvalidRequest, is_identifier, parse_registration


@dataclass(frozen=True)
class BadLine:
    number: int
    reason: str


def read_manifest(lines: TextIO, settings: Settings) -> tuple[list[RegisterJob], list[BadLine]]:
    """Every line validated as the worker will validate it; nothing is sent here."""
    jobs: list[RegisterJob] = []
    bad: list[BadLine] = []
    seen: set[tuple[str, str, str]] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            job = _parse_line(line, settings)
        except ValueError as problem:
            bad.append(BadLine(number, str(problem)))
            continue
        key = (job.owner, job.name, job.version)
        if key in seen:
            bad.append(BadLine(number, f"{job.name} {job.version} of {job.owner} appears on an earlier line"))
            continue
        seen.add(key)
        jobs.append(job)
    return jobs, bad


def _parse_line(line: str, settings: Settings) -> RegisterJob:
    try:
        entry: Any = json.loads(line)
    except json.JSONDecodeError as problem:
        raise ValueError(f"not JSON: {problem}") from None
    if not isinstance(entry, dict):
        raise ValueError("must be a JSON object with name, version, owner and body")
    missing = [key for key in ("name", "version", "owner", "body") if key not in entry]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    owner, name, version = (str(entry[key]) for key in ("owner", "name", "version"))
    for key, value in (("owner", owner), ("name", name), ("version", version)):
        if not is_identifier(value):
            raise ValueError(f"{key} {value!r} is not a valid identifier")
    if owner not in settings.bulk_owners:
        raise ValueError(f"owner {owner!r} is not allowed to register in bulk (REGISTRY_BULK_OWNERS)")
    owner_name = str(entry.get("owner_name") or owner)
    try:
        parse_registration(
            entry["body"], request_context(name, version, Principal(owner, owner_name), settings)
        )
    except InvalidRequest as problem:
        raise ValueError(str(problem)) from None
    job = RegisterJob(owner=owner, name=name, version=version, body=entry["body"], owner_name=owner_name)
    size, limit = len(job.to_json().encode()), max_message_bytes(settings)
    if size > limit:
        raise ValueError(f"the registration takes {size} bytes as a queue message; the queue takes {limit}")
    return job


def max_message_bytes(settings: Settings) -> int:
    """The largest job the configured queue takes: a Storage queue message is 64 KiB once base64
    encoded; a Service Bus message 256 KiB on the Standard tier (less a margin for its headers)."""
    return 48 * 1024 if settings.job_queue_kind == "storage" else 250 * 1024


def send(jobs: list[RegisterJob], deps: Dependencies, batch_size: int, progress: bool) -> None:
    from tqdm import tqdm  # a command-line nicety: not a dependency of the deployed app

    with tqdm(total=len(jobs), unit="reg", desc="sending", disable=not progress, file=sys.stderr) as bar:
        for start in range(0, len(jobs), batch_size):
            batch = jobs[start : start + batch_size]
            deps.queue.send_batch(batch)
            bar.update(len(batch))


Key = tuple[str, str, str]


def _outcome(
    registration: Registration | None, same_request: bool, etag_before: str | None
) -> tuple[str, str] | None:
    """The line's outcome, or None while it is still running (or not yet looked at)."""
    if registration is None:
        return None
    if registration.state is State.FAILED and registration.etag == etag_before:
        return None  # a failure left by an earlier run: this run's message restarts or replaces it
    if not same_request and not registration.is_placeholder:
        return ("Conflict", "already registered with a different body; this line was not registered")
    if registration.state is State.IN_PROGRESS:
        return None
    return (registration.state.value, registration.message)


def snapshot(jobs: list[RegisterJob], deps: Dependencies) -> dict[Key, str | None]:
    """Each line's record as it stands before sending (its ETag), to tell this run's outcome
    from what an earlier run left."""
    records = {(j.owner, j.name, j.version): deps.store.get(j.owner, j.name, j.version) for j in jobs}
    return {key: record.etag if record else None for key, record in records.items()}


def wait(
    jobs: list[RegisterJob], deps: Dependencies, timeout: float, before: dict[Key, str | None] | None = None
) -> dict[Key, tuple[str, str]]:
    """Follow each line's registration until it ends (or the timeout): key -> (state, message)."""
    before = before or {}
    replay_keys = {(j.owner, j.name, j.version): _replay_key(j, deps.settings) for j in jobs}
    pending = set(replay_keys)
    results: dict[Key, tuple[str, str]] = {}
    deadline = time.monotonic() + timeout
    while True:
        for key in sorted(pending):
            record = deps.store.get(*key)
            same = (
                record is not None
                and deps.sealer.digest_matches(record.body_digest, replay_keys[key]) is True
            )
            outcome = _outcome(record, same, before.get(key))
            if outcome is not None:
                results[key] = outcome
                pending.discard(key)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(1)
    for key in pending:
        record = deps.store.get(*key)
        if record is None:
            results[key] = ("NotRecorded", "not recorded when the wait ended")
        elif record.state is State.IN_PROGRESS:
            results[key] = ("InProgress", "still running when the wait ended")
        else:
            results[key] = (record.state.value, record.message)
    return results


def _replay_key(job: RegisterJob, settings: Settings) -> dict[str, Any]:
    caller = Principal(job.owner, job.owner_name or job.owner)
    request = parse_registration(job.body, request_context(job.name, job.version, caller, settings))
    return request_digest_input(request)


def summary(results: dict[Key, tuple[str, str]]) -> str:
    counts: dict[str, int] = {}
    for state, _ in results.values():
        counts[state] = counts.get(state, 0) + 1
    lines = ["state        count", *(f"{state:<12} {count:>5}" for state, count in sorted(counts.items()))]
    failed = [
        (key, message) for key, (state, message) in sorted(results.items()) if state != State.FINISHED.value
    ]
    if failed:
        lines += ["", f"{'owner':<20} {'name':<24} {'version':<12} reason"]
        lines += [f"{o:<20} {n:<24} {v:<12} {message}" for (o, n, v), message in failed]
    return "\n".join(lines)


def load_app_settings(path: Path | None) -> Settings:
    """The app settings: the environment, over the Values of a local.settings.json file."""
    import os

    values = dict(os.environ)
    if path is not None and path.exists():
        file_values = json.loads(path.read_text()).get("Values", {})
        values = {**{k: str(v) for k, v in file_values.items()}, **values}
    return load_settings(values)


def main(argv: list[str], deps: Dependencies | None = None) -> int:
    """The command; `deps` (tests) replaces what the settings would build."""
    parser = argparse.ArgumentParser(prog="python -m registry bulk", description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path, help="JSON Lines: one registration a line")
    parser.add_argument(
        "--wait", action="store_true", help="follow the registrations to the end, then summarize"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait at most (with --wait)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--settings", type=Path, default=Path("local.settings.json"), help="app settings file"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        settings = deps.settings if deps is not None else load_app_settings(args.settings)
    except SettingsError as problem:
        print(f"settings: {problem}", file=sys.stderr)
        return 2
    with args.manifest.open() as lines:
        jobs, bad = read_manifest(lines, settings)
    for line in bad:
        print(f"{args.manifest}:{line.number}: {line.reason}", file=sys.stderr)
    print(f"{len(jobs)} valid, {len(bad)} invalid line(s)", file=sys.stderr)
    deps = deps or build(settings)
    before = snapshot(jobs, deps) if args.wait else {}
    send(jobs, deps, args.batch_size, progress=not args.no_progress)
    if args.wait:
        results = wait(jobs, deps, args.timeout, before)
        print(summary(results))
        if any(state != State.FINISHED.value for state, _ in results.values()):
            return 1
    return 1 if bad else 0
