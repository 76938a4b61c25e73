"""The read-only links a registration was sent with, kept so that a re-run sends the same body.

The registry treats a repeated PUT as a replay only if the body is identical, SAS included;
fresh links would make it a different request (409). So `register` keeps the links it minted
in the user's state folder (`$REGISTRY_STATE_DIR`, else `~/.local/state/registry`), readable by
the user alone, until they expire, and reuses them while the files are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
MIN_LIFETIME = timedelta(hours=2)
CLOCK_SKEW = timedelta(minutes=5)  # how far this machine's clock may differ from the storage service's
# A user delegation key must expire within 7 days of the service's clock: kept short of that by the skew.
MAX_LIFETIME = timedelta(days=7) - CLOCK_SKEW
ASSUMED_COPY_RATE = 10 * MIB  # bytes a second: a pessimistic server-side copy rate
REUSE_MARGIN = timedelta(minutes=30)


def link_lifetime(total_bytes: int) -> timedelta:
    """Long enough for the registry to copy `total_bytes` at a pessimistic rate, and no longer."""
    needed = MIN_LIFETIME + timedelta(seconds=total_bytes / ASSUMED_COPY_RATE)
    return min(needed, MAX_LIFETIME)


@dataclass(frozen=True)
class SavedLinks:
    expiry: datetime
    files: dict[str, dict[str, Any]]  # target -> {url, size, content_md5}

    def fits(self, files: Mapping[str, tuple[int, str]], now: datetime) -> bool:
        """Whether these links still serve exactly `files` (target -> (size, md5)) for a while."""
        current = {t: {"size": s, "content_md5": m} for t, (s, m) in files.items()}
        saved = {
            t: {"size": f.get("size"), "content_md5": f.get("content_md5")} for t, f in self.files.items()
        }
        return self.expiry - now >= REUSE_MARGIN and current == saved

    def urls(self) -> dict[str, str]:
        return {target: str(entry["url"]) for target, entry in self.files.items()}


def state_dir(environ: Mapping[str, str]) -> Path:
    if environ.get("REGISTRY_STATE_DIR"):
        return Path(environ["REGISTRY_STATE_DIR"])
    base = Path(environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "registry"


def links_key(*parts: str) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


class LinkStore:
    def __init__(self, directory: Path, now: datetime | None = None) -> None:
        self.path = directory / "links.json"
        self._now = now

    def _entries(self) -> dict[str, Any]:
        try:
            entries: Any = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def _write(self, entries: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            json.dump(entries, stream)
        os.chmod(temporary, 0o600)
        temporary.replace(self.path)

    def load(self, key: str) -> SavedLinks | None:
        entry = self._entries().get(key)
        if not isinstance(entry, dict):
            return None
        try:
            return SavedLinks(datetime.fromisoformat(entry["expiry"]), dict(entry["files"]))
        except (KeyError, TypeError, ValueError):
            return None

    def save(self, key: str, links: SavedLinks) -> None:
        now = self._now or datetime.now(UTC)
        entries = {
            k: v
            for k, v in self._entries().items()
            if isinstance(v, dict) and str(v.get("expiry", "")) > now.isoformat()  # drop expired ones
        }
        entries[key] = {"expiry": links.expiry.isoformat(), "files": links.files}
        self._write(entries)
