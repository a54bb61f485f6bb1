"""One HTTP request on a new connection (so a killed server shows as a refused or cut connection, not
as a stale keep-alive), timed, with its answer or the reason there was none."""

from __future__ import annotations

import http.client
import time
import uuid
from dataclasses import dataclass

TIMEOUT = 60.0


@dataclass(frozen=True)
class Answer:
    start: float
    end: float
    status: int | None
    headers: dict[str, str]
    body: bytes
    error: str | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Answer:
    start = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        found = {name.lower(): value for name, value in response.getheaders()}
        return Answer(start, time.monotonic(), response.status, found, data)
    except ConnectionRefusedError:
        return Answer(start, time.monotonic(), None, {}, b"", "refused")
    except (
        ConnectionResetError,
        BrokenPipeError,
        http.client.RemoteDisconnected,
        http.client.IncompleteRead,
    ):
        return Answer(start, time.monotonic(), None, {}, b"", "reset")
    except TimeoutError:
        return Answer(start, time.monotonic(), None, {}, b"", "timeout")
    except (OSError, http.client.HTTPException) as exc:
        return Answer(start, time.monotonic(), None, {}, b"", type(exc).__name__)
    finally:
        connection.close()


def multipart(fields: dict[str, bytes | tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body: a value is text bytes, or (filename, content type, bytes)."""
    boundary = f"soak{uuid.uuid4().hex}"
    parts = []
    for name, value in fields.items():
        if isinstance(value, tuple):
            filename, content_type, data = value
            head = (
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            )
        else:
            head, data = f'Content-Disposition: form-data; name="{name}"\r\n\r\n', value
        parts.append(f"--{boundary}\r\n".encode() + head.encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
