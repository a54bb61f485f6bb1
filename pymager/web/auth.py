"""Write access control: with ``[auth] api_keys`` set, POST and DELETE need ``Authorization: Bearer <key>``.

Only SHA-256 hashes of the keys are configured; a presented key is hashed and compared with every
configured hash in constant time (``hmac.compare_digest``). Reads stay public. The check runs before
the handler, so a refused upload's body is never read.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

import cherrypy

from pymager.config import KEY_HASH_PREFIX
from pymager.errors import Unauthorized
from pymager.web.errors import problem_for

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CHALLENGE = 'Bearer realm="pymager"'


def key_matches(presented: str, key_hashes: frozenset[str]) -> bool:
    """Whether ``presented`` hashes to one of ``key_hashes``, comparing against all of them."""
    digest = (KEY_HASH_PREFIX + hashlib.sha256(presented.encode("utf-8")).hexdigest()).encode("ascii")
    matched = False
    for stored in key_hashes:
        matched |= hmac.compare_digest(digest, stored.encode("ascii"))
    return matched


def _bearer_token(header: str) -> str | None:
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _require_key(key_hashes: frozenset[str] = frozenset()) -> None:
    """``before_handler`` hook: answer 401 to a write without a valid key, and skip the handler."""
    request = cherrypy.serving.request
    if not key_hashes or request.method not in WRITE_METHODS or request.handler is None:
        return
    if isinstance(request.handler, cherrypy.HTTPError):  # no such route (404) or method (405): say so
        return
    token = _bearer_token(request.headers.get("Authorization", ""))
    if token is not None and key_matches(token, key_hashes):
        return
    detail = "writes need 'Authorization: Bearer <key>'" if token is None else "the API key is not valid"
    response = cherrypy.serving.response
    response.body = problem_for(Unauthorized(detail))
    response.headers["WWW-Authenticate"] = CHALLENGE
    request.handler = None  # answered: CherryPy runs no handler (and the body stays unread)


# Before the ``problems`` tool (priority 90) wraps the handler.
write_auth = cherrypy.Tool("before_handler", _require_key, name="write_auth", priority=50)


def announce(key_hashes: frozenset[str]) -> None:
    """Say at start-up who may write."""
    if key_hashes:
        log.info("writes (POST, DELETE) need one of %d API key(s)", len(key_hashes))
    else:
        log.warning("[auth] api_keys is not set: writes are open to anyone (POST and DELETE)")
