"""Signed derived URLs: ``/derived/<segment>?s=<key-id>.<mac>``.

``<mac>`` is the unpadded base64url of HMAC-SHA256(secret, path), where ``path`` is the request path
exactly as sent, from ``/derived/`` up to (not including) the ``?``: the bytes the client signed, never
a decoded or normalised form, so that signing needs no knowledge of pymager's URL grammar. There is no
expiry: a derived URL names one stable image. Several keys may be configured (``[auth] url_keys``); the
first signs, every one verifies, so a key is rotated by adding the new one first and retiring the old
once its URLs are gone.

Pure Python: the service verifies a miss with it, the command line signs with it, and the configuration
parses keys with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pymager.errors import SignatureInvalid, SignatureKeyUnknown, SignatureMalformed, SignatureRequired

SIGNATURE_PARAMETER = "s"
MIN_SECRET_BYTES = 16
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_MAC = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes of HMAC-SHA256, base64url without padding
# An absolute-form request-target (``GET http://host/derived/… HTTP/1.1``): its path starts after this.
_SCHEME_AND_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


@dataclass(frozen=True)
class UrlKey:
    """One signing key: its public id (sent in every signed URL) and its secret (never shown)."""

    key_id: str
    secret: bytes = field(repr=False)


def parse_url_keys(text: str) -> tuple[UrlKey, ...]:
    """``<key-id>:<secret>, …`` in order (the first signs). A ``ValueError`` names the entry or its
    key id, never its secret."""
    keys: list[UrlKey] = []
    entries = [part.strip() for part in text.split(",") if part.strip()]
    for number, entry in enumerate(entries, start=1):
        key_id, colon, secret = (part.strip() for part in entry.partition(":"))
        # Without a valid id the entry may be a pasted secret: it is named by its position only.
        if not colon or not _KEY_ID.fullmatch(key_id):
            raise ValueError(
                f"entry {number} is not <key-id>:<secret> with a key id of [A-Za-z0-9_-]{{1,32}}"
            )
        if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
            raise ValueError(f"the secret of key {key_id!r} is shorter than {MIN_SECRET_BYTES} bytes")
        if any(key.key_id == key_id for key in keys):
            raise ValueError(f"key id {key_id!r} is given twice")
        keys.append(UrlKey(key_id, secret.encode("utf-8")))
    return tuple(keys)


def mac(secret: bytes, path: str) -> str:
    """The unpadded base64url HMAC-SHA256 of ``path`` (ASCII in any path that names a derived image)."""
    digest = hmac.new(secret, path.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SignedPath:
    """What signing sees of a request: its path as sent and the values of every ``s`` parameter."""

    path: str
    signatures: tuple[str, ...] = ()

    @classmethod
    def from_target(cls, target: str, mount: str = "") -> SignedPath:
        """Split a raw request-target (``REQUEST_URI``) at its first ``?``. ``mount`` is the
        application's ``SCRIPT_NAME``: the signed path starts at ``/derived/`` below it. Parameters
        are taken raw, as the signature alphabet needs no percent-encoding."""
        path, _, query = target.partition("?")
        absolute = _SCHEME_AND_AUTHORITY.match(path)
        if absolute is not None:
            path = path[absolute.end() :]
        if mount and path.startswith(mount):
            path = path[len(mount) :]
        pairs = (parameter.partition("=") for parameter in query.split("&"))
        return cls(path, tuple(value for name, _, value in pairs if name == SIGNATURE_PARAMETER))


class UrlSigner:
    """Signs with the first of its keys and verifies with whichever one a signature names."""

    def __init__(self, keys: Sequence[UrlKey]) -> None:
        if not keys:
            raise ValueError("a signer needs at least one key")
        self._first = keys[0]
        self._keys = {key.key_id: key for key in keys}

    def signature(self, path: str, key: UrlKey | None = None) -> str:
        """``<key-id>.<mac>`` of ``path``, with ``key`` or the first key."""
        chosen = key or self._first
        return f"{chosen.key_id}.{mac(chosen.secret, path)}"

    def sign(self, path: str) -> str:
        """``path?s=<key-id>.<mac>``, signed with the first key."""
        return f"{path}?{SIGNATURE_PARAMETER}={self.signature(path)}"

    def verify(self, signed: SignedPath | None) -> None:
        """Return if ``signed`` carries exactly one valid signature of its path; raise the reason
        otherwise (``None``: nothing was presented)."""
        if signed is None or not signed.signatures:
            raise SignatureRequired("generating a derived image needs a signed URL: ?s=<key-id>.<mac>")
        if len(signed.signatures) > 1:
            # One URL, one signature: anything else would let one image answer under many cache keys.
            raise SignatureMalformed(f"send one s parameter, not {len(signed.signatures)}")
        key_id, dot, presented = signed.signatures[0].partition(".")
        if not dot or not _KEY_ID.fullmatch(key_id):
            raise SignatureMalformed("s is <key-id>.<mac>, the key id of [A-Za-z0-9_-]{1,32}")
        if not _MAC.fullmatch(presented):
            raise SignatureMalformed("the mac is 43 characters of base64url (A-Z a-z 0-9 - _), unpadded")
        key = self._keys.get(key_id)
        if key is None:
            raise SignatureKeyUnknown(f"no url key {key_id!r} is configured on this server")
        # Compared as text: only the canonical encoding verifies, so one image has one signed URL.
        if not hmac.compare_digest(mac(key.secret, signed.path).encode("ascii"), presented.encode("ascii")):
            raise SignatureInvalid(f"the signature is not valid for this path with key {key_id!r}")
