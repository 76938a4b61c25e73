"""Registrations as the API shows them: the response models, built from the domain's records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from registry.blueprints.api_models import (
    DeliveryView,
    FileStatus,
    FileView,
    HistoryEntry,
    HistoryPageResponse,
    ManifestEntry,
    ManifestFileView,
    ManifestList,
    ManifestResponse,
    ModelListItem,
    ModelRef,
    ModelResponse,
    StatusResponse,
    WebhookCreated,
    WebhookResponse,
    WebhookSecret,
)
from registry.domain.events import Event
from registry.domain.listing import ModelSummary
from registry.domain.model import FileProgress, Manifest, Registration
from registry.domain.vocabulary import FileState, ModelType
from registry.domain.webhooks import Delivery
from registry.services.webhooks import Webhook

PHASES = {
    FileState.PENDING: "pending",
    FileState.COPYING: "copying",
    FileState.HASHING: "hashing",
    FileState.FINISHED: "done",
    FileState.FAILED: "failed",
}


def _model_type(value: str) -> ModelType | None:
    return ModelType(value) if value in ModelType.__members__.values() else None


def _parent(parent: dict[str, str] | None) -> ModelRef | None:
    return ModelRef.model_validate(parent) if parent else None


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _human(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def list_item(summary: ModelSummary) -> ModelListItem:
    return ModelListItem(
        name=summary.name,
        version=summary.version,
        owner=summary.owner,
        owner_name=summary.owner_name,
        type=_model_type(summary.type),
        description=summary.description,
        private=summary.private,
        state=summary.state,
        trainable=summary.trainable,
        parent_model=_parent(summary.parent_model),
    )


def status(registration: Registration, files: list[FileProgress]) -> StatusResponse:
    return StatusResponse(
        name=registration.name,
        version=registration.version,
        owner=registration.owner,
        state=registration.state.value,
        message=registration.message,
        start_timestamp=_timestamp(registration.created_at),
        start_time=_human(registration.created_at),
        last_updated_timestamp=_timestamp(registration.updated_at),
        last_updated_time=_human(registration.updated_at),
        files=[
            FileStatus(
                name=f.target,
                state=f.state.value,
                phase=PHASES[f.state],
                bytes_copied=f.bytes_copied,
                bytes_hashed=f.bytes_hashed,
                size=f.size if f.size is not None else (f.served_size if f.served else None),
                sha256=f.served_sha256 if f.state is FileState.FINISHED else None,
            )
            for f in files
        ],
    )


def model(registration: Registration, files: list[FileProgress]) -> ModelResponse:
    """GET /model/{name}/{version}/{owner}: what a reader sees (never a secret)."""
    return ModelResponse(
        name=registration.name,
        version=registration.version,
        owner=registration.owner,
        owner_name=registration.owner_name,
        type=_model_type(registration.model_type),
        description=registration.description,
        private=registration.private,
        state=registration.state.value,
        message=registration.message,
        parent_model=_parent(registration.parent),
        model_config=registration.document.get("model_config", {}),
        model_metainfo=registration.metainfo,
        files=[
            FileView(
                name=p.target,
                size=p.served_size if p.served else p.size,
                sha256=p.served_sha256 or None,
                content_md5=p.content_md5 or None,
                state=p.state.value,
            )
            for p in files
        ],
        created_at=registration.created_at.isoformat(),
        updated_at=registration.updated_at.isoformat(),
        last_change=registration.last_change,
    )


def manifest(m: Manifest) -> ManifestResponse:
    return ManifestResponse(
        name=m.name,
        version=m.version,
        owner=m.owner,
        revision=m.revision,
        files=[ManifestFileView(path=f.path, size=f.size, sha256=f.sha256) for f in m.files],
        parent=_parent(m.parent),
        created_at=m.created_at.isoformat(),
        finished_at=m.finished_at.isoformat(),
        digest=m.digest,
        key_id=m.key_id,
        signature=m.signature,
    )


def manifest_list(manifests: list[Manifest]) -> ManifestList:
    return ManifestList(
        manifests=[
            ManifestEntry(
                revision=m.revision, digest=m.digest, finished_at=m.finished_at.isoformat(), by=m.by
            )
            for m in manifests
        ]
    )


def history_entry(event: Event) -> HistoryEntry:
    data = event.data
    return HistoryEntry(
        id=event.id,
        type=event.type.short,
        time=event.time.isoformat(),
        by=str(data.get("by") or "registry"),
        state=str(data.get("state", "")),
        message=str(data.get("message", "")),
        changes=data.get("changes"),
        files=data.get("files"),
        revision=data.get("revision") or None,
        manifest_digest=data.get("manifest_digest") or None,
        parent=_parent(data.get("parent")),
    )


def history_page(events: list[Event], continuation: str | None) -> HistoryPageResponse:
    return HistoryPageResponse(events=[history_entry(e) for e in events], continuation=continuation)


# -- webhooks -----------------------------------------------------------------------------------


def _maybe_time(moment: datetime | None) -> str | None:
    return _timestamp(moment) if moment is not None else None


def webhook(found: Webhook) -> WebhookResponse:
    return WebhookResponse(**_webhook_fields(found))


def webhook_created(found: Webhook, secret: str) -> WebhookCreated:
    return WebhookCreated(**_webhook_fields(found), secret=secret)


def _webhook_fields(found: Webhook) -> dict[str, Any]:
    s = found.subscription
    assert s.created_at is not None and s.updated_at is not None
    return {
        "id": s.id,
        "url": found.url,
        "events": list(s.events) or None,
        "models": list(s.models) or None,
        "scope": s.scope.value,
        "description": s.description,
        "enabled": s.enabled,
        "disabled_reason": s.disabled_reason or None,
        "disabled_at": _maybe_time(s.disabled_at),
        "failing_since": _maybe_time(s.failing_since),
        "created_at": _timestamp(s.created_at),
        "updated_at": _timestamp(s.updated_at),
        "secret_rotated_at": _timestamp(s.secret_rotated_at or s.created_at),
        "previous_secret_until": _maybe_time(s.previous_secret_until),
    }


def webhook_secret(found: Webhook, secret: str) -> WebhookSecret:
    until = found.subscription.previous_secret_until
    return WebhookSecret(id=found.subscription.id, secret=secret, previous_secret_until=_maybe_time(until))


def delivery(d: Delivery) -> DeliveryView:
    return DeliveryView(
        event_id=d.event.id,
        type=d.event.type.short,
        subject=d.event.subject,
        event_time=_timestamp(d.event.time),
        status=d.status.value,
        attempts=d.attempts,
        response_status=d.response_status,
        error=d.error or None,
        created_at=_timestamp(d.created_at),
        first_attempt_at=_maybe_time(d.first_attempt_at),
        last_attempt_at=_maybe_time(d.last_attempt_at),
        next_attempt_at=_maybe_time(d.next_attempt_at),
        delivered_at=_maybe_time(d.delivered_at),
        duration_ms=d.duration_ms,
    )
