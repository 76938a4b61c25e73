"""Verified, resumable downloads of a registered model, and re-checks of a downloaded directory.

    python -m registry download NAME VERSION OWNER --dir DIR [--revision N]
    python -m registry verify DIR

`download` fetches the version's signed manifest and the registry's published signing keys, checks
the signature (OpenSSF model-signing format, registry/signing) and that the manifest says what the
signature signs, then downloads every file through the registry's links, several at once, into
`<file>.part` files that an interrupted run resumes with HTTP Range requests. Each file's SHA-256
is checked before it takes its name. It writes the signature (`model.sig`) and the manifest
(`registry-manifest.json`) into DIR beside the files: the signature lists both in its ignored
paths, so the directory verifies as it is with model-signing's own verifier:

    model_signing verify key --signature DIR/model.sig --public_key KEY.pem DIR

(KEY.pem: the `pem` entry of `GET /api/v1.0/signing-keys` whose key id is the bundle's hint).

`verify DIR` checks the same signature again (against the registry's published keys, a
`--public-key` file, or the key recorded at download time) and re-hashes every file. Both exit 1,
naming the files, on any mismatch or a bad signature.

The API is `--api URL` or REGISTRY_API. Locally, in dev mode, `--as USER` sends the principal
headers; in Azure a token for `api://<client id>/user_impersonation` from the Azure CLI login
(`--client-id` or REGISTRY_CLIENT_ID).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import requests
import rfc8785

from registry.domain.vocabulary import GIT_PATHS
from registry.signing import (
    IGNORED_PATHS,
    MANIFEST_FILE,
    SIGNATURE_FILE,
    SignatureInvalid,
    VerifiedManifest,
    key_id_of,
    public_keys_from_document,
    verify_manifest_signature,
)

CHUNK = 1024 * 1024
_INTERRUPTIONS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
RETRIES = 5  # interrupted transfers retried (each from where it stopped) before a file is given up
TIMEOUT = (10, 60)  # connect, read


class DownloadError(RuntimeError):
    """The registry could not be reached or refused a request: no verdict on the files."""


# ---------------------------------------------------------------------------------------------
# The registry API
# ---------------------------------------------------------------------------------------------


class _Progress(Protocol):
    def update(self, n: float | None = 1) -> bool | None: ...


class _NoProgress:
    def update(self, n: float | None = 1) -> bool | None:
        return None


def api_root(url: str) -> str:
    """The host root, from a URL given with or without the /api/v1.0 suffix."""
    root = url.rstrip("/")
    for suffix in ("/api/v1.0", "/api"):
        if root.endswith(suffix):
            root = root[: -len(suffix)]
    return root


class Credentials:
    """Headers that say who calls: dev-mode principal headers, or an Azure CLI bearer token
    (refreshed when close to expiry)."""

    def __init__(self, as_user: str | None = None, client_id: str | None = None) -> None:
        self._as_user = as_user
        self._scope = f"api://{client_id}/user_impersonation" if client_id else None
        self._token: Any = None
        self._lock = threading.Lock()

    def headers(self) -> dict[str, str]:
        if self._as_user:
            return {"X-MS-CLIENT-PRINCIPAL-ID": self._as_user, "X-MS-CLIENT-PRINCIPAL-NAME": self._as_user}
        if self._scope is None:
            return {}
        with self._lock:
            if self._token is None or self._token.expires_on - time.time() < 300:
                from azure.identity import AzureCliCredential

                self._token = AzureCliCredential().get_token(self._scope)
            return {"Authorization": f"Bearer {self._token.token}"}


def _session(pool: int) -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max(pool, 4))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _refusal(response: requests.Response, what: str) -> DownloadError:
    try:
        message = response.json().get("message") or response.text
    except ValueError:
        message = response.text
    hint = {
        401: " (not signed in: --as USER locally, --client-id in Azure)",
        404: " (no such model visible to you)",
    }
    return DownloadError(
        f"{what}: HTTP {response.status_code}{hint.get(response.status_code, '')}: {message[:300]}"
    )


@dataclass
class Registry:
    root: str
    credentials: Credentials
    api: requests.Session = field(default_factory=lambda: _session(16))

    def _get(self, path: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.api.get(
                f"{self.root}/api/v1.0/{path}", headers=self.credentials.headers(), timeout=TIMEOUT, **kwargs
            )
        except requests.RequestException as error:
            raise DownloadError(f"{what}: {error}") from None
        return response

    def manifest(self, name: str, version: str, owner: str, revision: int | None) -> dict[str, Any]:
        params = {"revision": str(revision)} if revision is not None else None
        response = self._get(
            f"model/{_model_path(name, version, owner)}/manifest", "the manifest", params=params
        )
        if response.status_code != 200:
            raise _refusal(response, "the manifest")
        document: dict[str, Any] = response.json()
        return document

    def public_keys(self) -> dict[str, bytes]:
        response = self._get("signing-keys", "the signing keys")
        if response.status_code != 200:
            raise _refusal(response, "the signing keys")
        return public_keys_from_document(response.json())

    def file_link(self, name: str, version: str, owner: str, path: str) -> tuple[str, str | None]:
        """The read URL of a file (the registry's redirect) and its Repr-Digest sha-256, hex."""
        response = self._get(
            f"model/{_model_path(name, version, owner)}/files/{quote(path, safe='/')}",
            f"the link to {path}",
            allow_redirects=False,
        )
        if response.status_code not in (301, 302, 303, 307, 308) or "Location" not in response.headers:
            raise _refusal(response, f"the link to {path}")
        return response.headers["Location"], repr_digest_sha256(response.headers.get("Repr-Digest"))


def _model_path(name: str, version: str, owner: str) -> str:
    return "/".join(quote(part, safe="") for part in (name, version, owner))


def repr_digest_sha256(header: str | None) -> str | None:
    """The sha-256 of an RFC 9530 Repr-Digest header (`sha-256=:<base64>:`), as hex."""
    for member in (header or "").split(","):
        key, _, value = member.strip().partition("=")
        if key.strip().lower() == "sha-256" and value.startswith(":") and value.endswith(":"):
            try:
                return base64.b64decode(value[1:-1], validate=True).hex()
            except (binascii.Error, ValueError):
                return None
    return None


# ---------------------------------------------------------------------------------------------
# What the manifest says, against what the signature signs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    sha256: str


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """The registry's manifest digest: SHA-256 of the manifest's canonical JSON (RFC 8785) without
    its digest, key id and signature (nor what a download adds to the copy it keeps)."""
    body = {k: v for k, v in manifest.items() if k not in ("digest", "key_id", "signature", "public_key_pem")}
    return "sha256:" + hashlib.sha256(rfc8785.dumps(body)).hexdigest()


def checked_entries(
    manifest: Mapping[str, Any], signed: VerifiedManifest, *, expect: Mapping[str, Any] | None = None
) -> list[Entry]:
    """The manifest's files, once it agrees with the signature in everything it says (files,
    sizes, digests, the model's identity and revision, the key); SignatureInvalid otherwise."""
    entries = [
        Entry(str(f["path"]), int(f["size"]), str(f["sha256"]).lower()) for f in manifest.get("files", [])
    ]
    listed = {e.path: e.sha256 for e in entries}
    if listed != signed.files or len(listed) != len(entries):
        differ = sorted(set(listed.items()) ^ set(signed.files.items()))
        names = sorted({path for path, _ in differ}) or ["(a file listed twice)"]
        raise SignatureInvalid(f"the manifest's files differ from what is signed: {', '.join(names)}")
    sizes = {e.path: e.size for e in entries}
    if signed.sizes and sizes != signed.sizes:
        names = sorted(p for p in sizes if sizes[p] != signed.sizes.get(p))
        raise SignatureInvalid(f"the manifest's sizes differ from what is signed: {', '.join(names)}")
    for key in ("name", "version", "owner", "revision"):
        if key not in signed.registry:
            continue  # a bundle over the files alone: the files are still bound, not the model
        if key in manifest and manifest[key] != signed.registry[key]:
            signed_value = signed.registry[key]
            raise SignatureInvalid(
                f"the manifest's {key} {manifest[key]!r} is not the signed {signed_value!r}"
            )
        wanted = (expect or {}).get(key)
        if wanted is not None and str(wanted) != str(signed.registry[key]):
            raise SignatureInvalid(f"the signature is for {key} {signed.registry[key]!r}, not {wanted!r}")
    if manifest.get("key_id") not in (None, "", signed.key_id):
        raise SignatureInvalid("the manifest names another signing key than the one that signed it")
    if "digest" in manifest and manifest["digest"] != manifest_digest(manifest):
        raise SignatureInvalid("the manifest's digest is not the digest of its content (RFC 8785)")
    return entries


# ---------------------------------------------------------------------------------------------
# Downloading one file
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    path: str
    problem: str | None = None  # None: the file is in place and its digest checked
    fetched: int = 0  # bytes transferred in this run


def part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def sha256_of(path: Path, hasher: Any = None, progress: _Progress | None = None) -> Any:
    hasher = hasher or hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            hasher.update(chunk)
            if progress is not None:
                progress.update(len(chunk))
    return hasher


@dataclass
class FileDownloader:
    directory: Path
    link: Callable[[str], tuple[str, str | None]]  # path -> (read URL, Repr-Digest hex)
    storage: requests.Session
    progress: _Progress

    def fetch(self, entry: Entry) -> Outcome:
        try:
            return self._fetch(entry)
        except (DownloadError, requests.RequestException, OSError) as error:
            return Outcome(entry.path, f"not downloaded: {error}")

    def _fetch(self, entry: Entry) -> Outcome:
        target = self.directory / entry.path
        part = part_path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if self._already_here(entry, target, part):
            return Outcome(entry.path)
        hasher = hashlib.sha256()
        have = part.stat().st_size if part.exists() else 0
        if have > entry.size:
            part.unlink()
            have = 0
        if have:
            sha256_of(part, hasher, self.progress)  # resume: the finished part is hashed, not fetched
        part.touch()
        fetched = 0
        for attempt in range(RETRIES + 1):
            url, announced = self.link(entry.path)
            if announced is not None and announced != entry.sha256:
                return Outcome(
                    entry.path,
                    f"the registry announces sha256 {announced}, the signed manifest {entry.sha256}",
                )
            try:
                have, hasher, got = self._transfer(url, part, have, hasher, entry.size)
                fetched += got
                break
            except _INTERRUPTIONS as error:
                if attempt == RETRIES:
                    return Outcome(entry.path, f"interrupted {RETRIES + 1} times: {error}", fetched)
                time.sleep(min(2**attempt * 0.2, 5))
        found = hasher.hexdigest()
        if have != entry.size or found != entry.sha256:
            part.unlink(missing_ok=True)
            expected = f"expected {entry.sha256} ({entry.size} bytes)"
            return Outcome(entry.path, f"sha256 {found} ({have} bytes), {expected}", fetched)
        os.replace(part, target)
        return Outcome(entry.path, None, fetched)

    def _already_here(self, entry: Entry, target: Path, part: Path) -> bool:
        """An earlier run finished this file, and it is right; a wrong one is removed."""
        if not target.is_file() or part.exists():
            return False
        size_matches = target.stat().st_size == entry.size
        if size_matches and sha256_of(target, progress=self.progress).hexdigest() == entry.sha256:
            return True
        target.unlink()
        return False

    def _transfer(self, url: str, part: Path, have: int, hasher: Any, size: int) -> tuple[int, Any, int]:
        if have >= size:
            return have, hasher, 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        got = 0
        with self.storage.get(url, headers=headers, stream=True, timeout=TIMEOUT) as response:
            if response.status_code == 416 and have == size:
                return have, hasher, 0
            if response.status_code == 206:
                start = response.headers.get("Content-Range", "").removeprefix("bytes ").split("-")[0]
                if start != str(have):
                    raise DownloadError(
                        f"asked for bytes from {have}, got {response.headers.get('Content-Range')}"
                    )
                mode = "ab"
            elif response.status_code == 200:
                if have:  # the server ignored the range: start again
                    hasher, have = hashlib.sha256(), 0
                mode = "wb"
            else:
                raise DownloadError(f"the storage answered HTTP {response.status_code}")
            with part.open(mode) as stream:
                for chunk in response.iter_content(CHUNK):
                    stream.write(chunk)
                    hasher.update(chunk)
                    have += len(chunk)
                    got += len(chunk)
                    self.progress.update(len(chunk))
                    if have > size:
                        break  # more than the manifest says: the digest check will refuse it
        return have, hasher, got


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    problems: list[str] = field(default_factory=list)
    fetched: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str
    owner: str
    revision: int | None = None  # None: the current revision


def download(
    registry: Registry, model: ModelRef, directory: Path, *, parallel: int = 4, progress: bool = True
) -> Result:
    """Download and verify a model into `directory` (resuming what an earlier run left)."""
    name, version, owner, revision = model.name, model.version, model.owner, model.revision
    manifest = registry.manifest(name, version, owner, revision)
    keys = registry.public_keys()
    try:
        signed = verify_manifest_signature(manifest.get("signature") or {}, keys)
        entries = checked_entries(
            manifest, signed, expect={"name": name, "version": version, "owner": owner, "revision": revision}
        )
    except SignatureInvalid as error:
        return Result([f"bad signature: {error}"])
    directory.mkdir(parents=True, exist_ok=True)
    _write_sidecars(directory, manifest, keys[signed.key_id])

    def link(path: str) -> tuple[str, str | None]:
        return registry.file_link(name, version, owner, path)  # asked again on a retry: read URLs expire

    storage = _session(parallel)  # no registry credentials go to the storage's read URLs
    total = sum(e.size for e in entries)
    bar = _progress_bar(total, progress)
    downloader = FileDownloader(directory, link, storage, bar)
    try:
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            outcomes = list(pool.map(downloader.fetch, entries))
    finally:
        close = getattr(bar, "close", None)
        if close:
            close()
    result = Result(fetched=sum(o.fetched for o in outcomes))
    result.problems = [f"{o.path}: {o.problem}" for o in outcomes if o.problem]
    extra = _extra_files(directory, set(signed.files), signed.ignore_paths)
    if extra and result.ok:
        print(f"note: {directory} also holds files the model does not: {', '.join(extra)}", file=sys.stderr)
    return result


def _write_sidecars(directory: Path, manifest: Mapping[str, Any], public_pem: bytes) -> None:
    signature = manifest["signature"]
    recorded = {k: v for k, v in manifest.items() if k != "signature"}
    recorded["public_key_pem"] = public_pem.decode()  # for `verify --offline`: what was trusted then
    _write_atomically(directory / SIGNATURE_FILE, json.dumps(signature, indent=2))
    _write_atomically(directory / MANIFEST_FILE, json.dumps(recorded, indent=2))


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _progress_bar(total: int, enabled: bool) -> _Progress:
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm  # a command-line nicety: not a dependency of the deployed app

    bar: _Progress = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr)
    lock = threading.Lock()

    class _Locked:
        def update(self, n: float | None = 1) -> bool | None:
            with lock:
                return bar.update(n)

        def close(self) -> None:
            bar.close()  # type: ignore[attr-defined]

    return _Locked()


def _walk(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*")):
        if path.is_file() or path.is_symlink():
            yield path


def _ignored(relative: str, ignore_paths: tuple[str, ...]) -> bool:
    first = relative.split("/")[0]
    return any(relative == p or relative.startswith(p + "/") for p in ignore_paths) or first in GIT_PATHS


def _extra_files(directory: Path, expected: set[str], ignore_paths: tuple[str, ...]) -> list[str]:
    ignored = tuple(ignore_paths) + IGNORED_PATHS
    found = (p.relative_to(directory).as_posix() for p in _walk(directory))
    return [p for p in found if p not in expected and not _ignored(p, ignored)]


def verify_directory(directory: Path, keys: Mapping[str, bytes]) -> Result:
    """Check the signature beside a downloaded model and re-hash every file."""
    try:
        bundle = json.loads((directory / SIGNATURE_FILE).read_text(encoding="utf-8"))
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return Result([f"no readable {SIGNATURE_FILE} and {MANIFEST_FILE} in {directory}: {error}"])
    try:
        signed = verify_manifest_signature(bundle, keys)
        entries = checked_entries(manifest, signed)
    except SignatureInvalid as error:
        return Result([f"bad signature: {error}"])
    problems = []
    for entry in entries:
        path = directory / entry.path
        if path.is_symlink() or not path.is_file():
            problems.append(f"{entry.path}: missing" + (" (a symbolic link)" if path.is_symlink() else ""))
            continue
        found = sha256_of(path).hexdigest()
        if found != entry.sha256:
            problems.append(f"{entry.path}: sha256 {found}, expected {entry.sha256}")
    problems += [
        f"{p}: not in the signed manifest"
        for p in _extra_files(directory, set(signed.files), signed.ignore_paths)
    ]
    return Result(problems)


def _recorded_key(directory: Path) -> dict[str, bytes]:
    try:
        pem = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))["public_key_pem"].encode()
        return {key_id_of(pem): pem}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api", default=os.environ.get("REGISTRY_API"), help="the registry (or REGISTRY_API)"
    )
    parser.add_argument("--as", dest="as_user", metavar="USER", help="dev mode: call as this principal")
    parser.add_argument(
        "--client-id",
        default=os.environ.get("REGISTRY_CLIENT_ID"),
        help="the registry's Entra app (client) id, for an Azure CLI token (or REGISTRY_CLIENT_ID)",
    )


def download_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m registry download", description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("version")
    parser.add_argument("owner")
    parser.add_argument("--dir", required=True, type=Path, help="where the model's files go")
    parser.add_argument("--revision", type=int, help="a manifest revision (default: the current one)")
    parser.add_argument("--parallel", type=int, default=4, help="files downloaded at once (default 4)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _common_options(parser)
    args = parser.parse_args(argv)
    if not args.api:
        parser.error("--api URL (or REGISTRY_API) is required")
    registry = Registry(api_root(args.api), Credentials(args.as_user, args.client_id))
    try:
        model = ModelRef(args.name, args.version, args.owner, args.revision)
        result = download(registry, model, args.dir, parallel=args.parallel, progress=not args.no_progress)
    except DownloadError as error:
        print(f"download failed: {error}", file=sys.stderr)
        return 2
    return _report(result, f"{args.name} {args.version} ({args.owner}) is in {args.dir}, every file verified")


def verify_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m registry verify", description="Re-check a downloaded model."
    )
    parser.add_argument("dir", type=Path)
    parser.add_argument("--public-key", type=Path, help="check the signature with this PEM public key")
    parser.add_argument(
        "--offline",
        action="store_true",
        help="check with the key recorded at download time (detects changed files, not a replaced signature)",
    )
    _common_options(parser)
    args = parser.parse_args(argv)
    if args.public_key:
        pem = args.public_key.read_bytes()
        keys = {key_id_of(pem): pem}
    elif args.offline or not args.api:
        if not args.offline:
            print(
                "no --api or REGISTRY_API: checking with the key recorded at download time", file=sys.stderr
            )
        keys = _recorded_key(args.dir)
    else:
        try:
            keys = Registry(api_root(args.api), Credentials(args.as_user, args.client_id)).public_keys()
        except DownloadError as error:
            print(f"verify failed: {error}", file=sys.stderr)
            return 2
    return _report(verify_directory(args.dir, keys), f"{args.dir}: signature and every file verified")


def _report(result: Result, success: str) -> int:
    if result.ok:
        print(success)
        return 0
    print("verification FAILED:", file=sys.stderr)
    for problem in result.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1
