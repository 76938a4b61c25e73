"""Write-only secrets sealed to their record; body digests that reveal nothing."""

from __future__ import annotations

import pytest

from registry.sealing import Sealer

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
SECRETS = {
    "model_files": {"model.pt": "https://a.blob.core.windows.net/c/model.pt?sv=1&sig=SECRET"},
    "private_packages": [],
    "docker_passwords": {"inference_properties": "hunter2"},
}


def test_seal_and_unseal_round_trip() -> None:
    sealer = Sealer(KEY)
    assert sealer.unseal(sealer.seal(SECRETS, "owner:m:1:rid"), "owner:m:1:rid") == SECRETS


def test_sealed_bytes_do_not_show_the_secrets() -> None:
    sealed = Sealer(KEY).seal(SECRETS, "owner:m:1:rid")
    assert b"SECRET" not in sealed
    assert b"hunter2" not in sealed
    assert b"sig=" not in sealed


def test_each_seal_is_different() -> None:
    sealer = Sealer(KEY)
    assert sealer.seal(SECRETS, "b") != sealer.seal(SECRETS, "b")


def test_sealed_data_is_bound_to_its_record() -> None:
    sealer = Sealer(KEY)
    sealed = sealer.seal(SECRETS, "owner:m:1:rid-1")
    with pytest.raises(ValueError, match="does not belong"):
        sealer.unseal(sealed, "owner:m:1:rid-2")
    with pytest.raises(ValueError, match="does not belong"):
        sealer.unseal(sealed, "mallory:m:1:rid-1")


def test_unseal_with_another_key_fails() -> None:
    sealed = Sealer(KEY).seal(SECRETS, "b")
    with pytest.raises(ValueError, match="key changed"):
        Sealer(OTHER_KEY).unseal(sealed, "b")


def test_tampered_sealed_data_fails() -> None:
    sealer = Sealer(KEY)
    sealed = bytearray(sealer.seal(SECRETS, "b"))
    sealed[-1] ^= 1
    with pytest.raises(ValueError, match="does not belong"):
        sealer.unseal(bytes(sealed), "b")


def test_digest_is_stable_across_key_order() -> None:
    sealer = Sealer(KEY)
    a = {"x": 1, "y": {"b": [1, 2], "a": "é"}}
    b = {"y": {"a": "é", "b": [1, 2]}, "x": 1}
    assert sealer.digest(a) == sealer.digest(b)
    assert sealer.digest(a) == Sealer(KEY).digest(a)


def test_digest_differs_across_bodies() -> None:
    sealer = Sealer(KEY)
    assert sealer.digest({"x": 1}) != sealer.digest({"x": 2})
    assert sealer.digest({"list": [1, 2]}) != sealer.digest({"list": [2, 1]})


def test_digest_differs_across_keys() -> None:
    assert Sealer(KEY).digest(SECRETS) != Sealer(OTHER_KEY).digest(SECRETS)


def test_digest_does_not_reveal_the_body() -> None:
    digest = Sealer(KEY).digest(SECRETS)
    assert "SECRET" not in digest
    assert "hunter2" not in digest
    assert len(digest) == 64
