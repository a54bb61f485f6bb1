"""``Client``: pymager's HTTP API from Python, synchronous, on httpx.

One ``Client`` keeps one connection pool and may be shared by threads (``pymager import`` does).
Failures are the exceptions of ``pymager.client.errors``, one per problem type.

Retries: a 503 (the registry unavailable, the storage failing, a cold request refused under load) says
nothing was done, so any request, an upload too, is sent again after the server's ``Retry-After``, at
most ``retries`` times, and only while that wait is at most ``max_retry_wait``: a server asking for
longer is answered at once with the ``Unavailable`` error (carrying ``retry_after``) rather than a
client stuck for minutes. Without ``Retry-After`` the wait doubles from 1 s. Nothing else is retried:
a broken connection may have stored an upload, and only the caller knows whether to try again.
"""

from __future__ import annotations

import contextlib
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO

import httpx

from pymager.client.errors import ImageNotFound, NoSuchResource, ProblemError, TransportError, problem_from
from pymager.client.urls import derived_path
from pymager.signing import UrlKey, UrlSigner, parse_url_keys

_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Retry:
    """One retry about to happen: the error that caused it, which attempt follows, the wait before it."""

    error: ProblemError
    attempt: int
    wait: float


def _quoted(image_id: str) -> str:
    # The server is the judge of ids (400 invalid-image-id); quoting only keeps the path one segment.
    return urllib.parse.quote(image_id, safe="")


def _focus_field(focus: tuple[float, float] | str | None) -> dict[str, str]:
    if focus is None:
        return {}
    if isinstance(focus, str):
        return {"focus": focus}
    x, y = focus
    return {"focus": f"{x:g},{y:g}"}


class Client:
    """pymager at ``base_url`` (``http://host:8000``, or with a mount path). ``key`` is an API key sent as
    ``Authorization: Bearer`` on every request (writes and the listing need it on a server with
    ``[auth] api_keys``); ``url_keys`` (``<key-id>:<secret>, …`` as in
    ``[auth] url_keys``, or ``UrlKey``s) sign the URLs ``derived_url`` builds, with the first key."""

    def __init__(
        self,
        base_url: str,
        key: str | None = None,
        url_keys: str | Sequence[UrlKey] | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        max_retry_wait: float = 30.0,
        on_retry: Callable[[Retry], None] | None = None,
        max_connections: int = 10,
    ) -> None:
        if retries < 0 or max_retry_wait < 0:
            raise ValueError("retries and max_retry_wait are at least 0")
        self.base_url = base_url.rstrip("/")
        self._key = key
        keys = parse_url_keys(url_keys) if isinstance(url_keys, str) else tuple(url_keys or ())
        self._signer = UrlSigner(keys) if keys else None
        self._retries = retries
        self._max_retry_wait = max_retry_wait
        self._on_retry = on_retry
        self._closed = threading.Event()  # a retry's wait ends early when the client is closed
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"User-Agent": "pymager-client"},
        )

    # Lifetime

    def close(self) -> None:
        self._closed.set()
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # Originals

    def upload(
        self,
        image_id: str,
        file: str | os.PathLike[str] | BinaryIO,
        focus: tuple[float, float] | str | None = None,
        *,
        filename: str | None = None,
    ) -> dict[str, Any]:
        """Store ``file`` (a path or a binary file object, read from its current position) as the
        original ``image_id``; ``focus`` is the focal point ``(x, y)`` in [0, 1]. Returns the server's
        JSON (``id``, ``format``, ``width``, ``height``, ``bytes``, ``created``, ``focus``)."""
        data = _focus_field(focus)

        @contextlib.contextmanager
        def body() -> Iterator[dict[str, Any]]:
            with contextlib.ExitStack() as stack:
                if isinstance(file, str | os.PathLike):
                    handle: IO[bytes] = stack.enter_context(Path(file).open("rb"))
                    name = filename or Path(file).name
                else:
                    handle = file
                    name = filename or "upload"
                yield {"files": {"file": (name, handle, "application/octet-stream")}, "data": data}

        rewind = _rewinder(file)
        with self._send("POST", f"/original/{_quoted(image_id)}", body=body, rewind=rewind) as response:
            response.read()
            return _json(response)

    def download(self, image_id: str) -> bytes:
        """The original's bytes, exactly as uploaded."""
        with self._send("GET", f"/original/{_quoted(image_id)}") as response:
            return response.read()

    def download_to(self, image_id: str, destination: str | os.PathLike[str] | BinaryIO) -> int:
        """Stream the original to ``destination`` (a path, written whole or not at all, or a binary
        stream); return its size."""
        with self._send("GET", f"/original/{_quoted(image_id)}") as response:
            if not isinstance(destination, str | os.PathLike):
                return _copy(response, destination)
            target = Path(destination)
            partial = target.with_name(f".{target.name}.part")
            try:
                with partial.open("wb") as out:
                    size = _copy(response, out)
                partial.replace(target)
            finally:
                partial.unlink(missing_ok=True)
            return size

    def delete(self, image_id: str) -> None:
        """Delete the original and every derived image of it."""
        with self._send("DELETE", f"/original/{_quoted(image_id)}") as response:
            response.read()

    def info(self, image_id: str) -> dict[str, Any]:
        """``GET /original/<id>/info``: format, size, ``sha256``, ``focus``, placeholders and the
        derived images made so far."""
        with self._send("GET", f"/original/{_quoted(image_id)}/info") as response:
            response.read()
            return _json(response)

    def sha256(self, image_id: str) -> str:
        """The SHA-256 (hex) of the stored original: ``info``'s, or from a server without the info
        route, the strong ``ETag`` of a ``HEAD`` (the same digest). ``ImageNotFound`` if none."""
        try:
            return str(self.info(image_id)["sha256"])
        except ImageNotFound:
            raise
        except NoSuchResource:  # an older server: no /info route
            pass
        with self._send("HEAD", f"/original/{_quoted(image_id)}") as response:
            return str(response.headers.get("ETag", "")).strip('"')

    def iter_originals(self, limit: int = 100, after: str | None = None) -> Iterator[dict[str, Any]]:
        """Every original, page by page (``limit`` a page) from the listing ``GET /original``, following
        its ``next`` cursor; ``after`` resumes after a cursor."""
        if limit < 1:
            raise ValueError("limit is at least 1")
        cursor = after
        while True:
            params: dict[str, str | int] = {"limit": limit}
            if cursor is not None:
                params["after"] = cursor
            with self._send("GET", "/original", params=params) as response:
                response.read()
                page = _json(response)
            yield from page["items"]
            cursor = page.get("next")
            if not cursor or not page["items"]:
                return

    # Derived images

    def derived_url(self, image_id: str, width: int, height: int, fmt: str, mode: str | None = None) -> str:
        """The absolute URL of ``/derived/<id>-<W>x<H>[-<mode>].<fmt>``, signed (``?s=``) when the client
        has url keys. ``ValueError`` for anything outside the server's grammar (a bad id, a negative or
        0 side outside fit, an unknown mode or format)."""
        path = derived_path(image_id, width, height, fmt, mode)
        return self.base_url + (self._signer.sign(path) if self._signer else path)

    def derived(self, image_id: str, width: int, height: int, fmt: str, mode: str | None = None) -> bytes:
        """The derived image's bytes (generated now if it was never asked for)."""
        with self._send("GET", self.derived_url(image_id, width, height, fmt, mode)) as response:
            return response.read()

    def pregenerate(self, image_id: str, width: int, height: int, fmt: str, mode: str | None = None) -> int:
        """Have the server make the derived image (a GET whose body is read and dropped); its size."""
        with self._send("GET", self.derived_url(image_id, width, height, fmt, mode)) as response:
            return sum(len(chunk) for chunk in response.iter_bytes(_CHUNK))

    def health(self) -> dict[str, Any]:
        with self._send("GET", "/health") as response:
            response.read()
            return _json(response)

    # The one place requests are sent

    @contextlib.contextmanager
    def _send(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str | int] | None = None,
        body: Callable[[], contextlib.AbstractContextManager[dict[str, Any]]] | None = None,
        rewind: Callable[[], bool] | None = None,
    ) -> Iterator[httpx.Response]:
        """The response of a successful request, streaming; a ``ProblemError`` for an error status,
        after the retries the module docstring describes."""
        headers = {}
        if self._key is not None:  # writes need it, and so does the listing on a server with keys
            headers["Authorization"] = f"Bearer {self._key}"
        attempt = 0
        while True:
            attempt += 1
            with contextlib.ExitStack() as stack:
                content = stack.enter_context(body()) if body is not None else {}
                request = self._http.build_request(method, url, params=params, headers=headers, **content)
                try:
                    response = self._http.send(request, stream=True)
                except httpx.TransportError as exc:
                    raise TransportError(f"{method} {request.url}: {exc}") from exc
                stack.callback(response.close)
                if response.status_code < 400:
                    try:
                        yield response
                    except httpx.TransportError as exc:  # the body broke off while it was read
                        raise TransportError(f"{method} {request.url}: {exc}") from exc
                    return
                error = self._problem(response)
            wait = self._retry_wait(error, attempt)
            if wait is None or (rewind is not None and not rewind()):
                raise error
            if self._on_retry is not None:
                self._on_retry(Retry(error, attempt + 1, wait))
            if self._closed.wait(wait):
                raise error

    @staticmethod
    def _problem(response: httpx.Response) -> ProblemError:
        try:
            content = response.read()
        except httpx.TransportError:
            content = b""
        return problem_from(
            response.status_code,
            response.headers.get("Content-Type", ""),
            content,
            response.headers.get("Retry-After"),
        )

    def _retry_wait(self, error: ProblemError, attempt: int) -> float | None:
        """Seconds to wait before sending again, or ``None``: not retried."""
        if error.status != 503 or attempt > self._retries:
            return None
        wait = error.retry_after if error.retry_after is not None else float(2 ** (attempt - 1))
        return wait if wait <= self._max_retry_wait else None


def _rewinder(file: str | os.PathLike[str] | BinaryIO) -> Callable[[], bool]:
    """What makes an upload's body ready to be sent again: a path is opened again, a seekable file is
    sought back to where it started; a pipe cannot be sent twice."""
    if isinstance(file, str | os.PathLike):
        return lambda: True
    try:
        start = file.tell() if file.seekable() else None
    except OSError:
        start = None
    if start is None:
        return lambda: False

    def rewind() -> bool:
        file.seek(start)
        return True

    return rewind


def _copy(response: httpx.Response, out: IO[bytes]) -> int:
    size = 0
    for chunk in response.iter_bytes(_CHUNK):
        out.write(chunk)
        size += len(chunk)
    return size


def _json(response: httpx.Response) -> dict[str, Any]:
    parsed = response.json()
    if not isinstance(parsed, dict):
        raise TransportError(f"{response.request.method} {response.request.url}: expected a JSON object")
    return parsed
