"""Signed manifests (registry/signing): the model-signing format, the signers, the published keys,
and the signing settings. The verifier of model-signing itself runs in tests/integration/test_download.py."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from registry.settings import SettingsError
from registry.signing import (
    FileDigest,
    KeyVaultSigner,
    LocalKeySigner,
    SignatureInvalid,
    SigningKeyError,
    key_id_of,
    path_problem,
    public_keys_from_document,
    sign_manifest,
    signer_from_settings,
    signers,
    signing_keys_document,
    verify_manifest_signature,
)
from registry.signing.bundle import pae
from registry.signing.model_signer import RegistryModelSigner, model_signer_from_settings
from tests.builders import make_deps, make_settings

FILES = [
    FileDigest("weights/model.bin", 3, hashlib.sha256(b"abc").hexdigest()),
    FileDigest("config.json", 2, hashlib.sha256(b"{}").hexdigest()),
]
REGISTRY = {"name": "demo", "version": "1.0", "owner": "alice", "revision": 2}


def keys_of(*signers: LocalKeySigner) -> dict[str, bytes]:
    return {s.key_id: s.public_key_pem() for s in signers}


def payload_of(bundle: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return document


def with_payload(bundle: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(bundle))
    changed["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(document).encode()).decode()
    return changed


# --- the format -----------------------------------------------------------------------------------


def test_a_signed_manifest_verifies_and_reads_back_files_sizes_and_model() -> None:
    signer = LocalKeySigner.generate()
    signed = sign_manifest(FILES, signer, subject="demo", registry=REGISTRY)

    verified = verify_manifest_signature(signed.bundle, keys_of(signer))

    assert verified.key_id == signer.key_id == signed.key_id
    assert verified.files == {f.path: f.sha256 for f in FILES}
    assert verified.sizes == {"weights/model.bin": 3, "config.json": 2}
    assert verified.registry == REGISTRY
    assert verified.digest == signed.digest
    assert verified.ignore_paths == ("model.sig", "registry-manifest.json")


def test_the_statement_is_what_model_signing_writes_for_file_serialization() -> None:
    signer = LocalKeySigner.generate()
    bundle = sign_manifest(FILES, signer, subject="demo").bundle

    statement = payload_of(bundle)

    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"] == {"publicKey": {"hint": signer.key_id}, "tlogEntries": []}
    assert bundle["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    assert statement["predicate"]["serialization"] == {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": False,
        "ignore_paths": ["model.sig", "registry-manifest.json"],
    }
    # Sorted by path, and the subject digest is the SHA-256 of the digests in that order.
    names = [r["name"] for r in statement["predicate"]["resources"]]
    assert names == ["config.json", "weights/model.bin"]
    joined = b"".join(bytes.fromhex(r["digest"]) for r in statement["predicate"]["resources"])
    root = hashlib.sha256(joined).hexdigest()
    assert statement["subject"] == [{"name": "demo", "digest": {"sha256": root}}]


def test_resources_are_ordered_by_path_components_as_model_signing_orders_them() -> None:
    digest = hashlib.sha256(b"").hexdigest()
    files = [FileDigest(p, 0, digest) for p in ("a.b/c", "a/b", "a-z")]
    statement = payload_of(sign_manifest(files, LocalKeySigner.generate(), subject="m").bundle)
    # As strings "a-z" < "a.b/c" < "a/b"; component-wise "a" sorts before "a-z" and "a.b".
    assert [r["name"] for r in statement["predicate"]["resources"]] == ["a/b", "a-z", "a.b/c"]


def test_the_signature_covers_the_dsse_pae_of_the_payload() -> None:
    signer = LocalKeySigner.generate()
    bundle = sign_manifest(FILES, signer, subject="demo").bundle
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    signature = base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"])
    public = serialization.load_pem_public_key(signer.public_key_pem())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    expected = b"DSSEv1 28 application/vnd.in-toto+json %d " % len(payload) + payload
    assert pae("application/vnd.in-toto+json", payload) == expected
    public.verify(signature, expected, ec.ECDSA(hashes.SHA256()))  # raises if not


def test_a_changed_digest_in_the_payload_fails_verification() -> None:
    signer = LocalKeySigner.generate()
    bundle = sign_manifest(FILES, signer, subject="demo", registry=REGISTRY).bundle
    statement = payload_of(bundle)
    statement["predicate"]["resources"][0]["digest"] = hashlib.sha256(b"evil").hexdigest()

    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_manifest_signature(with_payload(bundle, statement), keys_of(signer))


def test_a_changed_revision_in_the_payload_fails_verification() -> None:
    signer = LocalKeySigner.generate()
    bundle = sign_manifest(FILES, signer, subject="demo", registry=REGISTRY).bundle
    statement = payload_of(bundle)
    statement["predicate"]["registry"]["revision"] = 1

    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_manifest_signature(with_payload(bundle, statement), keys_of(signer))


def test_a_changed_signature_fails_verification() -> None:
    signer = LocalKeySigner.generate()
    bundle = sign_manifest(FILES, signer, subject="demo").bundle
    signature = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    signature[-3] ^= 0x01
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(signature)).decode()

    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_manifest_signature(bundle, keys_of(signer))


def test_a_bundle_signed_by_an_unpublished_key_fails_and_says_so() -> None:
    stranger, registry = LocalKeySigner.generate(), LocalKeySigner.generate()
    bundle = sign_manifest(FILES, stranger, subject="demo").bundle

    with pytest.raises(SignatureInvalid, match="not among the published keys"):
        verify_manifest_signature(bundle, keys_of(registry))


def test_a_hint_naming_a_published_key_does_not_make_another_keys_signature_valid() -> None:
    stranger, registry = LocalKeySigner.generate(), LocalKeySigner.generate()
    bundle = sign_manifest(FILES, stranger, subject="demo").bundle
    bundle["verificationMaterial"]["publicKey"]["hint"] = registry.key_id

    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_manifest_signature(bundle, keys_of(registry))


def test_a_statement_whose_subject_does_not_match_its_resources_is_refused_even_if_signed() -> None:
    signer = LocalKeySigner.generate()
    bundle = sign_manifest(FILES, signer, subject="demo").bundle
    statement = payload_of(bundle)
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    payload = json.dumps(statement).encode()
    resigned = with_payload(bundle, statement)
    resigned["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(
        signer.sign(pae("application/vnd.in-toto+json", payload))
    ).decode()

    with pytest.raises(SignatureInvalid, match="subject digest"):
        verify_manifest_signature(resigned, keys_of(signer))


@pytest.mark.parametrize(
    "bundle",
    [{}, {"mediaType": "application/json"}, {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}],
)
def test_malformed_bundles_are_refused_with_a_reason(bundle: dict[str, Any]) -> None:
    with pytest.raises(SignatureInvalid):
        verify_manifest_signature(bundle, keys_of(LocalKeySigner.generate()))


@pytest.mark.parametrize(
    "path",
    [
        *("", "/etc/passwd", "a/../b", "./a", "a//b", "a\\b", "x\ny"),
        *("model.sig", "registry-manifest.json", ".git/x", ".gitignore"),
    ],
)
def test_paths_a_downloaded_directory_cannot_hold_are_not_signed(path: str) -> None:
    assert path_problem(path)
    with pytest.raises(ValueError, match="file"):
        sign_manifest([FileDigest(path, 0, "0" * 64)], LocalKeySigner.generate(), subject="m")


def test_a_file_that_is_also_a_directory_is_not_signed() -> None:
    files = [FileDigest("a", 0, "0" * 64), FileDigest("a/b", 0, "0" * 64)]
    with pytest.raises(ValueError, match="also a directory"):
        sign_manifest(files, LocalKeySigner.generate(), subject="m")


@pytest.mark.parametrize("digest", ["0" * 63, "G" * 64, "A" * 64])
def test_digests_must_be_64_lowercase_hex_digits(digest: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        sign_manifest([FileDigest("a", 0, digest)], LocalKeySigner.generate(), subject="m")


# --- published keys and rotation ------------------------------------------------------------------


def test_the_signing_keys_document_publishes_each_key_as_jwk_and_pem_under_its_hint() -> None:
    current, previous = LocalKeySigner.generate(), LocalKeySigner.generate()

    document = signing_keys_document(current, [previous.public_key_pem()])

    assert [k["kid"] for k in document["keys"]] == [current.key_id, previous.key_id]
    for jwk, signer in zip(document["keys"], (current, previous), strict=True):
        assert {k: jwk[k] for k in ("kty", "crv", "alg", "use")} == {
            "kty": "EC",
            "crv": "P-256",
            "alg": "ES256",
            "use": "sig",
        }
        public = serialization.load_pem_public_key(signer.public_key_pem())
        assert isinstance(public, ec.EllipticCurvePublicKey)
        numbers = public.public_numbers()
        assert base64.urlsafe_b64decode(jwk["x"] + "=") == numbers.x.to_bytes(32, "big")
        assert base64.urlsafe_b64decode(jwk["y"] + "=") == numbers.y.to_bytes(32, "big")
    assert document["pem"] == {s.key_id: s.public_key_pem().decode() for s in (current, previous)}
    assert "PRIVATE" not in json.dumps(document)


def test_after_a_rotation_an_old_signature_verifies_with_the_previous_public_key() -> None:
    old, new = LocalKeySigner.generate(), LocalKeySigner.generate()
    old_bundle = sign_manifest(FILES, old, subject="demo").bundle
    new_bundle = sign_manifest(FILES, new, subject="demo").bundle

    published = public_keys_from_document(signing_keys_document(new, [old.public_key_pem()]))

    assert verify_manifest_signature(old_bundle, published).key_id == old.key_id
    assert verify_manifest_signature(new_bundle, published).key_id == new.key_id
    without_previous = public_keys_from_document(signing_keys_document(new))
    with pytest.raises(SignatureInvalid):
        verify_manifest_signature(old_bundle, without_previous)


def test_keys_whose_id_or_jwk_does_not_match_their_pem_are_not_trusted() -> None:
    real, impostor = LocalKeySigner.generate(), LocalKeySigner.generate()
    document = signing_keys_document(real)
    document["pem"][real.key_id] = impostor.public_key_pem().decode()  # a PEM under another key's id
    assert public_keys_from_document(document) == {}

    document = signing_keys_document(real)
    document["keys"][0]["x"] = signing_keys_document(impostor)["keys"][0]["x"]
    assert public_keys_from_document(document) == {}

    assert public_keys_from_document(signing_keys_document(real)) == {real.key_id: real.public_key_pem()}


def test_the_key_id_is_model_signings_public_key_hint() -> None:
    signer = LocalKeySigner.generate()
    pem = signer.public_key_pem()
    assert signer.key_id == key_id_of(pem) == hashlib.sha256(pem).hexdigest()


# --- Key Vault, faked at the SDK boundary ---------------------------------------------------------


@dataclass
class FakeJwk:
    crv: str
    x: bytes
    y: bytes


@dataclass
class FakeKeyVaultKey:
    key: FakeJwk


@dataclass
class FakeKeyProperties:
    version: str
    enabled: bool


@dataclass
class FakeSignResult:
    key_id: str
    algorithm: str
    signature: bytes


class FakeVault:
    """KeyClient.get_key and CryptographyClient.sign of one EC key, as the vault answers them."""

    def __init__(self, curve: ec.EllipticCurve | None = None) -> None:
        self.private = ec.generate_private_key(curve or ec.SECP256R1())
        self.calls: list[tuple[str, Any]] = []
        # Earlier versions of the key (a rotation leaves them): version -> (key, enabled).
        self.earlier: dict[str, tuple[ec.EllipticCurvePrivateKey, bool]] = {}
        self.unreachable = False

    def list_properties_of_key_versions(self, name: str, **kwargs: Any) -> list[FakeKeyProperties]:
        if self.unreachable:
            raise ServiceRequestError("vault unreachable")
        versions = [FakeKeyProperties(v, enabled) for v, (_, enabled) in self.earlier.items()]
        return [*versions, FakeKeyProperties(KEY_URI.rsplit("/", 1)[1], True)]

    def get_key(self, name: str, version: str | None = None, **kwargs: Any) -> FakeKeyVaultKey:
        self.calls.append(("get_key", (name, version)))
        private = self.earlier[version][0] if version in self.earlier else self.private
        numbers = private.public_key().public_numbers()
        size = (private.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384"}[private.curve.name]
        return FakeKeyVaultKey(FakeJwk(crv, numbers.x.to_bytes(size, "big"), numbers.y.to_bytes(size, "big")))

    def sign(self, algorithm: Any, digest: bytes, **kwargs: Any) -> FakeSignResult:
        self.calls.append(("sign", (getattr(algorithm, "value", algorithm), digest)))
        der = self.private.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        r, s = decode_dss_signature(der)
        return FakeSignResult("kid", str(algorithm), r.to_bytes(32, "big") + s.to_bytes(32, "big"))


KEY_URI = "https://kv-registry.vault.azure.net/keys/manifest-signing/0123456789abcdef0123456789abcdef"


def test_the_key_vault_signer_signs_the_sha256_digest_with_es256_and_answers_der() -> None:
    vault = FakeVault()
    signer = KeyVaultSigner(KEY_URI, key_client=vault, crypto_client=vault)

    signed = sign_manifest(FILES, signer, subject="demo", registry=REGISTRY)

    verified = verify_manifest_signature(signed.bundle, {signer.key_id: signer.public_key_pem()})
    assert verified.files == {f.path: f.sha256 for f in FILES}
    calls = dict(vault.calls)
    assert calls["get_key"] == ("manifest-signing", "0123456789abcdef0123456789abcdef")
    algorithm, digest = calls["sign"]
    payload = base64.b64decode(signed.bundle["dsseEnvelope"]["payload"])
    assert algorithm == "ES256"
    assert digest == hashlib.sha256(pae("application/vnd.in-toto+json", payload)).digest()
    expected_pem = vault.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert signer.public_key_pem() == expected_pem
    assert signer.key_id == hashlib.sha256(expected_pem).hexdigest()


def test_the_key_vault_signer_reads_the_key_on_first_use_not_when_built() -> None:
    vault = FakeVault()
    signer = KeyVaultSigner(KEY_URI, key_client=vault, crypto_client=vault)
    assert vault.calls == []
    assert signer.key_id == signer.key_id
    assert [c[0] for c in vault.calls] == ["get_key"]


def test_a_key_vault_key_that_is_not_p256_is_refused() -> None:
    signer = KeyVaultSigner(KEY_URI, key_client=FakeVault(ec.SECP384R1()), crypto_client=FakeVault())
    with pytest.raises(SigningKeyError, match="P-256"):
        _ = signer.key_id


def test_a_malformed_signature_from_the_vault_is_refused() -> None:
    vault = FakeVault()
    signer = KeyVaultSigner(KEY_URI, key_client=vault, crypto_client=vault)
    vault.sign = lambda algorithm, digest, **kw: FakeSignResult("kid", "ES256", b"\x01" * 70)  # type: ignore[method-assign]
    with pytest.raises(SigningKeyError, match="70-byte"):
        signer.sign(b"data")


# --- settings -------------------------------------------------------------------------------------


def pem_setting(pem: bytes) -> str:
    return base64.b64encode(pem).decode()


def private_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_a_local_signing_key_and_previous_public_keys_load_from_settings() -> None:
    key, old = private_pem(), LocalKeySigner.generate().public_key_pem()
    settings = make_settings(
        REGISTRY_SIGNING_KEY=pem_setting(key), REGISTRY_SIGNING_PREVIOUS_PUBLIC_KEYS=f" {pem_setting(old)} ,"
    )
    assert settings.signing_key_pem == key and settings.signing_previous_public_keys == (old,)
    signer = signer_from_settings(settings)
    assert isinstance(signer, LocalKeySigner) and signer.key_id == LocalKeySigner(key).key_id


def test_the_sample_settings_hold_a_working_development_signing_key() -> None:
    sample = Path(__file__).resolve().parents[2] / "local.settings.sample.json"
    values = json.loads(sample.read_text())["Values"]
    signer = signer_from_settings(make_settings(REGISTRY_SIGNING_KEY=values["REGISTRY_SIGNING_KEY"]))
    bundle = sign_manifest(FILES, signer, subject="demo").bundle
    assert verify_manifest_signature(bundle, {signer.key_id: signer.public_key_pem()}).files


def test_without_a_signing_key_the_signer_cannot_be_built() -> None:
    with pytest.raises(SettingsError, match="REGISTRY_SIGNING_KEY_ID"):
        signer_from_settings(make_settings())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"REGISTRY_SIGNING_KEY": "not base64!"}, "PEM"),
        ({"REGISTRY_SIGNING_KEY": base64.b64encode(b"plain text").decode()}, "PEM"),
        ({"REGISTRY_SIGNING_KEY_ID": "http://kv.vault.azure.net/keys/k/1"}, "Key Vault key URI"),
        ({"REGISTRY_SIGNING_KEY_ID": "https://kv.vault.azure.net/secrets/k/1"}, "Key Vault key URI"),
        ({"REGISTRY_SIGNING_PREVIOUS_PUBLIC_KEYS": "abc"}, "PEM"),
    ],
)
def test_malformed_signing_settings_are_refused(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        make_settings(**overrides)


def test_a_local_key_and_a_key_vault_key_together_are_refused() -> None:
    with pytest.raises(SettingsError, match="not both"):
        make_settings(REGISTRY_SIGNING_KEY=pem_setting(private_pem()), REGISTRY_SIGNING_KEY_ID=KEY_URI)


def test_a_private_key_in_app_settings_is_refused_in_azure() -> None:
    with pytest.raises(SettingsError, match="Key Vault"):
        make_settings(REGISTRY_SIGNING_KEY=pem_setting(private_pem()), WEBSITE_SITE_NAME="func-registry")


def test_a_key_vault_key_uri_loads_in_azure() -> None:
    settings = make_settings(REGISTRY_SIGNING_KEY_ID=KEY_URI, WEBSITE_SITE_NAME="func-registry")
    assert settings.signing_key_uri == KEY_URI and settings.signing_key_pem is None


def test_an_invalid_local_key_is_refused_when_the_signer_is_built() -> None:
    rsa_like = base64.b64encode(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").decode()
    with pytest.raises(SigningKeyError):
        signer_from_settings(make_settings(REGISTRY_SIGNING_KEY=rsa_like))


# --- the registry's ModelSigner port ----------------------------------------------------------------


def test_the_model_signer_signs_a_revisions_files_with_the_model_bound_and_publishes_its_keys() -> None:
    old = LocalKeySigner.generate()
    settings = make_settings(
        REGISTRY_SIGNING_KEY=pem_setting(private_pem()),
        REGISTRY_SIGNING_PREVIOUS_PUBLIC_KEYS=pem_setting(old.public_key_pem()),
    )
    model_signer = model_signer_from_settings(settings)
    assert model_signer is not None

    bundle = model_signer.sign_files(FILES, registry=REGISTRY)

    published = public_keys_from_document(model_signer.published_keys())
    assert list(published) == [model_signer.key_id, old.key_id]
    verified = verify_manifest_signature(bundle, published)
    assert verified.subject == "demo" and verified.registry == REGISTRY
    assert verified.files == {f.path: f.sha256 for f in FILES}


def test_without_signing_settings_nothing_signs() -> None:
    assert model_signer_from_settings(make_settings()) is None


def test_the_composition_root_wires_the_signer_from_the_settings() -> None:
    settings = make_settings(REGISTRY_SIGNING_KEY=pem_setting(private_pem()))
    deps = make_deps(settings)  # build() with fakes for the storage ports
    assert isinstance(deps.signer, RegistryModelSigner)
    assert deps.signer.key_id == LocalKeySigner(settings.signing_key_pem or b"").key_id


def test_a_key_vault_keys_earlier_enabled_versions_are_published_and_kept_while_the_vault_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(signers, "_EARLIER_KEYS_TTL", 0.0)  # every call reads the vault again
    vault = FakeVault()
    older, disabled = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    vault.earlier = {"v1": (older, True), "v0": (disabled, False)}
    signer = RegistryModelSigner(KeyVaultSigner(KEY_URI, key_client=vault, crypto_client=vault))

    published = signer.published_keys()["pem"]
    older_pem = older.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert list(published) == [signer.key_id, key_id_of(older_pem)]  # current first; no disabled key
    vault.unreachable = True
    assert signer.published_keys()["pem"] == published
