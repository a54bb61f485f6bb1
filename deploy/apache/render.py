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
import sys
from collections.abc import Sequence
from pathlib import Path

from pymager import sites
from pymager.errors import Unauthorized
from pymager.sites import RenderError

TEMPLATE = Path(__file__).with_name("pymager.conf.in")
WSGI_SCRIPT = Path(__file__).with_name("pymager.wsgi")


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
    settings = sites.load(config, "apache")
    if processes < 1 or threads < 1:
        raise RenderError(f"processes = {processes}, threads = {threads}: both must be at least 1")
    daemon_user = " ".join(
        f"{key}={sites.account(key, value)}" for key, value in (("user", user), ("group", group)) if value
    )
    wsgi_script = wsgi_script.resolve()
    values = {
        "LISTEN": sites.quoted("listen", listen),
        "SERVER_NAME": sites.quoted("server_name", server_name),
        "PROCESSES": str(processes),
        "THREADS": str(threads),
        "DAEMON_USER": daemon_user,
        "VENV": sites.path("venv", venv.absolute()),
        "WSGI_SCRIPT": sites.path("wsgi_script", wsgi_script),
        "WSGI_DIRECTORY": sites.path("wsgi_script", wsgi_script.parent),
        "WSGI_FILE": wsgi_script.name,
        "DATA_DIRECTORY": sites.path("data_directory", settings.data_directory.resolve()),
        "CACHE_CONTROL_DERIVED": sites.quoted("cache_control_derived", settings.cache_control_derived),
        "HTPASSWD": sites.path("htpasswd", htpasswd.absolute()),
        "API_KEYS_DEFINE": "Define PYMAGER_API_KEYS" if settings.api_keys else "# (not set)",
        # Inside an ErrorDocument's double quotes, where a quote is escaped.
        "UNAUTHORIZED_PROBLEM": sites.problem(
            Unauthorized("writes need the password of this site (Basic)"), "\\\n%"
        ).replace('"', '\\"'),
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
    return sites.emit(
        "render.py",
        lambda: render(
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
        ),
        args.output,
    )


if __name__ == "__main__":
    sys.exit(main())
