"""Calling user functions the way the Python worker does, with host-style logs."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from azure.functions import _abc as azf_abc

log = logging.getLogger("devhost.invocation")


class _TraceContext(azf_abc.TraceContext):
    def __init__(self) -> None:
        self._parent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00"

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(azf_abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    """The ``context`` argument the worker passes to functions that declare it."""

    _local = threading.local

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._trace = _TraceContext()
        self._retry = _RetryContext()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> type[threading.local]:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> azf_abc.TraceContext:
        return self._trace

    @property
    def retry_context(self) -> azf_abc.RetryContext:
        return self._retry


@dataclass(frozen=True)
class FunctionDef:
    name: str
    func: Callable[..., Any]
    trigger_param: str
    directory: str
    wants_context: bool = field(default=False)

    @classmethod
    def create(
        cls, name: str, user_function: Callable[..., Any], trigger_param: str, directory: str
    ) -> FunctionDef:
        try:
            params = inspect.signature(user_function).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        wants_context = "context" in params and trigger_param != "context"
        return cls(name, user_function, trigger_param, directory, wants_context)

    def unsupported_parameters(self) -> list[str]:
        """Required parameters the dev host cannot bind (extra input/output bindings)."""
        try:
            params = inspect.signature(self.func).parameters.values()
        except (TypeError, ValueError):
            return []
        known = {self.trigger_param, "context"}
        return [
            p.name
            for p in params
            if p.name not in known
            and p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class Invoker:
    """Runs invocations and tracks how many are in flight, for graceful shutdown."""

    def __init__(self) -> None:
        self._in_flight = 0
        self._idle = threading.Condition()

    def begin(self) -> None:
        """Count work as in flight (also used around queue bookkeeping and HTTP writes)."""
        with self._idle:
            self._in_flight += 1

    def end(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    @contextmanager
    def track(self) -> Iterator[None]:
        self.begin()
        try:
            yield
        finally:
            self.end()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def invoke(self, function: FunctionDef, value: Any, reason: str) -> Any:
        invocation_id = str(uuid.uuid4())
        kwargs: dict[str, Any] = {function.trigger_param: value}
        if function.wants_context:
            kwargs["context"] = InvocationContext(invocation_id, function.name, function.directory)
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", function.name, reason, invocation_id)
        started = time.monotonic()
        try:
            with self.track():
                result = function.func(**kwargs)
                if inspect.isawaitable(result):
                    # Each worker thread gets its own short-lived event loop.
                    result = asyncio.run(_await(result))
        except Exception:
            log.exception(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)",
                function.name,
                invocation_id,
                _elapsed_ms(started),
            )
            raise
        log.info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)",
            function.name,
            invocation_id,
            _elapsed_ms(started),
        )
        return result


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
