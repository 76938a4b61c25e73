"""Events and webhooks: how soon a change reaches a webhook, and what the outbox costs a PUT.

Latency (report only). In process, on Azurite: the real store, Storage queue, dispatcher, fan-out,
delivery and pinned HTTP client (dev mode, so a receiver on loopback is allowed), with a worker
polling the job queue as the Functions host does (batches of 4; after an empty poll it waits
100 ms, doubling up to host.json's maxPollingInterval of 2 s). Each sample is one PATCH of a
model's description through the service (the change and its outbox row in one transaction, a
dispatch job sent), timed from its return to the arrival of the signed `updated` event at a local
receiver, which verifies it with `standardwebhooks`. The baseline, measured on the same changes,
is the first of the two queue hops: from the change to the end of its dispatch (the fan-out
written and the delivery job sent).

The PUT path's cost (target <= 1.15x). In process, on Azurite, the registration service (validate,
seal, one Table transaction, one enqueue) with its events recorded in the outbox (one more entity
in the transaction) against the same calls with `Registration.record` switched off, interleaved
call by call, many times; the figure is the ratio of the medians.
"""

from __future__ import annotations

import http.server
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy
from standardwebhooks import Webhook

from bench.processes import app_settings, running_azurite
from bench.registration import request_body
from bench.report import REPORT_ONLY, Figure
from bench.sources import OwnerContainer
from devhost.queues import next_poll_delay
from registry.bootstrap import build
from registry.domain.jobs import DispatchJob, parse_job
from registry.domain.model import Registration
from registry.domain.vocabulary import State
from registry.identity import Principal
from registry.services import models, webhooks
from registry.services.dependencies import Dependencies
from registry.services.jobs import handle_message
from registry.services.registration import register
from registry.settings import load_settings

OWNER = Principal("bench-owner", "bench-owner@example.com")
MODEL = "bench-hooked"


@dataclass(frozen=True)
class WebhookPlan:
    samples: int = 60  # changes timed to their webhook
    registrations: int = 400  # PUTs per side
    warmup: int = 40

    @classmethod
    def quick(cls) -> WebhookPlan:
        return cls(samples=12, registrations=60, warmup=10)


# -- a receiver and a worker -----------------------------------------------------------------------


@dataclass
class Receiver:
    secret: str = ""
    arrivals: dict[str, float] = field(default_factory=dict)  # description -> arrival time
    arrived: threading.Condition = field(default_factory=threading.Condition)
    refused: int = 0

    @contextmanager
    def serving(self) -> Iterator[str]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                at = time.perf_counter()
                try:
                    event = Webhook(receiver.secret).verify(data, dict(self.headers.items()))
                except Exception:
                    receiver.refused += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                self.send_response(204)
                self.end_headers()
                change = event["data"].get("changes", {}).get("description", {}).get("to")
                with receiver.arrived:
                    receiver.arrivals[str(change)] = at
                    receiver.arrived.notify_all()

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/hook"
        finally:
            server.shutdown()
            server.server_close()

    def wait(self, change: str, timeout: float = 30) -> float:
        with self.arrived:
            if not self.arrived.wait_for(lambda: change in self.arrivals, timeout):
                raise RuntimeError(f"the webhook for {change!r} never arrived")
            return self.arrivals[change]


class Worker:
    """The queue trigger, in process: polls like the host, runs each message on its own thread."""

    def __init__(
        self, deps: Dependencies, client: QueueClient, on_done: Callable[[Any, float], None]
    ) -> None:
        self.deps, self.client, self.on_done = deps, client, on_done
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        delay = timedelta(0)
        while not self.stop.is_set():
            messages = list(self.client.receive_messages(max_messages=4, visibility_timeout=30))
            if not messages:
                delay = next_poll_delay(delay, timedelta(seconds=2))
                self.stop.wait(delay.total_seconds())
                continue
            delay = timedelta(0)
            threads = [threading.Thread(target=self._handle, args=(m,)) for m in messages]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

    def _handle(self, message: Any) -> None:
        handle_message(message.content, self.deps, redelivered=False)
        self.on_done(parse_job(message.content), time.perf_counter())
        self.client.delete_message(message)


def _record(deps: Dependencies) -> Registration:
    """A finished private model to change (put straight in the store: its files play no part)."""
    now = deps.now()
    config = {
        "type": "DECODER",
        "description": "",
        "private": True,
        "inference_properties": {"entry_script": "score.py", "conda_env": "env.yml"},
    }
    meta = {
        "input_types": ["NATURAL_LANGUAGE"],
        "input_languages": ["en"],
        "input_description": "text",
        "output_types": ["NATURAL_LANGUAGE"],
        "output_languages": ["en"],
        "output_description": "text",
        "num_params": 1,
        "index_page_file": "index.md",
    }
    registration = Registration(
        owner=OWNER.id,
        name=MODEL,
        version="1.0",
        owner_name=OWNER.name,
        registration_id=uuid.uuid4().hex,
        state=State.FINISHED,
        message="",
        private=True,
        model_type="DECODER",
        description="",
        body_digest="",
        document={"model_config": config, "model_files": {}, "model_metainfo": meta},
        file_names=[],
        sealed=b"",
        created_at=now,
        updated_at=now,
        last_progress_at=now,
        finished_once=True,
    )
    return deps.store.insert(registration)


def measure_latency(plan: WebhookPlan) -> tuple[list[float], list[float]]:
    """(to the webhook, to the end of the dispatch) for each change, in seconds."""
    with running_azurite(None) as azurite:
        settings = load_settings(app_settings(azurite.connection_string(), REGISTRY_RATE_LIMITS="off"))
        deps = build(settings)
        _record(deps)
        receiver = Receiver()
        dispatched: list[float] = []  # when each dispatch job ended
        client = QueueClient.from_connection_string(
            azurite.connection_string(),
            settings.jobs_queue,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )

        def done(job: Any, at: float) -> None:
            if isinstance(job, DispatchJob):
                dispatched.append(at)

        with receiver.serving() as url:
            saved = webhooks.save(deps, OWNER, "bench", {"url": url, "events": ["updated"]})
            receiver.secret = saved.secret or ""
            worker = Worker(deps, client, done)
            worker.thread.start()
            to_webhook, to_dispatch = [], []
            try:
                for sample in range(plan.samples + 2):
                    change = f"change {sample}"
                    called = time.perf_counter()
                    models.update_model(deps, OWNER, MODEL, "1.0", {"model_config": {"description": change}})
                    started = time.perf_counter()  # the change and its outbox row are written
                    arrived = receiver.wait(change)
                    ended = min((t for t in dispatched if t > called), default=arrived)
                    if sample >= 2:  # the first two warm the clients and the poll loop
                        to_webhook.append(arrived - started)
                        to_dispatch.append(max(ended - started, 0.0))
            finally:
                worker.stop.set()
                worker.thread.join(10)
        if receiver.refused:
            raise RuntimeError(f"{receiver.refused} deliveries failed verification")
        return to_webhook, to_dispatch


# -- the PUT path with and without the outbox ------------------------------------------------------


@contextmanager
def events_switched_off() -> Iterator[None]:
    """`Registration.record` notes nothing: the same PUT, with no outbox row in its transaction."""
    original = Registration.record

    def silent(self: Registration, kind: Any, now: Any, data: Any = None) -> Any:
        event = original(self, kind, now, data)
        self.events.remove(event)
        return event

    Registration.record = silent  # type: ignore[method-assign]
    try:
        yield
    finally:
        Registration.record = original  # type: ignore[method-assign]


def measure_put(plan: WebhookPlan) -> tuple[list[float], list[float]]:
    """Seconds per registration (with events, without), interleaved call by call."""
    with running_azurite(None) as azurite:
        env = app_settings(
            azurite.connection_string(), REGISTRY_RATE_LIMITS="off", REGISTRY_MAX_IN_PROGRESS="1000000"
        )
        deps = build(load_settings(env))
        owner = OwnerContainer(azurite, "benchhooks")
        source_base, sas = owner.container.url, owner.container_sas()
        with_events: list[float] = []
        without: list[float] = []
        for index in range(plan.warmup + plan.registrations):
            for on in (index % 2 == 0, index % 2 == 1):  # which goes first alternates
                version = f"{index}.{int(on)}"
                body = request_body(source_base, sas, version)
                if on:
                    started = time.perf_counter()
                    register(deps, OWNER, "bench-put", version, body)
                    took = time.perf_counter() - started
                else:
                    with events_switched_off():
                        started = time.perf_counter()
                        register(deps, OWNER, "bench-put", version, body)
                        took = time.perf_counter() - started
                if index >= plan.warmup:
                    (with_events if on else without).append(took)
        pending = deps.store.pending_events(OWNER.id)
        expected = plan.warmup + plan.registrations
        if len(pending) != expected:
            raise RuntimeError(f"{len(pending)} events recorded for {expected} registrations with events")
        return with_events, without


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(plan: WebhookPlan) -> list[Figure]:
    to_webhook, to_dispatch = measure_latency(plan)
    with_events, without = measure_put(plan)
    ms = 1000.0
    latency = {
        "samples": len(to_webhook),
        "p50_ms": round(_percentile(to_webhook, 50) * ms, 1),
        "p95_ms": round(_percentile(to_webhook, 95) * ms, 1),
        "max_ms": round(max(to_webhook) * ms, 1),
        "dispatch_p50_ms": round(_percentile(to_dispatch, 50) * ms, 1),
        "dispatch_p95_ms": round(_percentile(to_dispatch, 95) * ms, 1),
        "path": "PATCH (service) -> outbox -> dispatch job -> fan-out -> delivery job -> signed POST",
        "worker": "in process, polling like the host (batch 4, 100 ms doubling to 2 s when idle)",
    }
    figures = [
        Figure(
            key="webhook_latency_p50",
            label="change to webhook receipt, p50",
            unit="ms",
            value=_percentile(to_webhook, 50) * ms,
            baseline=_percentile(to_dispatch, 50) * ms,
            baseline_label="change to the end of its dispatch (one queue hop), p50",
            target=REPORT_ONLY,
            details=latency,
        ),
        Figure(
            key="webhook_latency_p95",
            label="change to webhook receipt, p95",
            unit="ms",
            value=_percentile(to_webhook, 95) * ms,
            baseline=_percentile(to_dispatch, 95) * ms,
            baseline_label="change to the end of its dispatch (one queue hop), p95",
            target=REPORT_ONLY,
            details={"samples": len(to_webhook)},
        ),
        Figure(
            key="put_with_outbox",
            label="registration (service, Azurite) with its event in the outbox, median",
            unit="ms",
            value=statistics.median(with_events) * ms,
            baseline=statistics.median(without) * ms,
            baseline_label="the same registrations without events, median",
            target="<= 1.15",
            details={
                "per_side": len(with_events),
                "interleaved": "call by call, which side first alternating",
                "with_p95_ms": round(_percentile(with_events, 95) * ms, 2),
                "without_p95_ms": round(_percentile(without, 95) * ms, 2),
                "mean_ratio": round(statistics.fmean(with_events) / statistics.fmean(without), 3),
            },
            digits=2,
        ),
    ]
    return figures
