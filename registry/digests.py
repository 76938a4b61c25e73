"""SHA-256 whose state can be saved and resumed in another process.

hashlib cannot export a hash's state, so a worker that stopped half-way through a large file
would have to hash it again from the start. OpenSSL's libcrypto (the library CPython's hashlib
uses) keeps the state of a SHA-256 in a plain, documented structure (`SHA256_CTX`, openssl/sha.h)
and offers SHA256_Init/Update/Final: its bytes are the whole state. Where libcrypto does not
offer them, this falls back to hashlib (`resumable` is then False): the worker then hashes each
file in one pass, whatever its time budget, since a stopped hash would start again at byte 0.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import hashlib
from functools import cache
from typing import Any


class _Sha256Ctx(ctypes.Structure):
    # typedef struct SHA256state_st { SHA_LONG h[8]; SHA_LONG Nl, Nh; SHA_LONG data[16];
    #                                 unsigned int num, md_len; } SHA256_CTX;
    _fields_ = [
        ("h", ctypes.c_uint32 * 8),
        ("Nl", ctypes.c_uint32),
        ("Nh", ctypes.c_uint32),
        ("data", ctypes.c_uint32 * 16),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    ]


@cache
def _libcrypto() -> Any:
    name = ctypes.util.find_library("crypto")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        functions = (lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final)
    except (OSError, AttributeError):
        return None
    for function in functions:
        function.restype = ctypes.c_int
    lib.SHA256_Update.argtypes = [ctypes.POINTER(_Sha256Ctx), ctypes.c_char_p, ctypes.c_size_t]
    return lib


def _self_test(lib: Any) -> bool:
    """The structure matches this libcrypto: a saved and resumed hash equals hashlib's."""
    data = bytes(range(256)) * 5
    first = _Sha256Ctx()
    lib.SHA256_Init(ctypes.byref(first))
    lib.SHA256_Update(ctypes.byref(first), data[:300], 300)
    resumed = _Sha256Ctx.from_buffer_copy(bytes(first))
    lib.SHA256_Update(ctypes.byref(resumed), data[300:], len(data) - 300)
    out = (ctypes.c_ubyte * 32)()
    lib.SHA256_Final(out, ctypes.byref(resumed))
    return bytes(out) == hashlib.sha256(data).digest()


@cache
def resumable_available() -> bool:
    lib = _libcrypto()
    return lib is not None and _self_test(lib)


class Sha256:
    """hashlib.sha256's update/hexdigest, plus `state()` and `resume(state)`."""

    def __init__(self) -> None:
        self.length = 0
        self._ctx: _Sha256Ctx | None = None
        self._fallback: Any = None
        if resumable_available():
            self._ctx = _Sha256Ctx()
            _libcrypto().SHA256_Init(ctypes.byref(self._ctx))
        else:
            self._fallback = hashlib.sha256()

    @property
    def resumable(self) -> bool:
        return self._ctx is not None

    def update(self, data: bytes) -> None:
        if self._ctx is not None:
            _libcrypto().SHA256_Update(ctypes.byref(self._ctx), data, len(data))
        else:
            self._fallback.update(data)
        self.length += len(data)

    def hexdigest(self) -> str:
        if self._ctx is None:
            return str(self._fallback.hexdigest())
        ctx = _Sha256Ctx.from_buffer_copy(bytes(self._ctx))  # finishing must not end this hash
        out = (ctypes.c_ubyte * 32)()
        _libcrypto().SHA256_Final(out, ctypes.byref(ctx))
        return bytes(out).hex()

    def state(self) -> str:
        """The whole state, as text; empty when it cannot be saved (hash the file again)."""
        if self._ctx is None:
            return ""
        return base64.b64encode(bytes(self._ctx)).decode()

    @classmethod
    def resume(cls, state: str, length: int) -> Sha256:
        """A hash that continues one saved after `length` bytes (a fresh one if it cannot)."""
        hasher = cls()
        raw = base64.b64decode(state) if state else b""
        if hasher._ctx is not None and len(raw) == ctypes.sizeof(_Sha256Ctx):
            ctx = _Sha256Ctx.from_buffer_copy(raw)
            if ctx.Nl + (ctx.Nh << 32) == length * 8:  # the state is of exactly those bytes
                hasher._ctx, hasher.length = ctx, length
        return hasher
