"""Render pymager's Apache site configuration from ``pymager.conf.in`` and ``pymager.ini``.

    /srv/pymager/venv/bin/python deploy/apache/render.py --config /etc/pymager/pymager.ini \\
        > /etc/apache2/sites-available/pymager.conf

The data directory and the ``Cache-Control`` of derived images come from ``pymager.ini``, so the
files Apache serves itself carry exactly what pymager would send; the virtualenv defaults to the one
running this script.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from pymager.config import ConfigError, load_settings

TEMPLATE = Path(__file__).with_name("pymager.conf.in")
WSGI_SCRIPT = Path(__file__).with_name("pymager.wsgi")

# Paths end up in RewriteCond/RewriteRule, where "$", "%", "\" and spaces have meanings of their own.
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9_./+-]*$")
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
_ACCOUNT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class RenderError(Exception):
    """The site configuration cannot be rendered; the message names the value at fault."""


def _path(name: str, path: Path) -> str:
    text = str(path)
    if not _SAFE_PATH.match(text):
        raise RenderError(f"{name} = {text!r}: use an absolute path of letters, digits and _ . / + -")
    return text


def _name(key: str, value: str) -> str:
    if not _ACCOUNT.match(value):
        raise RenderError(f"{key} = {value!r}: not a user or group name")
    return value


def _quoted(name: str, value: str) -> str:
    """A value for inside an Apache double-quoted argument."""
    if any(char in value for char in '"\\\n\r'):
        raise RenderError(f"{name} = {value!r}: quotes, backslashes and newlines are not allowed")
    return value


def render(
    config: Path,
    *,
    listen: str = "*:80",
    server_name: str = "localhost",
    venv: Path = Path(sys.prefix),
    wsgi_script: Path = WSGI_SCRIPT,
    htpasswd: Path = Path("/etc/pymager/htpasswd"),
    processes: int = 2,
    threads: int = 15,
    user: str | None = "www-data",
    group: str | None = "www-data",
) -> str:
    """The site configuration text. ``user``/``group`` ``None``: the daemons run as Apache's user."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise RenderError(str(exc)) from None
    if processes < 1 or threads < 1:
        raise RenderError(f"processes = {processes}, threads = {threads}: both must be at least 1")
    daemon_user = " ".join(
        f"{key}={_name(key, value)}" for key, value in (("user", user), ("group", group)) if value
    )
    wsgi_script = wsgi_script.resolve()
    values = {
        "LISTEN": _quoted("listen", listen),
        "SERVER_NAME": _quoted("server_name", server_name),
        "PROCESSES": str(processes),
        "THREADS": str(threads),
        "DAEMON_USER": daemon_user,
        "VENV": _path("venv", venv.absolute()),
        "WSGI_SCRIPT": _path("wsgi_script", wsgi_script),
        "WSGI_DIRECTORY": _path("wsgi_script", wsgi_script.parent),
        "WSGI_FILE": wsgi_script.name,
        "DATA_DIRECTORY": _path("data_directory", settings.data_directory.resolve()),
        "CACHE_CONTROL_DERIVED": _quoted("cache_control_derived", settings.cache_control_derived),
        "HTPASSWD": _path("htpasswd", htpasswd.absolute()),
        "API_KEYS_DEFINE": "Define PYMAGER_API_KEYS" if settings.api_keys else "# (not set)",
    }
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], TEMPLATE.read_text(encoding="utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("PYMAGER_CONFIG", "/etc/pymager/pymager.ini")),
        help="pymager.ini (default: $PYMAGER_CONFIG, else /etc/pymager/pymager.ini)",
    )
    parser.add_argument("--listen", default="*:80", help="the <VirtualHost> address (default *:80)")
    parser.add_argument("--server-name", default="localhost", help="ServerName (default localhost)")
    parser.add_argument("--venv", type=Path, default=Path(sys.prefix), help="python-home (default: ours)")
    parser.add_argument("--wsgi-script", type=Path, default=WSGI_SCRIPT, help="the .wsgi file")
    parser.add_argument("--htpasswd", type=Path, default=Path("/etc/pymager/htpasswd"))
    parser.add_argument("--processes", type=int, default=2, help="mod_wsgi daemon processes (default 2)")
    parser.add_argument("--threads", type=int, default=15, help="threads per process (default 15)")
    parser.add_argument("--user", default="www-data", help="daemon user; empty: Apache's own")
    parser.add_argument("--group", default="www-data", help="daemon group; empty: Apache's own")
    parser.add_argument("--output", type=Path, help="write here instead of standard output")
    args = parser.parse_args(argv)
    try:
        text = render(
            args.config,
            listen=args.listen,
            server_name=args.server_name,
            venv=args.venv,
            wsgi_script=args.wsgi_script,
            htpasswd=args.htpasswd,
            processes=args.processes,
            threads=args.threads,
            user=args.user or None,
            group=args.group or None,
        )
    except RenderError as exc:
        print(f"render.py: {exc}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
