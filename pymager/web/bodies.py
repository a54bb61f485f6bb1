"""Request bodies the application does not read must not cost memory.

cheroot answers a keep-alive request only after reading whatever body the application left unread,
in ONE ``read(Content-Length)``: a POST refused early (invalid id, 401, 409, 404, 405) that announces a
gigabyte would make the server allocate a gigabyte (or fail with ``MemoryError``). So:

- a request announcing more than the body limit is answered 413 before anything else; cheroot closes
  the connection after a 413 instead of reading the body;
- whatever body is still unread when the resource has answered is read and discarded here in small
  blocks, never more than the body limit (beyond it, the connection is not reused);
- a client that stalls mid-body is cut off after ``socket_timeout`` (``ClientTimedOut``), the body of
  an upload or one left unread;
- CherryPy's multipart line reader is bounded (``_readline``), so a part without newlines streams too.
"""

from __future__ import annotations

from typing import BinaryIO

import cherrypy
from cherrypy import _cpreqbody

from pymager.config import Settings
from pymager.errors import UploadTooLarge
from pymager.web.errors import problem_for

_BLOCK = 64 * 1024
# The multipart envelope (boundaries, part headers) around the file, allowed above max_upload_bytes.
MULTIPART_ALLOWANCE = 64 * 1024


def body_limit(settings: Settings) -> int:
    """The most bytes of request body any request may send (``request.body.maxbytes``)."""
    return settings.max_upload_bytes + MULTIPART_ALLOWANCE


class ClientTimedOut(TimeoutError):
    """The client stopped sending its body for longer than ``socket_timeout``.

    Listed in ``request.throws``, it leaves CherryPy (no 500, no traceback) for the HTTP server, which
    answers 408 to a client still listening and closes the connection.
    """

    def __init__(self) -> None:
        super().__init__("timed out")  # cheroot recognises a read timeout by this text


def oversized(content_length: str | None, limit: int) -> UploadTooLarge | None:
    """The 413 for a declared ``Content-Length`` over ``limit`` (0: none), or ``None``."""
    if content_length is None or not content_length.isdigit() or not limit or int(content_length) <= limit:
        return None
    return UploadTooLarge(f"the request body ({int(content_length)} bytes) exceeds max_upload_bytes")


def declared_length(content_length: str | None) -> int | None:
    """The body length a ``Content-Length`` declares; ``None`` without one (chunked) or unparsable."""
    return int(content_length) if content_length is not None and content_length.isdigit() else None


def discard_unread(request: cherrypy._cprequest.Request, limit: int) -> None:
    """Once the CherryPy resource has answered: read and drop the unread body in blocks, up to the body
    limit. Called by the request itself, not as a hook: CherryPy logs a traceback for any error a hook
    raises, and a stalled client (``ClientTimedOut``) is not an error of the server's."""
    length = request.headers.get("Content-Length")
    if request.method not in request.methods_with_bodies and (length is None or not length.isdigit()):
        return
    if str(cherrypy.serving.response.status).startswith("413"):
        return
    too_large = oversized(length, limit)
    if too_large is not None:  # answered before pymager's 413 check ran (a 400 for a missing Host)
        response = cherrypy.serving.response
        response.body = problem_for(too_large)
        response.headers.pop("Content-Length", None)  # the first answer's: finalize sets this one's
        response.finalize()
        return
    drain(request.rfile, limit)


def drain(stream: BinaryIO | None, budget: int) -> None:
    """Read and drop what is left of a request body, in blocks, up to ``budget`` bytes. A client that
    stops sending it gets ``ClientTimedOut`` (408): on a connection it keeps open, cheroot reads the
    rest of the body before sending any answer, and it cannot read a timed-out socket again."""
    while stream is not None and budget > 0:
        try:
            block = stream.read(min(_BLOCK, budget))
        except TimeoutError:
            raise ClientTimedOut() from None
        except (OSError, ValueError):  # the client went away, or a broken chunked encoding
            return
        if not block:
            return
        budget -= len(block)


def _readline(self: _cpreqbody.SizedReader, size: int | None = None) -> bytes:
    """``SizedReader.readline`` that honours ``size``. CherryPy 18's never decrements it, so reading
    a multipart file part without a newline byte (40 MiB of zeros, say) buffered the whole body, twice:
    ``read_lines_to_boundary`` asks for lines of at most 64 KiB and gets the body."""
    chunks = []
    while size is None or size > 0:
        data = self.read(self.bufsize if size is None else min(size, self.bufsize))
        if not data:
            break
        end = data.find(b"\n") + 1
        if end:
            chunks.append(data[:end])
            remainder = data[end:]
            self.buffer += remainder  # read again first next time, so not counted twice
            self.bytes_read -= len(remainder)
            break
        chunks.append(data)
        if size is not None:
            size -= len(data)
    return b"".join(chunks)


_cpreqbody.SizedReader.readline = _readline
