"""A real Apache httpd with mod_wsgi serving pymager from the shipped ``deploy/apache`` configuration.

The site configuration is rendered by ``deploy/apache/render.py`` exactly as an operator renders it,
and wrapped in a minimal server configuration whose pid file, logs, mutexes and mod_wsgi sockets all
live in the test's directory, listening on a free loopback port.

Apache refuses to serve as root and mod_wsgi refuses root daemon processes, while this project's Python
may live where no other user can read it (pyenv under a 0700 ``/root``). So when the tests run as root,
Apache runs in a user namespace as an ordinary uid mapped to root: it is not root in its own eyes, yet
reads and writes the test's files exactly as the test process does.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RENDER = REPO / "deploy" / "apache" / "render.py"

PROCESSES = 2
THREADS = 16
USER = "uploader"
PASSWORD = "correct horse battery staple"

MODULES = (
    "mpm_event",
    "authz_core",
    "authz_user",
    "authn_core",
    "authn_file",
    "auth_basic",
    "rewrite",
    "headers",
    "reqtimeout",
)


@dataclass(frozen=True)
class Installation:
    """Where this machine's Apache and the virtualenv's mod_wsgi are."""

    binary: str
    modules: Path
    wsgi_module_config: str


def find_installation() -> Installation | str:
    """This machine's Apache and mod_wsgi, or the reason they cannot be used."""
    binary = shutil.which("apache2", path="/usr/sbin:/usr/local/sbin:" + os.environ.get("PATH", ""))
    binary = binary or shutil.which("httpd", path="/usr/sbin:/usr/local/sbin:" + os.environ.get("PATH", ""))
    if binary is None:
        return "Apache httpd is not installed (make test installs the apache2 package)"
    modules = next(
        (Path(d) for d in ("/usr/lib/apache2/modules", "/usr/lib64/httpd/modules") if Path(d).is_dir()), None
    )
    if modules is None:
        return "Apache's module directory was not found"
    express = Path(sys.executable).parent / "mod_wsgi-express"
    if not express.exists():
        return "mod_wsgi is not installed in the virtualenv (make test builds it with pip)"
    result = subprocess.run(
        [str(express), "module-config"], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        return f"mod_wsgi-express module-config failed: {result.stderr.strip()}"
    if os.geteuid() == 0 and shutil.which("unshare") is None:
        return "running as root needs unshare(1) to start Apache as an ordinary user"
    return Installation(binary, modules, result.stdout)


def write_htpasswd(path: Path) -> Path:
    """An htpasswd file with the test's user (``{SHA}`` scheme: no external tool needed)."""
    digest = base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()  # htpasswd {SHA}
    path.write_text(f"{USER}:{{SHA}}{digest}\n", encoding="utf-8")
    return path


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
        "--processes",
        str(PROCESSES),
        "--threads",
        str(THREADS),
        "--user",
        "",
        "--group",
        "",
        "--output",
        str(site),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"render.py failed: {result.stderr}")
    return site


def write_server_config(directory: Path, installation: Installation, port: int, site: Path) -> Path:
    """A minimal httpd.conf: loopback port, everything Apache writes inside ``directory``."""
    lines = [
        f'ServerRoot "{directory}"',
        "ServerName 127.0.0.1",
        f"Listen 127.0.0.1:{port}",
        f'PidFile "{directory / "httpd.pid"}"',
        f'ErrorLog "{directory / "error.log"}"',
        "LogLevel warn",
        f'DefaultRuntimeDir "{directory}"',
        f"Mutex file:{directory} default",
        *(f'LoadModule {name}_module "{installation.modules / f"mod_{name}.so"}"' for name in MODULES),
        installation.wsgi_module_config.strip(),
        f'WSGISocketPrefix "{directory / "wsgi"}"',
        f'Include "{site}"',
    ]
    path = directory / "httpd.conf"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_httpd(
    installation: Installation, server_config: Path, environment: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """Start Apache in the foreground (``terminate()`` stops it), as an ordinary user when we are root."""
    command = [installation.binary, "-f", str(server_config), "-D", "FOREGROUND"]
    if os.geteuid() == 0:
        # unshare execs Apache: the Popen's pid is Apache's parent process.
        command = ["unshare", "--user", "--map-user=1000", "--map-group=1000", *command]
    with log.open("wb") as output:
        return subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **environment}
        )
