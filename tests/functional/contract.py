"""Every response the functional suite receives through ``requests`` is checked against the OpenAPI
document the server publishes (``pymager.web.openapi``), with openapi-core: its status is documented
for the operation, its headers and body match the schemas. A path outside the document (the API answers
anything else with a 404 problem) must be exactly that. Raw-socket tests (slow clients, hand-written
bodies) are outside it: they test what ``requests`` cannot send."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound

from pymager.web.openapi import document

SPEC = OpenAPI.from_dict(
    document(),
    config=Config(
        # Problems are JSON; pictures are checked as what they are (their bytes), not parsed.
        extra_media_type_deserializers={
            "application/problem+json": json.loads,
        }
    ),
)
# Validated: the responses of servers the suite started (loopback), not of other services it talks to.
_LOOPBACK = ("http://127.0.0.1:", "http://localhost:")


def check_response(response: requests.Response) -> None:
    """Raise ``AssertionError`` if ``response`` is not what the document says."""
    request = response.request
    url = request.url or ""
    if not url.startswith(_LOOPBACK) or request.method == "OPTIONS":
        return
    openapi_request, openapi_response = RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(response)
    errors = list(SPEC.iter_response_errors(openapi_request, openapi_response))
    if any(isinstance(error, PathNotFound | OperationNotFound) for error in errors):
        _check_undocumented(response)
        return
    if errors:
        detail = "; ".join(_describe(error) for error in errors)
        raise AssertionError(f"{request.method} {url} → {response.status_code}: not as documented: {detail}")


# What a path or method outside the document is answered with: no such resource, no such method
# (with Allow), a malformed request (a dot segment), the failures any request may meet, or a front
# server's password asked before any route (a write to /original behind Apache or nginx).
_UNDOCUMENTED = frozenset({400, 401, 404, 405, 408, 413, 500})


def _check_undocumented(response: requests.Response) -> None:
    where = f"{response.request.method} {response.request.url}"
    if response.status_code not in _UNDOCUMENTED:
        raise AssertionError(f"{where}: outside the document, answered {response.status_code}")
    if response.request.method == "HEAD":
        return
    assert response.headers.get("Content-Type") == "application/problem+json", where
    assert json.loads(response.content)["status"] == response.status_code, where
    if response.status_code == 405:
        assert response.headers.get("Allow"), where


def _describe(error: Exception) -> str:
    causes = [error, *(getattr(error, "schema_errors", None) or [])]
    return " / ".join(str(cause)[:300] for cause in causes)


@pytest.fixture(autouse=True)
def responses_as_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check every response of the test against the document as it arrives."""
    send = requests.Session.send

    def checked_send(session: requests.Session, prepared: requests.PreparedRequest, **kwargs: Any) -> Any:
        response = send(session, prepared, **kwargs)
        if not kwargs.get("stream"):
            check_response(response)
        return response

    monkeypatch.setattr(requests.Session, "send", checked_send)
