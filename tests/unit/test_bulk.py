"""Bulk registration against the in-memory fakes: the manifest reader, the worker's handling of a
registration job, the summary, and the command line on an in-memory queue that runs its jobs."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from registry import bulk
from registry.domain.jobs import CopyJob, Job, RegisterJob, parse_job
from registry.domain.model import INVALID_REGISTRATION, Registration
from registry.domain.vocabulary import State
from registry.identity import Principal
from registry.sealing import Sealer
from registry.services.copying import CopyPolicy, Outcome, process_job
from registry.services.dependencies import Dependencies
from registry.services.jobs import UnusableMessage, handle_message, register_from_queue
from registry.services.registration import register
from registry.settings import Settings
from tests.builders import make_deps, make_settings, registration_body, settings_env
from tests.fakes import FakeBlobCopier, FakeClock, FakeJobQueue, FakeRegistrationStore

POLICY = CopyPolicy(block_size=4 * 1024 * 1024, concurrency=2, time_budget_seconds=60, lease_seconds=90)


@pytest.fixture
def settings() -> Settings:
    return make_settings(REGISTRY_BULK_OWNERS="alice, bulkbot")


Run = Callable[[RegisterJob], str]


@pytest.fixture
def run(deps: Dependencies) -> Run:
    """The worker's handling of a bulk registration, on the fakes."""

    def call(job: RegisterJob) -> str:
        return register_from_queue(job, deps)

    return call


def line(name: str = "codegen", version: str = "1.0", owner: str = "alice", **extra: Any) -> str:
    entry: dict[str, Any] = {"name": name, "version": version, "owner": owner, "body": registration_body()}
    entry.update(extra)
    return json.dumps(entry)


def invalid_body() -> dict[str, Any]:
    body = registration_body()
    body["model_config"]["type"] = "TRANSFORMER"
    return body


def copier_for(*bodies: dict[str, Any]) -> FakeBlobCopier:
    """A copier whose sources are the bodies' files (each URL's content derived from its URL)."""
    copier = FakeBlobCopier()
    for body in bodies:
        for url in body["model_files"].values():
            copier.put_source(url, url.encode() * 3)
    return copier


# --------------------------------------------------------------------------------------------
# read_manifest
# --------------------------------------------------------------------------------------------


def test_read_manifest_reports_every_bad_line_with_its_number_and_keeps_the_good_ones_in_order(
    settings: Settings,
) -> None:
    text = "\n".join(
        [
            line("first"),  # 1
            '{"name": "broken", ',  # 2
            "",  # 3
            "[1, 2, 3]",  # 4
            json.dumps({"name": "nobody", "owner": "alice"}),  # 5
            line("-starts-with-a-dash"),  # 6
            line("second", version="status"),  # 7: a reserved word
            line("theirs", owner="mallory"),  # 8
            line("typed", body=invalid_body()),  # 9
            line("second"),  # 10
            line("first"),  # 11: the same as line 1
            "   ",  # 12
            line("third", owner="bulkbot", owner_name="Bulk Bot"),  # 13
            line("first", owner="bulkbot"),  # 14: another owner's "first" is another model
        ]
    )

    jobs, bad = bulk.read_manifest(io.StringIO(text + "\n"), settings)

    assert [(j.owner, j.name, j.version) for j in jobs] == [
        ("alice", "first", "1.0"),
        ("alice", "second", "1.0"),
        ("bulkbot", "third", "1.0"),
        ("bulkbot", "first", "1.0"),
    ]
    assert jobs[0] == RegisterJob("alice", "first", "1.0", registration_body(), owner_name="alice")
    assert jobs[2].owner_name == "Bulk Bot"
    reasons = {b.number: b.reason for b in bad}
    assert sorted(reasons) == [2, 4, 5, 6, 7, 8, 9, 11], bad
    assert reasons[2].startswith("not JSON")
    assert "JSON object" in reasons[4]
    assert reasons[5] == "missing version, body"
    assert "name '-starts-with-a-dash' is not a valid identifier" in reasons[6]
    assert "version 'status' is not a valid identifier" in reasons[7]
    assert "'mallory' is not allowed" in reasons[8] and "REGISTRY_BULK_OWNERS" in reasons[8]
    assert "model_config.type" in reasons[9] and "'ENCODER', 'DECODER' or 'SEQ2SEQ'" in reasons[9]
    assert "earlier line" in reasons[11]


def test_read_manifest_names_every_invalid_field_of_a_body(settings: Settings) -> None:
    body = invalid_body()
    body["model_files"]["extra.bin"] = "https://evil.example.com/extra.bin"
    del body["model_metainfo"]["index_page_file"]

    _, bad = bulk.read_manifest(io.StringIO(line(body=body)), settings)

    assert [b.number for b in bad] == [1]
    assert "model_config.type" in bad[0].reason
    assert "model_metainfo.index_page_file" in bad[0].reason
    assert "model_files['extra.bin']: source host 'evil.example.com' is not allowed" in bad[0].reason


def test_a_manifest_of_blank_lines_only_has_no_jobs_and_no_bad_lines(settings: Settings) -> None:
    assert bulk.read_manifest(io.StringIO("\n  \n\t\n"), settings) == ([], [])


def test_with_no_bulk_owners_set_every_line_is_refused(store: FakeRegistrationStore) -> None:
    jobs, bad = bulk.read_manifest(io.StringIO(line() + "\n" + line("other")), make_settings())
    assert jobs == []
    assert [b.number for b in bad] == [1, 2]


# --------------------------------------------------------------------------------------------
# register_from_queue
# --------------------------------------------------------------------------------------------


def test_an_allowed_owners_valid_job_is_recorded_in_progress_and_one_copy_job_is_enqueued(
    run: Run,
    store: FakeRegistrationStore,
    queue: FakeJobQueue,
) -> None:
    job = RegisterJob("alice", "codegen", "1.0", registration_body(), owner_name="Alice")

    outcome = run(job)

    assert outcome == "InProgress"
    registration = store.peek("alice", "codegen", "1.0")
    assert registration is not None
    assert registration.state is State.IN_PROGRESS
    assert registration.owner_name == "Alice"
    assert registration.file_names == sorted(registration_body()["model_files"])
    assert "sig=" not in json.dumps(registration.document)
    assert queue.jobs == [CopyJob("alice", "codegen", "1.0", registration.registration_id)]


def test_a_job_arriving_through_handle_message_is_registered(
    store: FakeRegistrationStore, queue: FakeJobQueue, sealer: Sealer, settings: Settings
) -> None:
    job = RegisterJob("bulkbot", "codegen", "2.0", registration_body())

    outcome = handle_message(
        job.to_json().encode(),
        make_deps(settings, store=store, queue=queue, sealer=sealer),
        redelivered=False,
    )

    assert outcome == "InProgress"
    assert parse_job(job.to_json()) == RegisterJob(
        "bulkbot", "codegen", "2.0", registration_body(), "bulkbot"
    )
    assert len(queue.jobs) == 1


def test_an_identical_job_after_the_copy_finished_enqueues_nothing_and_records_nothing(
    run: Run,
    store: FakeRegistrationStore,
    queue: FakeJobQueue,
    sealer: Sealer,
    clock: FakeClock,
) -> None:
    body = registration_body()
    copier = copier_for(body)
    job = RegisterJob("alice", "codegen", "1.0", body)
    run(job)
    (copy_job,) = queue.take()
    deps = make_deps(
        make_settings(REGISTRY_BULK_OWNERS="alice"), store=store, queue=queue, blobs=copier, sealer=sealer
    )
    assert process_job(copy_job, deps, policy=POLICY) is Outcome.FINISHED
    finished = store.peek("alice", "codegen", "1.0")
    assert finished is not None and finished.state is State.FINISHED
    calls, stages = len(store.calls), copier.staged_count()

    clock.advance(3600)
    again = run(job)

    assert again == "Finished"
    assert queue.sent == []
    after = store.peek("alice", "codegen", "1.0")
    assert after == finished and after is not None and after.etag == finished.etag
    assert [c for c in store.calls[calls:] if c not in ("get",)] == ["insert"], "only the refused insert"
    assert copier.staged_count() == stages
    assert len(store.all()) == 1


def test_an_identical_job_while_a_worker_copies_enqueues_nothing_and_records_nothing(
    run: Run,
    store: FakeRegistrationStore,
    queue: FakeJobQueue,
    clock: FakeClock,
) -> None:
    job = RegisterJob("alice", "codegen", "1.0", registration_body())
    run(job)
    queue.take()
    copying = store.update("alice", "codegen", "1.0", picked_up=True, last_progress_at=clock())

    clock.advance(5)
    outcome = run(job)

    assert outcome == "InProgress"
    assert queue.sent == []
    after = store.peek("alice", "codegen", "1.0")
    assert after == copying and after is not None and after.etag == copying.etag


def test_an_identical_job_before_any_worker_started_resends_the_copy_under_one_message_id(
    run: Run,
    store: FakeRegistrationStore,
    queue: FakeJobQueue,
) -> None:
    """As an HTTP replay does: the first copy message may have been lost with the process that
    recorded it. The resend's message id is deterministic, so Service Bus drops repeats."""
    job = RegisterJob("alice", "codegen", "1.0", registration_body())
    run(job)
    first = store.peek("alice", "codegen", "1.0")
    assert first is not None
    queue.take()

    for _ in range(2):
        run(job)

    resent = queue.take()
    assert len(resent) == 2
    assert {j.message_id for j in resent} == {
        f"copy:{first.registration_id}:replay:{int(first.last_progress_at.timestamp())}"
    }
    assert store.peek("alice", "codegen", "1.0") == first
    assert len(store.all()) == 1


def test_an_invalid_body_is_recorded_failed_naming_the_field_and_the_rule_and_a_resend_changes_nothing(
    run: Run,
    store: FakeRegistrationStore,
    queue: FakeJobQueue,
    clock: FakeClock,
) -> None:
    job = RegisterJob("alice", "typed", "1.0", invalid_body())

    outcome = run(job)

    assert outcome == "invalid"
    failed = store.peek("alice", "typed", "1.0")
    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.message.startswith("Invalid registration: ")
    assert "model_config.type: Input should be 'ENCODER', 'DECODER' or 'SEQ2SEQ'" in failed.message
    assert failed.sealed == b"" and "sig=" not in failed.message
    assert queue.sent == []

    clock.advance(60)
    again = run(job)

    assert again == "invalid"
    after = store.peek("alice", "typed", "1.0")
    assert after == failed and after is not None and after.etag == failed.etag
    assert queue.sent == []
    assert len(store.all()) == 1


def test_an_invalid_job_does_not_touch_an_existing_registration_of_that_name(
    run: Run,
    store: FakeRegistrationStore,
    queue: FakeJobQueue,
) -> None:
    good = RegisterJob("alice", "codegen", "1.0", registration_body())
    run(good)
    before = store.peek("alice", "codegen", "1.0")
    queue.take()

    bad = RegisterJob("alice", "codegen", "1.0", invalid_body())
    assert run(bad) == "invalid"

    after = store.peek("alice", "codegen", "1.0")
    assert after == before and after is not None and after.state is State.IN_PROGRESS
    assert queue.sent == []


def test_a_valid_job_that_conflicts_with_an_existing_registration_changes_nothing(
    run: Run,
    store: FakeRegistrationStore,
    queue: FakeJobQueue,
) -> None:
    run(RegisterJob("alice", "codegen", "1.0", registration_body()))
    before = store.peek("alice", "codegen", "1.0")
    queue.take()
    other = registration_body()
    other["model_config"]["description"] = "something else"

    outcome = run(RegisterJob("alice", "codegen", "1.0", other))

    assert outcome == "conflict"
    assert store.peek("alice", "codegen", "1.0") == before
    assert queue.sent == []


@pytest.mark.parametrize(
    ("owner", "name", "version", "reason"),
    [
        ("mallory", "codegen", "1.0", "'mallory' is not allowed"),
        ("alice", "-dash", "1.0", "valid owner, name and version"),
        ("alice", "codegen", "status", "valid owner, name and version"),
        ("", "codegen", "1.0", "valid owner, name and version"),
        ("alice", "a/b", "1.0", "valid owner, name and version"),
    ],
)
def test_an_owner_not_allowed_or_an_unusable_name_raises_unusable_message_and_records_nothing(
    store: FakeRegistrationStore,
    queue: FakeJobQueue,
    sealer: Sealer,
    settings: Settings,
    owner: str,
    name: str,
    version: str,
    reason: str,
) -> None:
    job = RegisterJob(owner, name, version, registration_body())

    with pytest.raises(UnusableMessage, match=reason):
        register_from_queue(job, make_deps(settings, store=store, queue=queue, sealer=sealer))

    assert store.all() == []
    assert queue.sent == []
    assert [c for c in store.calls if c != "get"] == []


@pytest.mark.parametrize(
    "message",
    [
        b"not json at all",
        b"[1]",
        json.dumps({"schema": 99, "kind": "register"}).encode(),
        json.dumps({"schema": 1, "kind": "unknown"}).encode(),
        json.dumps({"schema": 1, "kind": "register", "owner": "alice", "name": "x"}).encode(),
    ],
)
def test_a_message_that_is_no_job_is_unusable(
    store: FakeRegistrationStore, queue: FakeJobQueue, sealer: Sealer, settings: Settings, message: bytes
) -> None:
    with pytest.raises(UnusableMessage):
        handle_message(
            message, make_deps(settings, store=store, queue=queue, sealer=sealer), redelivered=False
        )
    assert store.all() == [] and queue.sent == []


def test_the_worker_refuses_an_owner_that_its_own_settings_do_not_allow(
    store: FakeRegistrationStore, queue: FakeJobQueue, sealer: Sealer
) -> None:
    """The allow-list that counts is the worker's: a producer with other settings gets nowhere."""
    job = RegisterJob("alice", "codegen", "1.0", registration_body())
    with pytest.raises(UnusableMessage):
        register_from_queue(job, make_deps(make_settings(), store=store, queue=queue, sealer=sealer))
    assert store.all() == []


# --------------------------------------------------------------------------------------------
# wait and summary
# --------------------------------------------------------------------------------------------


def test_summary_lists_the_counts_and_the_failed_ones_with_their_reasons() -> None:
    results = {
        ("alice", "b", "1"): ("Finished", "done"),
        ("alice", "a", "1"): ("Finished", "done"),
        ("alice", "c", "2"): ("Failed", "Invalid registration: model_config.type: Input should be ..."),
        ("bulkbot", "d", "1"): ("InProgress", "still running when the wait ended"),
        ("bulkbot", "e", "1"): ("NotRecorded", "still running when the wait ended"),
    }

    table = bulk.summary(results).splitlines()

    assert table[:5] == [
        "state        count",
        "Failed           1",
        "Finished         2",
        "InProgress       1",
        "NotRecorded      1",
    ]
    assert table[5] == ""
    assert table[6].split() == ["owner", "name", "version", "reason"]
    rows = table[7:]
    assert len(rows) == 3
    assert rows[0].split()[:3] == ["alice", "c", "2"] and rows[0].endswith(
        "Invalid registration: model_config.type: Input should be ..."
    )
    assert rows[1].split()[:3] == ["bulkbot", "d", "1"] and "still running" in rows[1]
    assert rows[2].split()[:3] == ["bulkbot", "e", "1"]
    assert not any("Finished" in row or " a " in row for row in rows)


def test_summary_of_all_finished_has_no_failure_section() -> None:
    table = bulk.summary({("alice", "a", "1"): ("Finished", ""), ("alice", "b", "1"): ("Finished", "")})
    assert table.splitlines() == ["state        count", "Finished         2"]


def test_wait_reports_ended_registrations_and_what_was_still_running_or_never_recorded(
    run: Run,
    store: FakeRegistrationStore,
    queue: FakeJobQueue,
    sealer: Sealer,
    settings: Settings,
    clock: FakeClock,
) -> None:
    jobs = [
        RegisterJob("alice", name, "1", registration_body()) for name in ("done", "running", "lost", "other")
    ]
    for job in jobs[:2]:
        run(job)
    store.update("alice", "done", "1", state=State.FINISHED, message="All files copied")
    # A worker whose settings allow no such source host records the line invalid.
    strict = make_settings(REGISTRY_BULK_OWNERS="alice", REGISTRY_ALLOWED_SOURCE_HOSTS="other.example.com")
    register_from_queue(jobs[3], make_deps(strict, store=store, queue=queue, sealer=sealer, now=clock))
    deps: Any = SimpleNamespace(store=store, sealer=sealer, settings=settings)

    results = bulk.wait(jobs, deps, timeout=0.5)

    assert results.pop(("alice", "other", "1"))[0:1] == ("Failed",)
    assert results == {
        ("alice", "done", "1"): ("Finished", "All files copied"),
        ("alice", "running", "1"): ("InProgress", "still running when the wait ended"),
        ("alice", "lost", "1"): ("NotRecorded", "not recorded when the wait ended"),
    }


def test_wait_names_the_workers_reason_for_an_invalid_line(
    store: FakeRegistrationStore, queue: FakeJobQueue, sealer: Sealer, settings: Settings, clock: FakeClock
) -> None:
    job = RegisterJob("alice", "codegen", "1", registration_body())
    strict = make_settings(REGISTRY_BULK_OWNERS="alice", REGISTRY_ALLOWED_SOURCE_HOSTS="other.example.com")
    register_from_queue(job, make_deps(strict, store=store, queue=queue, sealer=sealer, now=clock))
    deps: Any = SimpleNamespace(store=store, sealer=sealer, settings=settings)

    ((state, message),) = bulk.wait([job], deps, timeout=5).values()

    assert state == "Failed"
    assert message.startswith("Invalid registration: model_files['score.py']: source host")


def test_wait_reports_a_registration_that_ended_after_the_last_poll_as_ended(
    run: Run,
    store: FakeRegistrationStore,
    sealer: Sealer,
    settings: Settings,
) -> None:
    job = RegisterJob("alice", "codegen", "1.0", registration_body())
    run(job)
    store.update("alice", "codegen", "1.0", state=State.FINISHED, message="All files copied")
    deps: Any = SimpleNamespace(store=store, sealer=sealer, settings=settings)

    results = bulk.wait([job], deps, timeout=0)  # the deadline passed before the first poll

    assert results == {("alice", "codegen", "1.0"): ("Finished", "All files copied")}


def test_wait_reports_a_line_that_conflicts_with_an_existing_registration(
    run: Run,
    store: FakeRegistrationStore,
    sealer: Sealer,
    settings: Settings,
) -> None:
    run(RegisterJob("alice", "codegen", "1.0", registration_body()))
    store.update("alice", "codegen", "1.0", state=State.FINISHED, message="")
    other = registration_body()
    other["model_config"]["description"] = "a different model under the same name and version"
    job = RegisterJob("alice", "codegen", "1.0", other)
    assert run(job) == "conflict"
    deps: Any = SimpleNamespace(store=store, sealer=sealer, settings=settings)

    results = bulk.wait([job], deps, timeout=5)

    state, message = results[("alice", "codegen", "1.0")]
    assert state == "Conflict"
    assert "different body" in message


# --------------------------------------------------------------------------------------------
# The command line, on an in-memory queue whose worker runs each job as it is sent
# --------------------------------------------------------------------------------------------


@dataclass
class InlineWorkerQueue:
    """A JobQueue whose messages go through handle_message at once (and copies run to the end)."""

    deps: Dependencies | None = None  # set once built around this queue
    pending: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    poisoned: list[tuple[str, str]] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    delay: float = 0  # seconds before the worker runs what a batch sent (0: at once)
    timers: list[threading.Timer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def join(self) -> None:
        for timer in self.timers:
            timer.join()

    def send(self, job: Job, delay_seconds: float = 0) -> None:
        self.pending.append(job.to_json())

    def send_batch(self, jobs: Sequence[Job]) -> None:
        self.batches.append(len(jobs))
        for job in jobs:
            self.send(job)
        if self.delay:
            timer = threading.Timer(self.delay, self.run)
            self.timers.append(timer)
            timer.start()
        else:
            self.run()

    def run(self) -> None:
        with self._lock:
            self._run()

    def _run(self) -> None:
        while self.pending:
            message = self.pending.pop(0)
            try:
                assert self.deps is not None
                outcome = handle_message(message, self.deps, redelivered=False)
            except UnusableMessage as problem:
                self.poisoned.append((message, str(problem)))
                continue
            self.outcomes.append(f"{json.loads(message)['kind']}:{outcome}")


@dataclass
class Cli:
    """`python -m registry bulk`, run in-process against the fakes."""

    deps: Dependencies
    worker: InlineWorkerQueue
    store: FakeRegistrationStore
    copier: FakeBlobCopier
    path: Path  # the manifest
    settings_path: Path

    def __call__(self, manifest: str, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        """Run it on this manifest; returns (exit code, out, err)."""
        self.path.write_text(manifest)
        argv = [str(self.path), "--no-progress", "--settings", str(self.settings_path), *args]
        code = bulk.main(argv, self.deps)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    def record(self, owner: str, name: str, version: str) -> Registration:
        found = self.store.peek(owner, name, version)
        assert found is not None
        return found


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Cli]:
    env = settings_env(REGISTRY_BULK_OWNERS="alice,bulkbot", REGISTRY_COPY_BLOCK_MIB="4")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = bulk.load_app_settings(None)
    store, worker, copier = FakeRegistrationStore(), InlineWorkerQueue(), copier_for(registration_body())
    deps = make_deps(settings, store=store, queue=worker, blobs=copier)
    worker.deps = deps
    yield Cli(deps, worker, store, copier, tmp_path / "manifest.jsonl", tmp_path / "none.json")
    worker.join()


def test_the_cli_reports_bad_lines_sends_the_good_ones_in_batches_and_summarizes(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [line(f"model{i}") for i in range(5)]
    manifest = "\n".join([good[0], "{oops", good[1], line("x", owner="mallory"), *good[2:], ""])

    code, out, err = cli(manifest, "--wait", "--batch-size", "2", "--timeout", "5", capsys=capsys)

    assert code == 1, "a bad line fails the run even when every good one finished"
    path = cli.path
    assert f"{path}:2: not JSON" in err
    assert f"{path}:4: owner 'mallory' is not allowed" in err
    assert "5 valid, 2 invalid line(s)" in err
    assert cli.worker.batches == [2, 2, 1]
    assert out.splitlines() == ["state        count", "Finished         5"]
    assert all(r.state is State.FINISHED for r in cli.store.all()) and len(cli.store.all()) == 5


def test_the_cli_exits_0_when_every_line_is_good_and_finished(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli("\n".join(line(f"m{i}") for i in range(3)), "--wait", capsys=capsys)
    assert (code, out.splitlines()[-1]) == (0, "Finished         3"), err


def test_the_cli_exits_1_and_names_the_reason_when_a_registration_fails(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    body = registration_body()
    body["model_files"]["missing.bin"] = body["model_files"]["score.py"].replace("score.py", "missing.bin")

    code, out, err = cli(
        line("good") + "\n" + line("gone", body=body), "--wait", "--timeout", "5", capsys=capsys
    )

    assert code == 1
    assert "2 valid, 0 invalid line(s)" in err
    assert "Failed           1" in out and "Finished         1" in out
    (failed_row,) = [row for row in out.splitlines() if row.startswith("alice")]
    assert failed_row.split()[:3] == ["alice", "gone", "1.0"]
    assert "missing.bin" in failed_row or "404" in failed_row or "exist" in failed_row


def test_rerunning_a_manifest_registers_nothing_twice(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = "\n".join(line(f"m{i}") for i in range(4))
    assert cli(manifest, "--wait", capsys=capsys)[0] == 0
    before = {r.key: (r.registration_id, r.updated_at, r.etag) for r in cli.store.all()}
    commits = len(cli.copier.commit_calls)

    code, out, _ = cli(manifest, "--wait", capsys=capsys)

    assert code == 0 and "Finished         4" in out
    assert {r.key: (r.registration_id, r.updated_at, r.etag) for r in cli.store.all()} == before
    assert len(cli.copier.commit_calls) == commits
    assert cli.worker.outcomes[-4:] == ["register:Finished"] * 4


def test_without_wait_the_cli_sends_and_exits_by_the_manifest_alone(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(line("a") + "\n" + line("b"), capsys=capsys)
    assert (code, out) == (0, "")
    assert "2 valid, 0 invalid line(s)" in err
    assert cli(line("c") + "\n[]\n", capsys=capsys)[0] == 1


# --------------------------------------------------------------------------------------------
# Corrections and limits
# --------------------------------------------------------------------------------------------


def test_a_corrected_job_after_an_invalid_one_registers(
    run: Run,
    store: FakeRegistrationStore,
    queue: FakeJobQueue,
    clock: FakeClock,
) -> None:
    run(RegisterJob("alice", "typed", "1.0", invalid_body()))
    clock.advance(60)

    outcome = run(RegisterJob("alice", "typed", "1.0", registration_body()))

    assert outcome == "InProgress"
    registration = store.peek("alice", "typed", "1.0")
    assert registration is not None and registration.state is State.IN_PROGRESS
    assert [j.registration_id for j in queue.jobs] == [registration.registration_id]


def test_a_line_too_large_for_a_queue_message_is_reported_as_bad(settings: Settings) -> None:
    body = registration_body()
    url = body["model_files"]["weights/model.bin"]
    for i in range(300):
        body["model_files"][f"shards/part-{i:04d}.bin"] = url.replace("model.bin", f"part-{i:04d}.bin")
    job_bytes = len(RegisterJob("alice", "big", "1.0", body).to_json().encode())
    assert job_bytes * 4 / 3 > 64 * 1024, "base64 of the message exceeds a Storage queue message"

    jobs, bad = bulk.read_manifest(io.StringIO(line("small") + "\n" + line("big", body=body)), settings)

    assert [j.name for j in jobs] == ["small"]
    assert [b.number for b in bad] == [2]
    assert "as a queue message" in bad[0].reason


def test_a_corrected_line_sent_through_the_cli_replaces_the_invalid_record(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker with other settings found the line invalid; once fixed, re-running registers it."""
    body = registration_body()
    body["model_config"]["type"] = "TRANSFORMER"
    register_from_queue(RegisterJob("alice", "fixed", "1.0", body), cli.deps)
    assert cli.record("alice", "fixed", "1.0").registration_id == "invalid"

    code, out, _ = cli(line("fixed"), "--wait", "--timeout", "5", capsys=capsys)

    assert code == 0, out
    registration = cli.record("alice", "fixed", "1.0")
    assert registration.state is State.FINISHED and registration.registration_id != "invalid"


# --------------------------------------------------------------------------------------------
# Bugs, shown by strict xfails (see the report for the proposed fixes)
# --------------------------------------------------------------------------------------------


def test_rerunning_after_a_source_was_fixed_reports_the_restarts_outcome(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    body = registration_body()
    missing = body["model_files"]["score.py"].replace("score.py", "late.bin")
    body["model_files"]["late.bin"] = missing
    manifest = line("late", body=body)
    code, out, _ = cli(manifest, "--wait", "--timeout", "5", capsys=capsys)
    assert code == 1 and "Failed           1" in out
    cli.copier.put_source(missing, b"here at last")
    cli.worker.delay = 0.5  # the worker gets to the re-sent job a moment later, as a real one does

    code, out, _ = cli(manifest, "--wait", "--timeout", "10", capsys=capsys)

    assert (code, out.splitlines()) == (0, ["state        count", "Finished         1"])


def test_the_owners_own_put_replaces_what_an_invalid_bulk_line_left(
    run: Run,
    store: FakeRegistrationStore,
    queue: FakeJobQueue,
    sealer: Sealer,
    settings: Settings,
    clock: FakeClock,
) -> None:
    run(RegisterJob("alice", "typed", "1.0", invalid_body()))

    deps = make_deps(settings, store=store, queue=queue, sealer=sealer, now=clock)
    registration = register(deps, Principal("alice", "Alice"), "typed", "1.0", registration_body())

    assert registration.state is State.IN_PROGRESS
    assert registration.registration_id != INVALID_REGISTRATION
    assert [job.registration_id for job in queue.jobs] == [registration.registration_id]
