"""A small real HTTP server playing the registry's download side, for the download client's tests.

It answers what the registry answers (issue 10): the signed manifest, the signing keys, and for
each file a 302 to a read URL with `Repr-Digest`; the read URLs are served like Blob Storage does
(Range requests answered 206 with Content-Range). It counts the bytes it serves per file, can stall
a file after some bytes (so that a test can kill a download mid-file), and can demand the dev-mode
principal headers on the API routes.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import rfc8785
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from registry.signing import FileDigest, Signer, sign_manifest, signing_keys_document

STREAM_CHUNK = 64 * 1024


def manifest_for(
    files: Mapping[str, bytes], signer: Signer, *, name: str, version: str, owner: str, revision: int = 1
) -> dict[str, Any]:
    """The manifest document the registry answers, signed as the registry signs it."""
    digests = [FileDigest(path, len(data), hashlib.sha256(data).hexdigest()) for path, data in files.items()]
    signed = sign_manifest(
        digests,
        signer,
        subject=name,
        registry={"name": name, "version": version, "owner": owner, "revision": revision},
    )
    body: dict[str, Any] = {
        "name": name,
        "version": version,
        "owner": owner,
        "revision": revision,
        "files": [{"path": d.path, "size": d.size, "sha256": d.sha256} for d in digests],
        "created_at": "2026-01-01T00:00:00+00:00",
        "finished_at": "2026-01-01T00:01:00+00:00",
    }
    digest = "sha256:" + hashlib.sha256(rfc8785.dumps(body)).hexdigest()
    return {**body, "digest": digest, "key_id": signed.key_id, "signature": signed.bundle}


@dataclass
class FakeRegistryApi:
    name: str
    version: str
    owner: str
    blobs: dict[str, bytes]  # what the storage serves for each file (may differ from what was signed)
    manifest: dict[str, Any]
    keys: dict[str, Any]
    require_user: str | None = None
    repr_digests: dict[str, str] = field(default_factory=dict)  # path -> hex, overriding the blob's
    ignore_ranges: bool = False
    served: Counter[str] = field(default_factory=Counter)  # bytes of each file served
    range_starts: list[tuple[str, int]] = field(default_factory=list)
    storage_headers: list[dict[str, str]] = field(default_factory=list)
    # path -> serve that many bytes, then hold the response until `release` is set and end it
    stall_after: dict[str, int] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    @classmethod
    def for_model(
        cls,
        files: Mapping[str, bytes],
        signer: Signer,
        *,
        previous_keys: tuple[bytes, ...] = (),
        name: str = "demo-model",
        version: str = "1.0",
        owner: str = "alice",
    ) -> FakeRegistryApi:
        return cls(
            name=name,
            version=version,
            owner=owner,
            blobs=dict(files),
            manifest=manifest_for(files, signer, name=name, version=version, owner=owner),
            keys=signing_keys_document(signer, previous_keys),
        )

    # -- the WSGI app --

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._respond(Request(environ))(environ, start_response)

    def _respond(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/blobs/"):
            return self._blob(request, unquote(path.removeprefix("/blobs/")))
        if self.require_user and request.headers.get("X-MS-CLIENT-PRINCIPAL-ID") != self.require_user:
            return Response('{"message": "no caller"}', status=401, content_type="application/json")
        model = f"/api/v1.0/model/{quote(self.name)}/{quote(self.version)}/{quote(self.owner)}"
        if path == "/api/v1.0/signing-keys":
            return _json(self.keys)
        if path == f"{model}/manifest":
            return _json(self.manifest)
        if path.startswith(f"{model}/files/"):
            file = unquote(path.removeprefix(f"{model}/files/"))
            if file not in self.blobs:
                return Response('{"message": "no such file"}', status=404, content_type="application/json")
            digest = self.repr_digests.get(file) or hashlib.sha256(self.blobs[file]).hexdigest()
            response = Response(status=302)
            response.headers["Location"] = f"{self.url}/blobs/{quote(file)}?sig=read-only"
            response.headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(digest)).decode()}:"
            return response
        return Response('{"message": "not found"}', status=404, content_type="application/json")

    def _blob(self, request: Request, file: str) -> Response:
        self.storage_headers.append(dict(request.headers))
        data = self.blobs[file]
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", request.headers.get("Range", ""))
        if match and not self.ignore_ranges:
            start = int(match[1])
            if start >= len(data):
                return Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
        self.range_starts.append((file, start))
        response = Response(self._stream(file, data, start), direct_passthrough=True)
        response.headers["Content-Length"] = str(len(data) - start)
        if match and not self.ignore_ranges:
            response.status_code = 206
            response.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return response

    def _stream(self, file: str, data: bytes, start: int) -> Iterator[bytes]:
        offset = start
        while offset < len(data):
            stall = self.stall_after.get(file)
            if stall is not None and offset >= stall:
                # Hold the download here until the test lets go, then end this response: the
                # client it was for has been killed meanwhile.
                self.release.wait(60)
                return
            end = min(offset + STREAM_CHUNK, len(data))
            if stall is not None and offset < stall:
                end = min(end, stall)
            chunk = data[offset:end]
            self.served[file] += len(chunk)
            offset = end
            yield chunk


def _json(document: Any) -> Response:
    import json

    return Response(json.dumps(document), content_type="application/json")


class Serving:
    """The fake API on a free loopback port, in a thread."""

    def __init__(self, api: FakeRegistryApi) -> None:
        self.api = api
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, api, threaded=True)
        api.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeRegistryApi:
        self._thread.start()
        return self.api

    def __exit__(self, *exc: object) -> None:
        self.api.release.set()
        self._server.shutdown()
        self._thread.join(10)
