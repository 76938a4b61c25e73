"""Loading the app, indexing its functions and running the triggers."""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions.decorators.http import HttpTrigger
from azure.functions.decorators.queue import QueueTrigger
from azure.functions.decorators.timer import TimerTrigger

from devhost.hostjson import HostOptions
from devhost.http_server import FunctionsApp, HttpServer
from devhost.invocation import FunctionDef, Invoker
from devhost.queues import DEFAULT_LEASE_SECONDS, QueueListener, client_factory
from devhost.routing import Router
from devhost.scheduler import TimerRunner
from devhost.timers import parse_schedule

log = logging.getLogger("devhost")

_SETTING_RE = re.compile(r"%([^%]+)%")


def load_local_settings(path: Path, environ: MutableMapping[str, str]) -> list[str]:
    """Copy ``Values`` from local.settings.json into ``environ``; the environment wins.

    Returns the names that were set.
    """
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8-sig"))
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a JSON object")
    if data.get("IsEncrypted"):
        log.warning("%s is encrypted; its values are not decrypted by devhost", path)
    values = data.get("Values") or {}
    applied = []
    for key, value in values.items():
        if key in environ or value is None:
            continue
        environ[key] = json.dumps(value) if isinstance(value, bool) else str(value)
        applied.append(key)
    return applied


def local_http_port(path: Path) -> int | None:
    """``Host.LocalHttpPort`` from local.settings.json, which func uses as its default port."""
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8-sig"))
    host = data.get("Host") if isinstance(data, Mapping) else None
    port = host.get("LocalHttpPort") if isinstance(host, Mapping) else None
    return int(port) if isinstance(port, (int, str)) and str(port).isdigit() else None


def resolve_setting_references(text: str, environ: Mapping[str, str]) -> str:
    """Replace ``%Name%`` with app settings, as the host does for binding properties."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise LookupError(f"app setting '{name}' referenced by {text!r} is not set")
        return environ[name]

    return _SETTING_RE.sub(replace, text)


def load_app(app_dir: Path, script: str = "function_app.py") -> func.FunctionRegister:
    """Import the app module from ``app_dir`` and return its FunctionApp."""
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    module = importlib.import_module(Path(script).stem)
    app = getattr(module, "app", None)
    if isinstance(app, func.FunctionRegister):
        return app
    # The worker accepts a FunctionApp under any name, as long as there is exactly one.
    found = [v for v in vars(module).values() if isinstance(v, func.FunctionRegister)]
    if len(found) != 1:
        raise LookupError(
            f"{script} must define exactly one azure.functions.FunctionApp (found {len(found)})"
        )
    return found[0]


def _method_names(methods: Any) -> list[str] | None:
    if not methods:
        return None
    return [str(getattr(m, "value", m)).upper() for m in methods]


@dataclass
class Host:
    """Everything the app declares, wired to servers, pollers and timers."""

    app_dir: Path
    options: HostOptions
    environ: Mapping[str, str]
    invoker: Invoker = field(default_factory=Invoker)
    router: Router[FunctionDef] = field(init=False)
    listeners: list[QueueListener] = field(default_factory=list)
    timers: list[TimerRunner] = field(default_factory=list)
    http_descriptions: list[tuple[str, list[str] | None, str]] = field(default_factory=list)
    server: HttpServer | None = None

    def __post_init__(self) -> None:
        self.router = Router(self.options.route_prefix)

    def index(self, app: func.FunctionRegister) -> None:
        lease = int(self.environ.get("DEVHOST_QUEUE_LEASE_SECONDS") or DEFAULT_LEASE_SECONDS)
        for function in app.get_functions():
            trigger = function.get_trigger()
            user_function = function.get_user_function()
            name = function.get_function_name() or user_function.__name__
            if trigger is None:
                log.warning("Function '%s' has no trigger; skipped", name)
                continue
            if self._disabled(name):
                log.info("Function '%s' is disabled (AzureWebJobs.%s.Disabled)", name, name)
                continue
            definition = FunctionDef.create(name, user_function, trigger.name, str(self.app_dir))
            self._warn_unsupported(function, definition)
            try:
                self._add(definition, trigger, lease)
            except (LookupError, ValueError) as exc:
                log.error("Function '%s' is disabled: %s", name, exc)

    def _disabled(self, name: str) -> bool:
        """The Functions host's own switch: app setting AzureWebJobs.<name>.Disabled=true."""
        for key in (f"AzureWebJobs.{name}.Disabled", f"AzureWebJobs__{name}__Disabled"):
            if str(self.environ.get(key, "")).lower() in ("true", "1"):
                return True
        return False

    def _warn_unsupported(self, function: func.Function, definition: FunctionDef) -> None:
        for binding in function.get_bindings():
            if binding is function.get_trigger() or binding.type == "http":
                continue
            log.warning(
                "Function '%s': binding '%s' (%s) is not supported by devhost and is ignored",
                definition.name,
                binding.name,
                binding.type,
            )
        missing = definition.unsupported_parameters()
        if missing:
            log.warning(
                "Function '%s': devhost cannot supply parameter(s) %s; invocations will fail",
                definition.name,
                ", ".join(missing),
            )

    def _add(self, definition: FunctionDef, trigger: Any, lease: int) -> None:
        if isinstance(trigger, HttpTrigger):
            route = trigger.route if trigger.route is not None else definition.name
            methods = _method_names(trigger.methods)
            template = self.router.add(route, methods, definition)
            self.http_descriptions.append((definition.name, methods, template.text))
        elif isinstance(trigger, QueueTrigger):
            queue_name = resolve_setting_references(trigger.queue_name, self.environ).lower()
            factory = client_factory(trigger.connection, self.environ)
            self.listeners.append(
                QueueListener(definition, queue_name, factory, self.options.queues, self.invoker, lease)
            )
        elif isinstance(trigger, TimerTrigger):
            schedule = resolve_setting_references(trigger.schedule, self.environ)
            runner = TimerRunner(
                definition,
                parse_schedule(schedule),
                bool(trigger.run_on_startup),
                self.invoker,
                schedule_text=schedule,
            )
            self.timers.append(runner)
        else:
            log.warning(
                "Function '%s': %s triggers are not supported by devhost; skipped",
                definition.name,
                type(trigger).__name__,
            )

    def bind(self, host: str, port: int) -> int:
        """Listen for HTTP (before anything runs, so port 0 resolves); returns the port."""
        self.server = HttpServer(host, port, FunctionsApp(self.router, self.invoker))
        return self.server.port

    def describe(self, base_url: str) -> None:
        lines = ["Functions:", ""]
        for name, methods, template in self.http_descriptions:
            shown = ",".join(methods) if methods else "*"
            lines.append(f"\t{name}: [{shown}] {base_url}/{template}")
        for listener in self.listeners:
            lines.append(f"\t{listener.function.name}: queueTrigger (queue '{listener.queue_name}')")
        for timer in self.timers:
            name, schedule, next_run = timer.function.name, timer.schedule_text, timer.next_run().isoformat()
            lines.append(f"\t{name}: timerTrigger (schedule '{schedule}', next run {next_run}Z)")
        log.info("%s", "\n".join(lines))

    def start(self) -> None:
        for listener in self.listeners:
            listener.start()
        for timer in self.timers:
            timer.start()
        if self.server is not None:
            self.server.start()

    def stop(self, timeout: float) -> bool:
        """Stop taking work, then wait up to ``timeout`` seconds for in-flight invocations."""
        deadline = time.monotonic() + timeout
        if self.server is not None:
            self.server.stop()
        for listener in self.listeners:
            listener.stop()
        for timer in self.timers:
            timer.stop()
        idle = all(listener.wait_idle(max(deadline - time.monotonic(), 0)) for listener in self.listeners)
        return self.invoker.wait_idle(max(deadline - time.monotonic(), 0)) and idle


def apply_settings(settings: Path, environ: MutableMapping[str, str] = os.environ) -> None:
    applied = load_local_settings(settings, environ)
    if applied:
        log.info("Loaded %d setting(s) from %s", len(applied), settings)
