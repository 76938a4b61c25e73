"""Operator tasks: re-seal what is stored under the current sealing key (after a rotation)."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

from registry.domain.errors import ConcurrentUpdate
from registry.domain.model import Registration
from registry.sealing import SealedUnreadable
from registry.services.dependencies import Dependencies
from registry.services.registration import sealing_binding

log = logging.getLogger(__name__)


@dataclass
class ResealReport:
    resealed: int = 0
    current: int = 0
    unreadable: list[str] | None = None

    @property
    def ok(self) -> bool:
        return not self.unreadable


def _reseal_one(deps: Dependencies, registration: Registration) -> bool:
    """Re-seal one record with the current key (and re-key its digest); False if it already was."""
    sealer = deps.sealer
    if sealer.is_current(registration.sealed) and (
        not registration.body_digest or sealer.digest_is_current(registration.body_digest)
    ):
        return False
    binding = sealing_binding(registration)
    secrets = sealer.unseal(registration.sealed, binding) if registration.sealed else {}
    if registration.sealed:
        registration.sealed = sealer.seal(secrets, binding)
    if "digest_input" in secrets:
        registration.body_digest = sealer.digest(secrets["digest_input"])
    deps.store.replace(registration)
    return True


def _reseal_webhooks(deps: Dependencies, report: ResealReport) -> None:
    """Each webhook's sealed URL and secrets, under the current key (If-Match, re-read on a conflict)."""
    assert report.unreadable is not None
    for subscription in deps.webhooks.all_subscriptions():
        for _ in range(5):
            if deps.sealer.is_current(subscription.sealed):
                report.current += 1
                break
            try:
                value = deps.sealer.unseal(subscription.sealed, subscription.binding)
            except SealedUnreadable:
                report.unreadable.append(f"webhook {subscription.owner}/{subscription.id}")
                break
            resealed = copy.deepcopy(subscription)
            resealed.sealed = deps.sealer.seal(value, subscription.binding)
            try:
                deps.webhooks.save_subscription(resealed, subscription)
            except ConcurrentUpdate:
                fresh = deps.webhooks.subscription(subscription.owner, subscription.id)
                if fresh is None:
                    break
                subscription = fresh
                continue
            report.resealed += 1
            break


def reseal_all(deps: Dependencies) -> ResealReport:
    """Every record sealed (or digested) with an older key is re-sealed with the current one, and
    every webhook's URL and secrets.
    Safe to run while the app serves: each record is written with If-Match, and re-read on a
    conflict. Records no configured key opens are reported, never changed."""
    report = ResealReport(unreadable=[])
    for registration in deps.store.everything():
        for _ in range(5):
            try:
                if _reseal_one(deps, registration):
                    report.resealed += 1
                else:
                    report.current += 1
                break
            except ConcurrentUpdate:
                fresh = deps.store.get(registration.owner, registration.name, registration.version)
                if fresh is None:
                    break
                registration = fresh
            except SealedUnreadable:
                assert report.unreadable is not None
                report.unreadable.append(registration.key)
                break
    _reseal_webhooks(deps, report)
    return report
