"""The RegistrationStore contract, file rows: kept per registration id, checkpointed under ETags."""

from __future__ import annotations

import dataclasses

import pytest

from registry.domain.errors import AlreadyExists, ConcurrentUpdate
from registry.domain.model import FileProgress, Registration
from registry.domain.vocabulary import FileState
from registry.ports import RegistrationStore
from tests.contract.records import registration


def _rows(r: Registration, count: int) -> list[FileProgress]:
    return [FileProgress(i, f"dir/file-{i}.bin") for i in range(count)]


def test_file_rows_read_back_in_index_order_each_with_an_etag(store: RegistrationStore) -> None:
    r = store.insert(registration())
    rows = _rows(r, 150)  # more than one entity group transaction holds
    rows[3] = dataclasses.replace(
        rows[3], state=FileState.FINISHED, size=10, bytes_copied=10, content_md5="md5"
    )
    store.insert_files(r, list(reversed(rows)))

    files = store.files(r)

    assert files == rows
    assert all(f.etag for f in files)


def test_inserting_a_file_row_twice_is_refused(store: RegistrationStore) -> None:
    r = store.insert(registration())
    store.insert_files(r, _rows(r, 2))

    with pytest.raises(AlreadyExists):
        store.insert_files(r, [FileProgress(1, "again")])

    assert [f.target for f in store.files(r)] == ["dir/file-0.bin", "dir/file-1.bin"]


def test_replace_file_checkpoints_over_the_etag_it_read_only(store: RegistrationStore) -> None:
    r = store.insert(registration())
    store.insert_files(r, _rows(r, 2))
    mine, theirs = store.files(r)[0], store.files(r)[0]

    mine.bytes_copied, mine.state = 4096, FileState.COPYING
    saved = store.replace_file(r, mine)
    theirs.bytes_copied = 1
    with pytest.raises(ConcurrentUpdate):
        store.replace_file(r, theirs)
    with pytest.raises(ConcurrentUpdate):
        store.replace_file(r, dataclasses.replace(mine, index=7, etag=saved.etag))  # no such row

    current = store.files(r)[0]
    assert current.bytes_copied == 4096 and current.state is FileState.COPYING
    assert current.etag == saved.etag


def test_a_new_registration_of_the_same_version_sees_none_of_the_old_rows(store: RegistrationStore) -> None:
    old = store.insert(registration())
    store.insert_files(old, _rows(old, 3))
    store.delete(old)
    new = store.insert(registration())
    assert new.registration_id != old.registration_id

    assert store.files(new) == []
    store.insert_files(new, [FileProgress(0, "fresh.bin")])
    store.forget_files(new)

    assert store.files(new) == []
    assert [f.target for f in store.files(old)] == [f"dir/file-{i}.bin" for i in range(3)]
    store.forget_files(old)
    assert store.files(old) == []
    store.forget_files(old)  # nothing left to forget: still fine
