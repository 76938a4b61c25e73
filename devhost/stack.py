"""`make run`: Azurite (data kept in .local/azurite) plus the local Functions host, until Ctrl-C.

Turns on the local development settings: caller identity from the principal headers, and `http`
sources on the local emulator.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from typing import Any

from devhost.azurite import OWNER_ACCOUNT, REGISTRY_ACCOUNT, REPO, start_azurite

LOCAL = REPO / ".local"
STACK_FILE = LOCAL / "stack.json"
DEV_SETTINGS = {"REGISTRY_DEV_MODE": "true", "REGISTRY_ALLOW_INSECURE_SOURCES": "true"}


def app_settings() -> dict[str, str]:
    """local.settings.json if the developer made one, else the sample's local values."""
    path = REPO / "local.settings.json"
    if not path.exists():
        path = REPO / "local.settings.sample.json"
    values: dict[str, Any] = json.loads(path.read_text())["Values"]
    return {key: str(value) for key, value in values.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--blob-port", type=int, default=int(os.environ.get("AZURITE_BLOB_PORT", 10100)))
    parser.add_argument("--queue-port", type=int, default=int(os.environ.get("AZURITE_QUEUE_PORT", 10101)))
    parser.add_argument("--table-port", type=int, default=int(os.environ.get("AZURITE_TABLE_PORT", 10102)))
    args = parser.parse_args()

    azurite = start_azurite(
        LOCAL / "azurite", blob_port=args.blob_port, queue_port=args.queue_port, table_port=args.table_port
    )
    env = {**app_settings(), **DEV_SETTINGS, **os.environ}
    env["AzureWebJobsStorage"] = azurite.connection_string()
    STACK_FILE.write_text(
        json.dumps(
            {
                "api": f"http://127.0.0.1:{args.port}",
                "blob_endpoint": f"http://127.0.0.1:{azurite.ports['blob']}",
                "ports": azurite.ports,
                "accounts": {"registry": REGISTRY_ACCOUNT[0], "owner": OWNER_ACCOUNT[0]},
            }
        )
    )
    ports = azurite.ports
    print(f"Azurite: blob {ports['blob']}, queue {ports['queue']}, table {ports['table']} (data in .local/)")
    host = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--port", str(args.port), "--app-dir", str(REPO)], env=env, cwd=REPO
    )

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        return host.wait()
    except KeyboardInterrupt:
        host.send_signal(signal.SIGINT)
        try:
            host.wait(timeout=15)
        except subprocess.TimeoutExpired:
            host.kill()
        return 0
    finally:
        azurite.stop()
        STACK_FILE.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
