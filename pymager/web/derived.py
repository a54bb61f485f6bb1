"""``/derived/<id>-<W>x<H>.<ext>`` as a plain WSGI application, routed around CherryPy's machinery.

A cache hit is an image server's hot path, and on it CherryPy's per-request work (config namespaces,
tools, dispatcher, response finalisation) cost more than pymager's own: a bare CherryPy ``serve_file``
answered about 1,100 hits/s on this project's 2-core machine where the same file from a plain WSGI
callable under the same cheroot server answered 2,500. So ``Router`` sends every request for
``/derived`` here and every other one to the CherryPy application; the answer is the same (statuses,
validators, ranges and problems come from ``pymager.web.http`` and ``pymager.web.errors``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any, BinaryIO

from cherrypy._cplogging import LogManager

from pymager.config import Settings
from pymager.errors import PymagerError
from pymager.interfaces import IImageService
from pymager.web.bodies import ClientTimedOut, body_limit, drain, oversized
from pymager.web.errors import error_problem, problem_headers, problem_json
from pymager.web.http import CHUNK, Answer, answer

log = logging.getLogger(__name__)

Environ = dict[str, Any]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

ALLOW = "GET, HEAD"
PREFIX = "derived"
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
_ENVIRON_KEYS: dict[str, str] = {}

Reply = tuple[int, list[tuple[str, str]], Iterable[bytes]]


def _header(environ: Environ) -> Callable[[str], str | None]:
    def header(name: str) -> str | None:
        key = _ENVIRON_KEYS.get(name)
        if key is None:
            key = _ENVIRON_KEYS[name] = "HTTP_" + name.upper().replace("-", "_")
        value: str | None = environ.get(key)
        return value

    return header


def _standard_problem(status: int, detail: str, extra: list[tuple[str, str]] | None = None) -> Reply:
    body = problem_json(status, HTTPStatus(status).phrase, detail)
    headers = [*problem_headers(), *(extra or []), ("Content-Length", str(len(body)))]
    return status, headers, [body]


def _error_reply(error: PymagerError, environ: Environ) -> Reply:
    """The problem ``error`` maps to (``pymager.web.errors``' one table)."""
    method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
    status, extra, body = error_problem(error, method, path)
    return status, [*problem_headers(), *extra, ("Content-Length", str(len(body)))], [body]


class FileBody:
    """The WSGI body of ``length`` bytes of an open file from its current position; closes it."""

    def __init__(self, file: BinaryIO, length: int) -> None:
        self._file = file
        self._remaining = length

    def __iter__(self) -> Iterator[bytes]:
        while self._remaining > 0:
            chunk = self._file.read(min(CHUNK, self._remaining))
            if not chunk:  # the file shrank: never the case for a published file
                return
            self._remaining -= len(chunk)
            yield chunk

    def close(self) -> None:
        self._file.close()


class DerivedApp:
    """GET and HEAD of one derived image; every other method is 405 with ``Allow: GET, HEAD``."""

    def __init__(self, service: IImageService, settings: Settings, log_manager: LogManager) -> None:
        """``log_manager``: the CherryPy application's, so access lines go where CherryPy writes its own."""
        self._service = service
        self._cache_control = settings.cache_control_derived
        self._body_limit = body_limit(settings)
        self._log_manager = log_manager

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            status, headers, body = self._reply(environ, method)
        except PymagerError as error:  # raised by the service: an answer, not a crash
            status, headers, body = _error_reply(error, environ)
        except ClientTimedOut:
            raise  # the client stalled mid-body: the HTTP server answers 408 and closes
        except Exception:
            log.exception("unhandled error on %s %s", method, environ.get("PATH_INFO", ""))
            status, headers, body = _standard_problem(500, "the server failed to handle this request")
        start_response(_STATUS_LINES[status], headers)
        self._log_access(environ, status, headers)
        return body

    def _reply(self, environ: Environ, method: str) -> Reply:
        if environ.get("CONTENT_LENGTH") or "HTTP_TRANSFER_ENCODING" in environ:
            refused = self._refuse_body(environ)
            if refused is not None:
                return refused
        if method not in ("GET", "HEAD"):
            return _standard_problem(405, "Specified method is invalid for this resource", [("Allow", ALLOW)])
        path: str = environ.get("PATH_INFO", "")
        segments = [segment for segment in path.split("/") if segment]
        if len(segments) != 2 or path.endswith("/"):
            return _standard_problem(404, f"The path {path!r} was not found.")
        stored = self._service.derived_file(_recode(segments[1]).replace("%2F", "/"))
        try:
            reply = answer(stored, _header(environ), self._cache_control)
            return reply.status, reply.headers, self._body(environ, method, stored.file, reply)
        except BaseException:
            stored.file.close()
            raise

    def _body(self, environ: Environ, method: str, file: BinaryIO, reply: Answer) -> Iterable[bytes]:
        if reply.problem is not None or method == "HEAD" or reply.length == 0:
            file.close()
            return [reply.problem] if reply.problem is not None and method != "HEAD" else []
        file.seek(reply.start)
        if reply.length <= CHUNK:  # most derived images: one read, one write
            try:
                return [file.read(reply.length)]
            finally:
                file.close()
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None and reply.status == 200:  # mod_wsgi: sendfile(2)
            wrapped: Iterable[bytes] = wrapper(file, CHUNK)
            return wrapped
        return FileBody(file, reply.length)

    def _refuse_body(self, environ: Environ) -> Reply | None:
        """A request body is never read here, whatever the method: 413 for one announced over the limit
        (the server then closes the connection unread); otherwise it is read and dropped in blocks, up
        to the limit, so the connection can be reused without the server buffering it whole (cheroot
        reads what is left in one ``read``; see ``pymager.web.bodies``)."""
        too_large = oversized(environ.get("CONTENT_LENGTH"), self._body_limit)
        if too_large is not None:
            return _error_reply(too_large, environ)
        drain(environ.get("wsgi.input"), self._body_limit)
        return None

    def _log_access(self, environ: Environ, status: int, headers: list[tuple[str, str]]) -> None:
        """One line per request, as CherryPy's access log writes it (Apache's combined format)."""
        access_log: logging.Logger = self._log_manager.access_log
        if not access_log.isEnabledFor(logging.INFO):
            return
        length = next((value for name, value in headers if name == "Content-Length"), "-")
        url = _recode(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
        query = environ.get("QUERY_STRING", "")
        if query:
            url += "?" + _recode(query)
        # As CherryPy writes it: the decoded path, then the query string.
        request_line = f"{environ.get('REQUEST_METHOD', '')} {url} {environ.get('SERVER_PROTOCOL', '')}"
        atoms = (
            environ.get("REMOTE_ADDR", "-"),
            request_line,
            str(status),
            length,
            environ.get("HTTP_REFERER", ""),
            environ.get("HTTP_USER_AGENT", ""),
        )
        host, request, code, size, referer, agent = (_escape(atom) for atom in atoms)
        when = self._log_manager.time()
        access_log.info('%s - - %s "%s" %s %s "%s" "%s"', host, when, request, code, size, referer, agent)


def _recode(text: str) -> str:
    """WSGI hands the path as bytes decoded as Latin-1; read it as UTF-8 like CherryPy (kept as is when
    it is not UTF-8, as CherryPy does: the id check then refuses it)."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _escape(value: str) -> str:
    """CherryPy's access-log escaping: quotes, backslashes and unprintable characters escaped."""
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return value
    return repr(value.replace('"', '\\"').encode("utf-8"))[2:-1].replace("\\\\", "\\")


class Router:
    """The WSGI application pymager serves: ``/derived`` requests to ``derived``, all else to ``rest``
    (the CherryPy application). Paths are split into segments as CherryPy does (empty ones dropped)."""

    def __init__(self, derived: WSGIApp, rest: WSGIApp) -> None:
        self._derived = derived
        self._rest = rest

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if path.lstrip("/").partition("/")[0] == PREFIX:
            return self._derived(environ, start_response)
        return self._rest(environ, start_response)
