"""``/console``: the browser console, static files shipped in the package (``pymager/web/static``).

The files are read once, when the application is built: they are a few kilobytes, they change only
with a release, and each answer is then one ``serve`` of bytes in memory with the same validators as
every other file pymager serves (a strong ETag of the content, so a 304 survives a restart).

The console is a page that shows strangers' text (ids, filenames, problem details), so every answer
carries a Content-Security-Policy that allows only its own script and style, no inline code, no frames
around it and no form submissions; Trusted Types make assigning a string to ``innerHTML`` (or any other
HTML sink) throw, so a mistake in the script fails loudly instead of injecting markup.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cherrypy

from pymager.domain import StoredFile
from pymager.errors import NoSuchResource
from pymager.web.http import serve

STATIC_DIRECTORY = Path(__file__).with_name("static")
INDEX = "index.html"
# Every file the console is made of, and its type: nothing else under /console exists.
CONTENT_TYPES: dict[str, str] = {
    INDEX: "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)
# Revalidated on every use (a 304 costs nothing), so a new release's console is never mixed with an
# old one's script from a cache.
CACHE_CONTROL = "no-cache"


@dataclass(frozen=True)
class _Asset:
    body: bytes
    content_type: str
    modified: datetime
    etag: str


def load_assets(directory: Path = STATIC_DIRECTORY) -> dict[str, _Asset]:
    """The console's files as served, read from ``directory``; a missing one fails here, at start-up."""
    assets = {}
    for name, content_type in CONTENT_TYPES.items():
        path = directory / name
        body = path.read_bytes()
        modified = datetime.fromtimestamp(int(path.stat().st_mtime), UTC)
        assets[name] = _Asset(body, content_type, modified, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
    return assets


class ConsoleResource:
    """``/console`` (the page) and ``/console/<file>`` (its script and style); any other name is 404."""

    def __init__(self, assets: dict[str, _Asset] | None = None) -> None:
        self._assets = load_assets() if assets is None else assets

    def GET(self, *path: str) -> Iterable[bytes] | bytes:  # noqa: N802
        name = self._name(path)
        asset = self._assets[name]
        headers = cherrypy.serving.response.headers
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        headers["Referrer-Policy"] = "no-referrer"
        headers["X-Frame-Options"] = "DENY"  # frame-ancestors, for browsers that predate it
        stored = StoredFile(
            io.BytesIO(asset.body), asset.content_type, len(asset.body), asset.modified, asset.etag
        )
        return serve(stored, CACHE_CONTROL)

    def _name(self, path: tuple[str, ...]) -> str:
        path_info: str = cherrypy.serving.request.path_info
        if not path:
            return INDEX  # /console and /console/
        if len(path) == 1 and path[0] in self._assets and not path_info.endswith("/"):
            return path[0]
        raise NoSuchResource(path_info)
