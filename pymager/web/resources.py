"""Thin HTTP resources: parse the request, call one service method, shape the response."""

from __future__ import annotations

import hashlib
import io
import json
import urllib.parse
from collections.abc import Iterable
from typing import Any, BinaryIO

import cherrypy

from pymager.config import Settings
from pymager.domain import AUTO_EXTENSION, StoredFile, Upload
from pymager.errors import BadUpload, LengthRequired, NoSuchResource, UploadTooLarge, storage_failure
from pymager.interfaces import IImageService, IMetrics
from pymager.service import DEFAULT_PAGE
from pymager.signing import SignedPath, UrlSigner
from pymager.web.auth import WriteGuard
from pymager.web.bodies import ClientTimedOut, declared_length, drain
from pymager.web.documents import info_document, listing_document, listing_query, original_document
from pymager.web.http import named_types, serve

_AUTO = f".{AUTO_EXTENSION}"
_NONE: frozenset[str] = frozenset()


def _json(status: int, payload: dict[str, Any]) -> bytes:
    response = cherrypy.serving.response
    response.status = status
    response.headers["Content-Type"] = "application/json"
    response.headers["Cache-Control"] = "no-store"
    return json.dumps(payload).encode("utf-8")


def read_upload() -> Upload:
    """Parse the multipart body of the current request: its ``file`` field as a stream, and its
    optional ``focus`` field as sent.

    The multipart filename is ignored. Only ever called by the service once the id is valid and free.
    """
    request = cherrypy.serving.request
    content_type = request.headers.get("Content-Type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise BadUpload("send the image as multipart/form-data with a field named 'file'")
    try:
        request.body.process()
    except cherrypy.HTTPError as exc:  # CherryPy's own parser refused the body
        raise _body_failure(exc) from None
    except TimeoutError:
        raise ClientTimedOut() from None  # a stalled upload: the server closes the connection
    except (ValueError, LookupError, EOFError, OverflowError) as exc:  # LookupError: unknown charset
        raise BadUpload(f"malformed multipart body: {exc}") from None
    except OSError as exc:
        # CherryPy spools the part to a temporary file: that disk full or failing is the server's
        # storage; a broken connection (errno-less under mod_wsgi) is the client's, and leaves as it is.
        if isinstance(exc, ConnectionError) or exc.errno is None:
            raise
        raise storage_failure(exc, "receiving the upload") from None
    return Upload(_file_field(request.body.params.get("file")), _text_field(request.body.params, "focus"))


def _file_field(field: object) -> BinaryIO:
    if field is None:
        raise BadUpload("the multipart body has no field named 'file'")
    if isinstance(field, list):
        raise BadUpload("send exactly one field named 'file'")
    if isinstance(field, str):  # a field sent without a filename: CherryPy decoded it as text
        return io.BytesIO(field.encode("utf-8"))  # CherryPy tried us-ascii, then utf-8
    # A part with a filename is spooled to an anonymous temporary file by CherryPy; one that is itself
    # multipart has none.
    file: BinaryIO | None = getattr(field, "file", None)
    if file is None:
        raise BadUpload("the 'file' field must be a file, not nested multipart")
    file.seek(0)
    return file


def _text_field(params: dict[str, object], name: str) -> str | None:
    value = params.get(name)
    if value is None or isinstance(value, str):
        return value
    raise BadUpload(f"send {name!r} once, as a plain form field")


def _body_failure(exc: cherrypy.HTTPError) -> BadUpload | LengthRequired | UploadTooLarge:
    """The failure CherryPy's body parser reported, in pymager's words."""
    if exc.status == 413:
        return UploadTooLarge("the request body exceeds max_upload_bytes")
    if exc.status == 411:
        return LengthRequired()
    return BadUpload(f"malformed request body: {exc._message or exc.reason}")


def only_segment(path: tuple[str, ...]) -> str:
    """The one path segment after a resource's name (ids and derived names come from the path only);
    no segment, several, or a trailing slash is no resource: 404."""
    path_info: str = cherrypy.serving.request.path_info
    if len(path) != 1 or path_info.endswith("/"):
        raise NoSuchResource(path_info)
    return path[0]


def no_segment(path: tuple[str, ...]) -> None:
    """A resource that is its name alone (``/health``): anything after it is no resource."""
    if path:
        raise NoSuchResource(cherrypy.serving.request.path_info)


class OriginalRoutes:
    """Under ``/original``: the listing (``/original``), an original (``/original/<id>``) and its
    description (``/original/<id>/info``), each a resource with its own methods (and ``Allow``)."""

    def __init__(self, listing: ListingResource, original: OriginalResource, info: InfoResource) -> None:
        self._listing = listing
        self._original = original
        self._info = info

    def route(self, atoms: tuple[str, ...], path_info: str) -> tuple[object, tuple[str, ...]]:
        if path_info.endswith("/"):
            return self._original, atoms  # which answers 404, as for any trailing slash
        if not atoms:
            return self._listing, atoms
        if len(atoms) == 2 and atoms[1] == "info":
            return self._info, atoms[:1]
        return self._original, atoms


class ListingResource:
    """``/original?after=<cursor>&limit=<n>``: the originals by id, a page at a time; with api keys
    set, only for a key holder (ids may be the only secret a site has)."""

    def __init__(self, service: IImageService, guard: WriteGuard) -> None:
        self._service = service
        self._guard = guard

    def GET(self, *path: str) -> bytes:  # noqa: N802
        request = cherrypy.serving.request
        self._guard.require(request.headers.get("Authorization"))
        after, limit = listing_query(request.query_string, DEFAULT_PAGE)
        document = listing_document(self._service.list_originals(after, limit))
        if document["next"] is not None:
            query = urllib.parse.urlencode({"after": document["next"], "limit": limit})
            cherrypy.serving.response.headers["Link"] = f'</original?{query}>; rel="next"'
        return _json(200, document)


class InfoResource:
    """``/original/<id>/info``: what the registry knows of an original and its derived images, with
    validators. Derived URLs come signed to a key holder when url keys are set: a URL key is what lets
    its bearer make new images."""

    def __init__(self, service: IImageService, settings: Settings, guard: WriteGuard) -> None:
        self._service = service
        self._guard = guard
        self._signer = UrlSigner(settings.url_keys) if settings.url_keys else None

    def GET(self, *path: str) -> Iterable[bytes] | bytes:  # noqa: N802
        description = self._service.original_info(only_segment(path))
        authorization = cherrypy.serving.request.headers.get("Authorization")
        signer = self._signer if self._signer is not None and self._guard.holds_key(authorization) else None
        body = json.dumps(info_document(description, signer.sign if signer else str)).encode("utf-8")
        moments = [description.original.created, *(r.created for r in description.derived if r.created)]
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        image_id = description.original.image_id
        stored = StoredFile(
            io.BytesIO(body), "application/json", len(body), max(moments), etag, None, image_id
        )
        return serve(stored, "no-cache")


class OriginalResource:
    """``/original/<id>``: upload, fetch, delete an original. The upload body is parsed only once the
    id is known to be valid and free (see ``read_upload``)."""

    def __init__(self, service: IImageService, metrics: IMetrics, settings: Settings) -> None:
        self._service = service
        self._metrics = metrics
        self._settings = settings

    def GET(self, *path: str) -> Iterable[bytes] | bytes:  # noqa: N802
        original = self._service.original_file(only_segment(path))
        return serve(original, self._settings.cache_control_original)

    def POST(self, *path: str) -> bytes:  # noqa: N802
        image_id = only_segment(path)
        request = cherrypy.serving.request
        request.hooks.attach("on_end_request", self._count_upload)
        declared = declared_length(request.headers.get("Content-Length"))
        original = self._service.save_original(image_id, read_upload, declared)
        cherrypy.serving.response.headers["Location"] = f"/original/{original.image_id}"
        return _json(201, original_document(original))

    def DELETE(self, *path: str) -> bytes:  # noqa: N802
        image_id = only_segment(path)
        # A body is read and dropped first: a client that stalls in it gets 408 with nothing deleted.
        request = cherrypy.serving.request
        drain(request.rfile, request.body.maxbytes)
        self._service.delete_original(image_id)
        cherrypy.serving.response.status = 204
        return b""

    def _count_upload(self) -> None:
        status = str(cherrypy.serving.response.status).split()[0]
        self._metrics.upload_finished(int(status) if status.isdigit() else 408)  # None: the client stalled


def signed_path() -> SignedPath:
    """The current request's path exactly as sent, and its ``s`` parameters, for signature checks.

    Taken from ``REQUEST_URI``, the request-target of the request line as received, which cheroot and
    mod_wsgi both pass: CherryPy's ``path_info`` is percent-decoded, and a client signs what it sends.
    """
    environ: dict[str, str] = cherrypy.serving.request.wsgi_environ
    mount = environ.get("SCRIPT_NAME", "")
    target = environ.get("REQUEST_URI")
    if target is None:  # a WSGI server without it: the decoded path encoded again, as clients do
        target = (
            urllib.parse.quote(mount + environ.get("PATH_INFO", "")) + "?" + environ.get("QUERY_STRING", "")
        )
    return SignedPath.from_target(target, mount)


class DerivedResource:
    """``/derived/<id>-<W>x<H>[-<mode>].<ext>``: a derived image, made on its first request. On a hit the
    service opens the stored file without touching the registry; see ``pymager.web.http.serve``.
    Only with url keys configured does it read the query string (its signature)."""

    def __init__(self, service: IImageService, settings: Settings) -> None:
        self._service = service
        self._cache_control = settings.cache_control_derived
        self._signed = bool(settings.url_keys)

    def GET(self, *path: str) -> Iterable[bytes] | bytes:  # noqa: N802
        segment = only_segment(path)
        signed = signed_path() if self._signed else None
        # Only an ``auto`` URL depends on Accept; a concrete one never reads it.
        headers = cherrypy.serving.request.headers
        accepted = named_types(headers.get("Accept")) if segment.endswith(_AUTO) else _NONE
        return serve(self._service.derived_file(segment, signed, accepted), self._cache_control)


class HealthResource:
    """``/health``: 200 when the registry and the data directory are usable, 503 otherwise."""

    def __init__(self, service: IImageService) -> None:
        self._service = service

    def GET(self, *path: str) -> bytes:  # noqa: N802
        no_segment(path)
        return _json(200, {"status": "ok", **self._service.health()})


class MetricsResource:
    """``/metrics``: Prometheus text format."""

    def __init__(self, metrics: IMetrics) -> None:
        self._metrics = metrics

    def GET(self, *path: str) -> bytes:  # noqa: N802
        no_segment(path)
        content_type, body = self._metrics.exposition()
        cherrypy.serving.response.headers["Content-Type"] = content_type
        cherrypy.serving.response.headers["Cache-Control"] = "no-store"
        return body
