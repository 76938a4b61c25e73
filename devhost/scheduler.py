"""Timer triggers: one thread per timer function, firing on its schedule (UTC)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from azure.functions.timer import TimerRequest

from devhost.invocation import FunctionDef, Invoker
from devhost.timers import Schedule

log = logging.getLogger("devhost.timers")

# A firing this much later than scheduled is reported as past due.
_PAST_DUE_AFTER = timedelta(seconds=1)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat()


class TimerRunner:
    """Runs one timer function; invocations of the same timer never overlap, as in the host."""

    def __init__(
        self,
        function: FunctionDef,
        schedule: Schedule,
        run_on_startup: bool,
        invoker: Invoker,
        clock: Callable[[], datetime] = utc_now,
        schedule_text: str = "",
    ) -> None:
        self.function = function
        self.schedule = schedule
        self.schedule_text = schedule_text
        self.run_on_startup = run_on_startup
        self._invoker = invoker
        self._clock = clock
        self._stop = threading.Event()
        self._last: datetime | None = None
        self._thread = threading.Thread(target=self._run, name=f"devhost-timer-{function.name}", daemon=True)

    def next_run(self) -> datetime:
        return self.schedule.next_after(self._clock())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        if self.run_on_startup and not self._stop.is_set():
            self._fire(self._clock(), past_due=False)
        last = self._clock()
        while True:
            try:
                due = self.schedule.next_after(last)
            except ValueError as exc:
                log.error("Timer '%s' will not fire again: %s", self.function.name, exc)
                return
            if self._stop.wait(max((due - self._clock()).total_seconds(), 0.0)):
                return
            now = self._clock()
            self._fire(due, past_due=now - due > _PAST_DUE_AFTER)
            # Occurrences missed while the function ran are skipped, like the host does.
            last = max(due, self._clock())

    def _fire(self, due: datetime, past_due: bool) -> None:
        try:
            next_due: datetime | None = self.schedule.next_after(max(due, self._clock()))
        except ValueError:
            next_due = None
        request = TimerRequest(
            past_due=past_due,
            schedule_status={
                "Last": _iso(self._last) if self._last else None,
                "Next": _iso(next_due) if next_due else None,
                "LastUpdated": _iso(self._clock()),
            },
            schedule={"AdjustForDST": False},
        )
        self._last = due
        # The invoker logs failures; a failing timer must not stop the schedule.
        with contextlib.suppress(Exception):
            self._invoker.invoke(self.function, request, f"Timer fired at {_iso(self._clock())}")
