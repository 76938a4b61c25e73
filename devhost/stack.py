"""`make run`: Azurite (data kept in .local/azurite) plus the local Functions host, until Ctrl-C.

Turns on the local development settings: caller identity from the principal headers, and `http`
sources on the local emulator.

Azurite listens on 10100 (blob), 10101 (queue) and 10102 (table) rather than its defaults
10000-10002, which other emulators on a shared machine often hold. AZURITE_BLOB_PORT,
AZURITE_QUEUE_PORT and AZURITE_TABLE_PORT choose others; 10000, 10001 and 10002, when free, make
`UseDevelopmentStorage=true` and Storage Explorer's default "local emulator" connection work as is.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
from typing import Any

from devhost.azurite import DEFAULT_PORTS, OWNER_ACCOUNT, REGISTRY_ACCOUNT, REPO, start_azurite

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


def busy_ports(ports: dict[str, int], host: str = "127.0.0.1") -> dict[str, int]:
    """The services whose port something else already listens on."""
    busy = {}
    for service, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                busy[service] = port
    return busy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--blob-port", type=int, default=int(os.environ.get("AZURITE_BLOB_PORT", 10100)))
    parser.add_argument("--queue-port", type=int, default=int(os.environ.get("AZURITE_QUEUE_PORT", 10101)))
    parser.add_argument("--table-port", type=int, default=int(os.environ.get("AZURITE_TABLE_PORT", 10102)))
    args = parser.parse_args()

    wanted = {"blob": args.blob_port, "queue": args.queue_port, "table": args.table_port}
    taken = busy_ports(wanted)
    if taken:
        listed = ", ".join(f"{service} {port}" for service, port in taken.items())
        print(
            f"Ports in use: {listed}. Free them or choose others with AZURITE_BLOB_PORT, "
            "AZURITE_QUEUE_PORT and AZURITE_TABLE_PORT.",
            file=sys.stderr,
        )
        return 1
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
    print(
        f"Accounts: {REGISTRY_ACCOUNT[0]} (the well-known development key), "
        f"{OWNER_ACCOUNT[0]} (a model owner)"
    )
    if ports == DEFAULT_PORTS:
        print("Default ports: UseDevelopmentStorage=true reaches this emulator.")
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
