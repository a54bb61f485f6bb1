"""A real nginx serving pymager from the shipped ``deploy/nginx`` site, in front of a standalone server.

The site is rendered by ``deploy/nginx/render.py`` exactly as an operator renders it and included in
a minimal main configuration shaped like Debian's ``nginx.conf``, whose pid file, logs and temporary
directories all live in the test's directory, listening on a free loopback port.

When the tests run as root, nginx runs in a user namespace as an ordinary uid mapped to root (as
Apache does in ``apache.py``): its workers then read the test's files (under a 0700 temporary
directory) exactly as the test process does, without a ``user root`` the shipped setup never has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RENDER = REPO / "deploy" / "nginx" / "render.py"
# One worker with Debian's worker_connections: the worst case of Debian's "worker_processes auto",
# every connection landing on the same worker (the site's comment on slow clients).
WORKER_CONNECTIONS = 768


def find_binary() -> Path | str:
    """This machine's nginx, or the reason (a ``str``) it cannot be used."""
    binary = shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:" + os.environ.get("PATH", ""))
    if binary is None:
        return "nginx is not installed (make test installs the nginx package)"
    if os.geteuid() == 0 and shutil.which("unshare") is None:
        return "running as root needs unshare(1) to start nginx as an ordinary user"
    return Path(binary)


def render_site(config: Path, site: Path, port: int, htpasswd: Path) -> Path:
    """Render the shipped site configuration for this port, as an operator would."""
    command = [
        sys.executable,
        str(RENDER),
        "--config",
        str(config),
        "--listen",
        f"127.0.0.1:{port}",
        "--server-name",
        "127.0.0.1",
        "--htpasswd",
        str(htpasswd),
        "--output",
        str(site),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"render.py failed: {result.stderr}")
    return site


def write_server_config(directory: Path, site: Path) -> Path:
    """A minimal nginx.conf: Debian's http settings, everything nginx writes inside ``directory``."""
    lines = [
        "daemon off;",
        "worker_processes 1;",
        f"pid {directory / 'nginx.pid'};",
        f"error_log {directory / 'error.log'} warn;",
        f"events {{ worker_connections {WORKER_CONNECTIONS}; }}",
        "http {",
        "    sendfile on;",
        "    tcp_nopush on;",
        "    include /etc/nginx/mime.types;",
        "    default_type application/octet-stream;",
        f"    access_log {directory / 'access.log'};",
        *(
            f"    {kind}_temp_path {directory / 'temp' / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
        f"    include {site};",
        "}",
    ]
    path = directory / "nginx.conf"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / "temp").mkdir(exist_ok=True)
    return path


def _command(binary: Path, server_config: Path, *options: str) -> list[str]:
    command = [
        str(binary),
        "-p",
        str(server_config.parent),
        "-e",
        "stderr",
        "-c",
        str(server_config),
        *options,
    ]
    if os.geteuid() == 0:
        # unshare execs nginx: the Popen's pid is nginx's master process.
        command = ["unshare", "--user", "--map-user=1000", "--map-group=1000", *command]
    return command


def check_config(binary: Path, server_config: Path) -> None:
    """``nginx -t``: raise with nginx's own words if it refuses the configuration."""
    result = subprocess.run(
        _command(binary, server_config, "-t"), capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"nginx -t refused {server_config}:\n{result.stderr}")


def start_nginx(binary: Path, server_config: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start nginx in the foreground (``terminate()`` stops it: a fast shutdown)."""
    check_config(binary, server_config)
    with log.open("wb") as output:
        return subprocess.Popen(_command(binary, server_config), stdout=output, stderr=subprocess.STDOUT)
