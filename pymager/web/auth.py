"""Write access control: with ``[auth] api_keys`` set, POST and DELETE need an API key.

The key comes as ``Authorization: Bearer <key>``, or as the password of ``Authorization: Basic``
(any user name) for clients that only know Basic, such as pymager's 2011 Java client, which sends it
only once challenged: a 401 therefore offers both schemes (``pymager.web.errors.CHALLENGES``).

Only SHA-256 hashes of the keys are configured; a presented key is hashed and compared with every
configured hash in constant time (``hmac.compare_digest``). Reads stay public. The check runs before
the handler, so a refused upload's body is never read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging

from pymager.config import KEY_HASH_PREFIX
from pymager.errors import Unauthorized

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def key_matches(presented: str, key_hashes: frozenset[str]) -> bool:
    """Whether ``presented`` hashes to one of ``key_hashes``, comparing against all of them."""
    digest = (KEY_HASH_PREFIX + hashlib.sha256(presented.encode("utf-8")).hexdigest()).encode("ascii")
    matched = False
    for stored in key_hashes:
        matched |= hmac.compare_digest(digest, stored.encode("ascii"))
    return matched


def presented_key(header: str) -> str | None:
    """The API key an ``Authorization`` header presents: a Bearer token, or a Basic password."""
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if not credentials:
        return None
    if scheme.lower() == "bearer":
        return credentials
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _user, colon, password = decoded.partition(":")
        return password if colon and password else None
    return None


class WriteGuard:
    """Refuses writes without a valid key while keys are configured; lets everything through otherwise."""

    def __init__(self, key_hashes: frozenset[str]) -> None:
        self._key_hashes = key_hashes

    def check(self, method: str, authorization: str | None) -> None:
        """Raise ``Unauthorized`` for a write whose ``Authorization`` presents no valid key."""
        if method in WRITE_METHODS:
            self.require(authorization, "writes need")

    def holds_key(self, authorization: str | None) -> bool:
        """Whether ``Authorization`` presents a valid key (never, when no keys are configured)."""
        key = presented_key(authorization or "")
        return bool(self._key_hashes) and key is not None and key_matches(key, self._key_hashes)

    def require(self, authorization: str | None, needing: str = "the listing needs") -> None:
        """Raise ``Unauthorized`` unless ``Authorization`` presents a valid key, while keys are
        configured (what writes, and the listing, need)."""
        if not self._key_hashes:
            return
        key = presented_key(authorization or "")
        if key is not None and key_matches(key, self._key_hashes):
            return
        if key is None:
            raise Unauthorized(f"{needing} 'Authorization: Bearer <key>' (or Basic, the key as password)")
        raise Unauthorized("the API key is not valid")


def announce(key_hashes: frozenset[str]) -> None:
    """Say at start-up who may write."""
    if key_hashes:
        log.info("writes (POST, DELETE) need one of %d API key(s)", len(key_hashes))
    else:
        log.warning("[auth] api_keys is not set: writes are open to anyone (POST and DELETE)")
