"""The CDN's purge webhook: one POST of a notice's JSON, signed with HMAC-SHA256.

``X-Pymager-Signature: sha256=<hex>`` is the HMAC of the body under the key in ``$PYMAGER_PURGE_KEY``
(as GitHub signs its webhooks); ``X-Pymager-Delivery`` numbers the notice, the same on every retry, so a
receiver can drop a notice it already acted on. Only a 2xx answer delivers; a redirect is not followed
(the body would be lost on the way) and counts as a failure.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import urllib.error
import urllib.request
from typing import Any

from zope.interface import implementer

from pymager import __version__
from pymager.errors import PurgeFailed
from pymager.interfaces import IPurgeSender

TIMEOUT = 10.0
_ANSWER_LIMIT = 64 * 1024  # what is read of an answer, to reuse nothing and hang on nothing


def signature(key: bytes, body: bytes) -> str:
    """The ``X-Pymager-Signature`` of ``body``."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@implementer(IPurgeSender)
class WebhookSender:
    def __init__(self, url: str, key: bytes, timeout: float = TIMEOUT) -> None:
        self._url = url
        self._key = key
        self._timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirects)

    def send(self, number: int, body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310  (purge_url is checked to be http or https)
            self._url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": f"pymager/{__version__}",
                "X-Pymager-Signature": signature(self._key, body),
                "X-Pymager-Delivery": str(number),
            },
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as answer:
                answer.read(_ANSWER_LIMIT)
                status = answer.status
        except urllib.error.HTTPError as exc:
            exc.close()
            raise PurgeFailed(f"the purge webhook answered {exc.code}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise PurgeFailed(f"the purge webhook is unreachable: {reason}") from None
        if not 200 <= status < 300:
            raise PurgeFailed(f"the purge webhook answered {status}")
