"""The OpenAPI 3.1 document of pymager's HTTP API, served at ``/openapi.json``.

Built from the code's own tables where they exist (the problem types of ``STATUS_BY_ERROR``, the
formats of ``pymager.domain``, the listing's bounds), so the document cannot drift from what the server
does on those points; the functional suite validates every response it receives against it, and
schemathesis runs against it in ``make test``. The README's API table lists the same routes, methods and
statuses (a unit test compares them).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import cherrypy

from pymager import __version__
from pymager.domain import DERIVED_FORMATS, ImageFormat, StoredFile
from pymager.errors import NoSuchResource
from pymager.service import DEFAULT_PAGE, MAX_PAGE
from pymager.web.errors import PROBLEM_JSON, STATUS_BY_ERROR, problem_type
from pymager.web.http import serve

_ID = r"^[A-Za-z0-9_-]{1,128}$"
_SIDE = r"(?:0|[1-9][0-9]{0,8})"
_EXTENSIONS = "|".join(sorted({"jpeg", "auto", *(f.extension for f in DERIVED_FORMATS)}))
# The grammar of a derived segment (pymager.domain): a 0 side outside fit is a 404 the schema admits.
_SEGMENT = rf"^[A-Za-z0-9_-]{{1,128}}-{_SIDE}x{_SIDE}(?:-(?:fit|pad))?\.(?:{_EXTENSIONS})$"
_IMAGE_TYPES = sorted({f.mime_type for f in ImageFormat})

# What each status means wherever it is answered (the README's API table says it per route).
_STATUS_TEXT = {
    200: "OK",
    201: "Stored",
    204: "Deleted",
    206: "Partial content: one range",
    304: "Not modified",
    400: "Bad request (the problem's type says which)",
    401: "No valid API key (two WWW-Authenticate lines: Bearer and Basic)",
    403: "Forbidden: a size not allowed, or a derived miss without a valid signature",
    404: "No such image or resource",
    405: "Method not allowed (Allow lists the methods)",
    408: "The client stalled while sending its request",
    409: "The id is taken",
    411: "Neither Content-Length nor chunked",
    413: "The body is over max_upload_bytes",
    416: "Range not satisfiable",
    422: "Too many frames to animate in this format",
    500: "Internal error (never a traceback)",
    503: "Unavailable: retry after Retry-After",
    507: "No room: retry after Retry-After",
}
# Statuses any route may answer: a stalled or oversized request, an unexpected failure.
_ANY = (408, 413, 500)


def _problem_response(status: int) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if status in (503, 507):
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    if status == 401:
        headers["WWW-Authenticate"] = {"schema": {"type": "string"}, "required": True}
    if status == 405:
        headers["Allow"] = {"$ref": "#/components/headers/Allow"}
    if status == 416:
        headers["Content-Range"] = {
            "schema": {"type": "string", "pattern": r"^bytes \*/[0-9]+$"},
            "required": True,
        }
    return {
        "description": _STATUS_TEXT[status],
        "headers": headers,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _problems(*statuses: int) -> dict[str, Any]:
    return {str(status): _problem_response(status) for status in sorted({*statuses, *_ANY})}


def _file_responses(content: dict[str, Any], *problems: int) -> dict[str, Any]:
    validators = {
        "ETag": {"$ref": "#/components/headers/ETag"},
        "Last-Modified": {"$ref": "#/components/headers/Last-Modified"},
        "Cache-Control": {"schema": {"type": "string"}, "required": True},
        "Surrogate-Key": {"$ref": "#/components/headers/Surrogate-Key"},
        "Cache-Tag": {"$ref": "#/components/headers/Cache-Tag"},
    }
    return {
        "200": {"description": "The file", "headers": validators, "content": content},
        "206": {
            "description": _STATUS_TEXT[206],
            "headers": {**validators, "Content-Range": {"schema": {"type": "string"}, "required": True}},
            "content": content,
        },
        "304": {"description": _STATUS_TEXT[304], "headers": validators},
        **_problems(416, *problems),
    }


def _images() -> dict[str, Any]:
    # No schema: the body is the picture's bytes (OpenAPI 3.1 leaves binary content unschemed).
    return {media: {} for media in _IMAGE_TYPES}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _get_and_head(operation: dict[str, Any]) -> dict[str, Any]:
    head = {**operation, "operationId": operation["operationId"] + "Head"}
    head["responses"] = {
        status: {key: value for key, value in response.items() if key != "content"}
        for status, response in operation["responses"].items()
    }
    return {"get": operation, "head": head}


_IMAGE_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": _ID}}
_KEY: list[dict[str, list[str]]] = [{"bearer": []}, {"basic": []}]
_OPEN: list[dict[str, list[str]]] = [{}]  # no key needed, a key harmless
_KEY_OR_OPEN = [*_KEY, {}]  # a key needed only when the server has api_keys


def _paths() -> dict[str, Any]:
    original = {
        "post": {
            "operationId": "uploadOriginal",
            "summary": "Store an original under an id the client chooses",
            "parameters": [_IMAGE_ID],
            "security": _KEY_OR_OPEN,
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {"type": "string", "contentMediaType": "application/octet-stream"},
                                "focus": {"type": "string", "examples": ["0.25,0.4"]},
                            },
                        },
                    },
                },
            },
            "responses": {
                "201": {
                    "description": _STATUS_TEXT[201],
                    "headers": {"Location": {"schema": {"type": "string"}, "required": True}},
                    "content": _json("Original"),
                },
                **_problems(400, 401, 409, 411, 503, 507),
            },
        },
        **_get_and_head(
            {
                "operationId": "getOriginal",
                "summary": "The uploaded bytes exactly",
                "parameters": [_IMAGE_ID],
                "security": _OPEN,
                "responses": _file_responses(_images(), 400, 404, 503),
            }
        ),
        "delete": {
            "operationId": "deleteOriginal",
            "summary": "Delete an original and every derived image of it",
            "parameters": [_IMAGE_ID],
            "security": _KEY_OR_OPEN,
            "responses": {"204": {"description": _STATUS_TEXT[204]}, **_problems(400, 401, 404, 503, 507)},
        },
    }
    info = _get_and_head(
        {
            "operationId": "describeOriginal",
            "summary": "What the registry knows of an original and its ready derived images",
            "parameters": [_IMAGE_ID],
            "security": _OPEN,
            "responses": _file_responses(_json("Info"), 400, 404, 503),
        }
    )
    listing = _get_and_head(
        {
            "operationId": "listOriginals",
            "summary": "The originals by id, a page at a time",
            "security": _KEY_OR_OPEN,
            "parameters": [
                {
                    "name": "after",
                    "in": "query",
                    "description": "The next cursor of the previous page, as given",
                    "schema": {"type": "string", "pattern": _ID},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
                },
            ],
            "responses": {
                "200": {
                    "description": "A page",
                    "headers": {"Link": {"schema": {"type": "string"}}},
                    "content": _json("Listing"),
                },
                **_problems(400, 401, 503),
            },
        }
    )
    derived = _get_and_head(
        {
            "operationId": "getDerived",
            "summary": "A derived image, made on its first request (auto: the format for this Accept)",
            "parameters": [
                {
                    "name": "segment",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": _SEGMENT},
                },
                {
                    "name": "s",
                    "in": "query",
                    "description": "The signature <key-id>.<mac>, read only when the server has url_keys",
                    "schema": {"type": "string"},
                },
            ],
            "security": _OPEN,
            "responses": _file_responses(_images(), 400, 403, 404, 422, 503, 507),
        }
    )
    health = _get_and_head(
        {
            "operationId": "health",
            "security": _OPEN,
            "responses": {"200": {"description": "Usable", "content": _json("Health")}, **_problems(503)},
        }
    )
    metrics = _get_and_head(
        {
            "operationId": "metrics",
            "security": _OPEN,
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **_problems(),
            },
        }
    )
    document = _get_and_head(
        {
            "operationId": "openapi",
            "security": _OPEN,
            "responses": {
                "200": {
                    "description": "This document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_problems(),
            },
        }
    )
    console_files: dict[str, Any] = {
        media: {}
        for media in ("text/html; charset=utf-8", "text/javascript; charset=utf-8", "text/css; charset=utf-8")
    }
    console_file = {
        "operationId": "console",
        "summary": "The console in the browser (404 with console = off)",
        "security": _OPEN,
        "responses": {
            "200": {
                "description": "The page or one of its files",
                "headers": {"Content-Security-Policy": {"schema": {"type": "string"}, "required": True}},
                "content": console_files,
            },
            "304": {"description": _STATUS_TEXT[304]},
            **_problems(404),
        },
    }
    file_parameter = {"name": "file", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/console": _get_and_head(console_file),
        "/console/{file}": _get_and_head(
            {**console_file, "operationId": "consoleFile", "parameters": [file_parameter]}
        ),
        "/original": listing,
        "/original/{id}": original,
        "/original/{id}/info": info,
        "/derived/{segment}": derived,
        "/health": health,
        "/metrics": metrics,
        "/openapi.json": document,
    }


def _schemas() -> dict[str, Any]:
    timestamp = {"type": "string", "format": "date-time"}
    focus = {
        "type": "array",
        "items": {"type": "number", "minimum": 0, "maximum": 1},
        "minItems": 2,
        "maxItems": 2,
    }
    formats = {"type": "string", "enum": sorted(f.value for f in ImageFormat)}
    size = {"type": "integer", "minimum": 1}
    listed = {
        "id": {"type": "string", "pattern": _ID},
        "format": formats,
        "width": size,
        "height": size,
        "bytes": {"type": "integer", "minimum": 0},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "created": timestamp,
    }
    derived = {
        "type": "object",
        "required": ["url", "format", "mode", "width", "height", "bytes", "created"],
        "properties": {
            "url": {"type": "string"},
            "format": formats,
            "mode": {"type": "string", "enum": ["fill", "fit", "pad"]},
            "width": {"type": ["integer", "null"]},
            "height": {"type": ["integer", "null"]},
            "bytes": {"type": ["integer", "null"]},
            "created": {"type": ["string", "null"], "format": "date-time"},
        },
    }
    return {
        "Problem": {
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string", "enum": sorted(problem_type(error) for error in STATUS_BY_ERROR)},
                "title": {"type": "string"},
                "status": {"type": "integer", "enum": sorted(set(STATUS_BY_ERROR.values()))},
                "detail": {"type": "string"},
                "limit": {"type": "string", "description": "decoding-limit: the setting the image is over"},
            },
        },
        "Original": {
            "type": "object",
            "required": ["id", "format", "width", "height", "bytes", "created", "focus"],
            "properties": {**{k: v for k, v in listed.items() if k != "sha256"}, "focus": focus},
        },
        "Listed": {"type": "object", "required": sorted(listed), "properties": listed},
        "Listing": {
            "type": "object",
            "required": ["items", "next"],
            "properties": {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Listed"}},
                "next": {"type": ["string", "null"]},
            },
        },
        "Info": {
            "type": "object",
            "required": [*sorted(listed), "focus", "animated", "alpha", "thumbhash", "colour", "derived"],
            "properties": {
                **listed,
                "focus": focus,
                "animated": {"type": ["boolean", "null"]},
                "alpha": {"type": ["boolean", "null"]},
                "thumbhash": {"type": ["string", "null"], "contentEncoding": "base64"},
                "colour": {"type": ["string", "null"], "pattern": "^#[0-9a-f]{6}$"},
                "derived": {"type": "array", "items": derived},
            },
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
            "additionalProperties": {"type": "string", "enum": ["ok", "full"]},
        },
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pymager",
            "version": __version__,
            "description": "A RESTful image storage service with a registry of derived images.",
        },
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "headers": {
                "ETag": {"schema": {"type": "string"}, "required": True},
                "Last-Modified": {"schema": {"type": "string"}, "required": True},
                "Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}, "required": True},
                "Allow": {"schema": {"type": "string"}, "required": True},
                # The original's id: what a CDN purges its responses by (Fastly, Cloudflare).
                "Surrogate-Key": {"schema": {"type": "string", "pattern": _ID}, "required": True},
                "Cache-Tag": {"schema": {"type": "string", "pattern": _ID}, "required": True},
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API key of [auth] api_keys",
                },
                "basic": {"type": "http", "scheme": "basic", "description": "the API key as the password"},
            },
        },
    }


def document_bytes() -> bytes:
    return json.dumps(document(), indent=1).encode("utf-8")


class OpenApiResource:
    """``/openapi.json``: this document, made once, with validators."""

    def __init__(self) -> None:
        self._body = document_bytes()
        self._etag = f'"{hashlib.sha256(self._body).hexdigest()[:32]}"'
        self._modified = datetime.now(UTC).replace(microsecond=0)

    def GET(self, *path: str) -> Iterable[bytes] | bytes:  # noqa: N802
        if path:
            raise NoSuchResource(cherrypy.serving.request.path_info)
        stored = StoredFile(
            io.BytesIO(self._body), "application/json", len(self._body), self._modified, self._etag
        )
        return serve(stored, "no-cache")
