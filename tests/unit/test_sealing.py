"""Write-only secrets sealed to their record; body digests that reveal nothing."""

from __future__ import annotations

import pytest

from registry.sealing import SealedUnreadable, Sealer

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
    with pytest.raises(SealedUnreadable, match="key is not configured"):
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
    key_id, mac = digest.split(":")
    assert len(key_id) == 16 and len(mac) == 64


# -- rotation ---------------------------------------------------------------------------------


def test_sealed_values_name_the_key_that_sealed_them() -> None:
    old, new = Sealer(KEY), Sealer(OTHER_KEY)
    assert old.key_id != new.key_id
    assert old.seal(SECRETS, "b").startswith(b"RS\x01" + bytes.fromhex(old.key_id))


def test_a_new_key_opens_what_a_previous_key_sealed_and_seals_with_itself() -> None:
    sealed = Sealer(KEY).seal(SECRETS, "b")
    rotated = Sealer(OTHER_KEY, previous=[KEY])
    assert rotated.unseal(sealed, "b") == SECRETS
    assert not rotated.is_current(sealed)
    resealed = rotated.seal(rotated.unseal(sealed, "b"), "b")
    assert rotated.is_current(resealed)
    with pytest.raises(SealedUnreadable):
        Sealer(KEY).unseal(resealed, "b")  # the old key alone cannot open the new seal


def test_values_sealed_before_key_ids_still_open() -> None:
    legacy = Sealer(KEY)
    nonce_and_cipher = legacy.seal(SECRETS, "b")[len(b"RS\x01") + 8 :]  # the format without a key id
    assert Sealer(OTHER_KEY, previous=[KEY]).unseal(nonce_and_cipher, "b") == SECRETS


def test_digests_made_with_a_previous_key_still_match_and_retired_ones_are_unknown() -> None:
    stored = Sealer(KEY).digest(SECRETS)
    assert Sealer(OTHER_KEY, previous=[KEY]).digest_matches(stored, SECRETS) is True
    assert Sealer(OTHER_KEY, previous=[KEY]).digest_matches(stored, {"other": 1}) is False
    assert Sealer(OTHER_KEY).digest_matches(stored, SECRETS) is None
    assert not Sealer(OTHER_KEY, previous=[KEY]).digest_is_current(stored)


# -- paging tokens ------------------------------------------------------------------------------


def test_tokens_are_opaque_and_open_only_for_the_caller_they_were_issued_to() -> None:
    sealer = Sealer(KEY)
    token = sealer.seal_token({"after": "secret-model!1"}, "alice")
    assert "secret-model" not in token
    assert sealer.open_token(token, "alice") == {"after": "secret-model!1"}
    with pytest.raises(SealedUnreadable):
        sealer.open_token(token, "bob")


@pytest.mark.parametrize("position", [0, 5, 12, 30, -1])
def test_a_tampered_token_is_refused(position: int) -> None:
    sealer = Sealer(KEY)
    token = list(sealer.seal_token({"after": "m!1"}, "alice"))
    token[position] = "A" if token[position] != "A" else "B"
    with pytest.raises(SealedUnreadable):
        sealer.open_token("".join(token), "alice")


@pytest.mark.parametrize("token", ["", "not a token", "=====", "AAAA", "%%%"])
def test_garbage_tokens_are_refused(token: str) -> None:
    with pytest.raises(SealedUnreadable):
        Sealer(KEY).open_token(token, "alice")
