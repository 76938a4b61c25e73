"""CLI: ``python -m devhost [--port 7071] [--host 127.0.0.1] [--app-dir .] [--settings FILE]``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from devhost.host import Host, apply_settings, load_app, local_http_port
from devhost.hostjson import load_host_options

log = logging.getLogger("devhost")

DEFAULT_PORT = 7071
DEFAULT_SHUTDOWN_SECONDS = 5.0


class _UtcFormatter(logging.Formatter):
    """Timestamps like func's: UTC, milliseconds."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UtcFormatter("[%(asctime)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("DEVHOST_LOG_LEVEL", "INFO").upper())
    # Per-request chatter from the SDK and werkzeug drowns the invocation lines.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devhost", description="Local stand-in for `func start`.")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (0 = any free port; default 7071)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--app-dir", type=Path, default=Path("."), help="folder holding function_app.py")
    parser.add_argument(
        "--settings", type=Path, default=None, help="settings file (default <app-dir>/local.settings.json)"
    )
    return parser.parse_args(argv)


def _display_host(host: str) -> str:
    return "localhost" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - display only


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    app_dir: Path = args.app_dir.resolve()
    settings: Path = args.settings.resolve() if args.settings else app_dir / "local.settings.json"
    try:
        apply_settings(settings)
        options = load_host_options(app_dir / "host.json")
        # The worker runs with the app folder as working directory.
        os.chdir(app_dir)
        app = load_app(app_dir, os.environ.get("PYTHON_SCRIPT_FILE_NAME", "function_app.py"))
        host = Host(app_dir=app_dir, options=options, environ=os.environ)
        host.index(app)
        port = args.port if args.port is not None else local_http_port(settings) or DEFAULT_PORT
        port = host.bind(args.host, port)
    except Exception:
        log.exception("Host failed to start")
        return 1

    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stopping.is_set():
            log.warning("Second %s: exiting without waiting", signal.Signals(signum).name)
            os._exit(1)
        log.info("%s received; stopping the host", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    base_url = f"http://{_display_host(args.host)}:{port}"
    host.describe(base_url)
    host.start()
    print(f"Host started: {base_url}", flush=True)

    while not stopping.wait(0.5):
        pass
    timeout = float(os.environ.get("DEVHOST_SHUTDOWN_SECONDS") or DEFAULT_SHUTDOWN_SECONDS)
    if not host.stop(timeout):
        log.warning("Invocations still running after %.0fs; exiting anyway", timeout)
    log.info("Host stopped")
    logging.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
