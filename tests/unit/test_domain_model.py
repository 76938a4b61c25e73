"""The registration's lifecycle guards its own invariants (registry/domain/model.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from registry.domain.errors import IllegalTransition, LeaseHeld
from registry.domain.model import EPOCH, MAX_MESSAGE_CHARS, MAX_TAKEOVERS, ModelKey, Registration
from registry.domain.vocabulary import State
from tests.fakes import T0

DOCUMENT = {
    "model_config": {"type": "DECODER", "description": "d", "private": False},
    "model_files": {"b.bin": "https://x/b", "a.py": "https://x/a"},
    "model_metainfo": {"input_languages": ["Python", "en"], "output_languages": ["python"]},
}


def accepted() -> Registration:
    return Registration.accept(ModelKey("o", "m", "1"), owner_name="O", document=DOCUMENT, now=T0)


def test_an_accepted_registration_is_in_progress_and_takes_its_facts_from_the_document() -> None:
    r = accepted()
    assert (r.state, r.private, r.model_type, r.description) == (State.IN_PROGRESS, False, "DECODER", "d")
    assert r.file_names == ["a.py", "b.bin"]
    assert r.languages == ("en", "python")
    assert len(r.registration_id) == 32 and r.registration_id != accepted().registration_id
    assert r.blob_path("a.py") == f"o/m/1/{r.registration_id}/0/a.py"
    assert r.blob_path("a.py", 3) == f"o/m/1/{r.registration_id}/3/a.py"
    assert not r.listed_publicly  # public, but nothing copied yet


@pytest.mark.parametrize(
    ("start", "step", "allowed"),
    [
        (State.IN_PROGRESS, "finish", True),
        (State.IN_PROGRESS, "fail", True),
        (State.IN_PROGRESS, "restart", False),
        (State.IN_PROGRESS, "replace_files", False),
        (State.FINISHED, "fail", False),
        (State.FINISHED, "finish", True),
        (State.FINISHED, "restart", False),
        (State.FINISHED, "replace_files", True),
        (State.FAILED, "restart", True),
        (State.FAILED, "finish", False),
        (State.FAILED, "replace_files", True),
        (State.DELETING, "finish", False),
        (State.DELETING, "fail", False),
        (State.DELETING, "restart", False),
        (State.DELETING, "replace_files", False),
        (State.DELETING, "mark_deleting", True),
    ],
)
def test_only_the_lifecycles_transitions_are_allowed(start: State, step: str, allowed: bool) -> None:
    r = accepted()
    r.state = start
    calls = {
        "finish": lambda: r.finish(T0, "done"),
        "fail": lambda: r.fail(T0, "broken"),
        "restart": lambda: r.restart(T0, "again"),
        "replace_files": lambda: r.replace_files(T0, ["c.bin"], by="alice"),
        "mark_deleting": lambda: r.mark_deleting(T0) if not r.gone else None,
    }
    if allowed:
        calls[step]()
    else:
        with pytest.raises(IllegalTransition):
            calls[step]()
        assert r.state is start


def test_a_held_lease_is_refused_until_it_lapses_and_a_takeover_is_counted() -> None:
    r = accepted()
    assert r.take_lease(T0, 30) is False
    with pytest.raises(LeaseHeld) as held:
        r.take_lease(T0 + timedelta(seconds=29), 30)
    assert held.value.until == T0 + timedelta(seconds=30)
    assert r.take_lease(T0 + timedelta(seconds=31), 30) is True  # the holder died
    assert r.takeovers == 1
    r.release_lease(T0, error="boom")
    assert (r.lease_id, r.lease_until, r.takeovers, r.last_error) == ("", EPOCH, 0, "boom")


def test_the_copy_is_given_up_at_the_fifth_takeover() -> None:
    r = accepted()
    r.take_lease(T0, 30)
    for death in range(1, MAX_TAKEOVERS + 1):
        r.take_lease(T0 + timedelta(seconds=31 * death), 30)
        assert r.given_up is (death >= MAX_TAKEOVERS)


def test_only_an_in_progress_registration_takes_a_lease() -> None:
    r = accepted()
    r.finish(T0, "done")
    with pytest.raises(IllegalTransition):
        r.take_lease(T0, 30)


def test_a_checkpoint_renews_the_lease_from_now() -> None:
    r = accepted()
    r.take_lease(T0, 30)
    r.renew_lease(T0 + timedelta(seconds=20), 30)
    assert r.lease_until == T0 + timedelta(seconds=50)
    assert r.last_progress_at == T0 + timedelta(seconds=20)


def test_finishing_releases_the_lease_and_lists_a_public_model() -> None:
    r = accepted()
    r.take_lease(T0, 30)
    r.finish(T0, "Registered 2 files")
    assert (r.lease_id, r.finished_once, r.listed_publicly) == ("", True, True)
    assert r.visible_to("someone else")


def test_a_tombstone_is_gone_for_everyone_and_drops_any_lease() -> None:
    r = accepted()
    r.take_lease(T0, 30)
    r.finish(T0, "done")
    r.mark_deleting(T0)
    assert r.gone and not r.listed_publicly
    assert not r.visible_to("o") and not r.visible_to("someone else")
    assert r.lease_id == ""


def test_replacing_files_appends_new_names_and_remembers_what_to_copy_again() -> None:
    r = accepted()
    r.finish(T0, "done")
    r.replace_files(T0, ["b.bin", "z.bin"], by="alice")
    assert r.state is State.IN_PROGRESS
    assert r.file_names == ["a.py", "b.bin", "z.bin"]  # appended: rows are numbered by position
    assert r.refresh_files == ["b.bin", "z.bin"]
    assert r.message == "Updating 2 files"


def test_messages_are_clipped_to_stay_readable() -> None:
    r = accepted()
    r.fail(T0, "x" * (MAX_MESSAGE_CHARS * 3))
    assert len(r.message) == MAX_MESSAGE_CHARS


def test_a_rebase_keeps_the_workers_fields_and_takes_the_owners_edits() -> None:
    worker = accepted()
    worker.take_lease(T0, 30)
    owner = accepted()
    owner.registration_id = worker.registration_id
    owner.description, owner.private, owner.etag = "edited", True, "fresh"
    worker.renew_lease(T0 + timedelta(seconds=5), 30)
    worker.rebase(owner)
    assert (worker.description, worker.private, worker.etag) == ("edited", True, "fresh")
    assert worker.lease_until == T0 + timedelta(seconds=35)
