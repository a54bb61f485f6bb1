"""Render pymager's nginx site configuration from ``pymager.conf.in`` and ``pymager.ini``.

    /srv/pymager/venv/bin/python deploy/nginx/render.py --config /etc/pymager/pymager.ini \\
        > /etc/nginx/sites-available/pymager

The data directory, the ``Cache-Control`` of derived images, the body limit, the app's address
(``[server] host`` and ``port``) and whether writes need a password (``[auth] api_keys``) come from
``pymager.ini``, so the files nginx serves itself carry exactly what pymager would send. pymager.ini
must set ``etag_style = nginx``: nginx's ETag formula is not Apache's, and pymager must send the same.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from pymager import sites
from pymager.errors import PymagerError, ServiceUnavailable, Unauthorized, UploadTooLarge
from pymager.sites import RenderError
from pymager.web.bodies import body_limit

TEMPLATE = Path(__file__).with_name("pymager.conf.in")
# Characters that end or escape an nginx double-quoted string, or start a variable in it.
_NGINX_QUOTED = '"\\\n\r$'
_LISTEN = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]:|[A-Za-z0-9.-]+:)?[0-9]{1,5}$|^\*:[0-9]{1,5}$")
# How long the app may take to answer a cold request beyond its own deadlines.
_PROXY_READ_SLACK = 10


def _problem(error: PymagerError) -> str:
    """pymager's problem for ``error``, for inside nginx's single quotes."""
    return sites.problem(error, "'\\$\n")


def render(
    config: Path,
    *,
    listen: str = "80",
    server_name: str = "localhost",
    htpasswd: Path = Path("/etc/pymager/htpasswd"),
) -> str:
    """The site configuration text."""
    settings = sites.load(config, "nginx")
    if not _LISTEN.match(listen):
        raise RenderError(f"listen = {listen!r}: expected <port>, <address>:<port> or [<ipv6>]:<port>")
    if settings.host in ("0.0.0.0", "::", ""):  # noqa: S104 (this checks it, it binds nothing)
        raise RenderError(
            f"[server] host = {settings.host!r}: the app behind nginx listens on loopback (127.0.0.1)"
        )
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    unavailable = ServiceUnavailable("the application is not answering")
    values = {
        "LISTEN": listen,
        "SERVER_NAME": sites.quoted("server_name", server_name, _NGINX_QUOTED),
        "APP_ADDRESS": sites.quoted("[server] host", f"{host}:{settings.port}", _NGINX_QUOTED + " ;{}"),
        "DATA_DIRECTORY": sites.path("data_directory", settings.data_directory.resolve()),
        "CACHE_CONTROL_DERIVED": sites.quoted(
            "cache_control_derived", settings.cache_control_derived, _NGINX_QUOTED
        ),
        "HTPASSWD": sites.path("htpasswd", htpasswd.absolute()),
        "WRITE_REALM": "off" if settings.api_keys else "pymager",
        "AUTHORIZATION": "$http_authorization" if settings.api_keys else "",
        "CLIENT_MAX_BODY_SIZE": str(body_limit(settings)),
        "PROXY_READ_TIMEOUT": str(
            math.ceil(settings.wait_timeout + settings.generation_timeout) + _PROXY_READ_SLACK
        ),
        "TOO_LARGE_PROBLEM": _problem(UploadTooLarge("the request body exceeds max_upload_bytes")),
        "UNAVAILABLE_PROBLEM": _problem(unavailable),
        "UNAVAILABLE_RETRY_AFTER": str(unavailable.retry_after),
        "UNAUTHORIZED_PROBLEM": _problem(Unauthorized("writes need the password of this site (Basic)")),
    }
    return sites.fill(TEMPLATE, values)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("PYMAGER_CONFIG", "/etc/pymager/pymager.ini")),
        help="pymager.ini (default: $PYMAGER_CONFIG, else /etc/pymager/pymager.ini)",
    )
    parser.add_argument("--listen", default="80", help="the server's listen address (default 80)")
    parser.add_argument("--server-name", default="localhost", help="server_name (default localhost)")
    parser.add_argument("--htpasswd", type=Path, default=Path("/etc/pymager/htpasswd"))
    parser.add_argument("--output", type=Path, help="write here instead of standard output")
    args = parser.parse_args(argv)
    return sites.emit(
        "render.py",
        lambda: render(args.config, listen=args.listen, server_name=args.server_name, htpasswd=args.htpasswd),
        args.output,
    )


if __name__ == "__main__":
    sys.exit(main())
