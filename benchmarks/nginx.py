"""nginx for the hit comparison: the shipped ``deploy/nginx`` site (cache hits by ``try_files`` from the
data directory, everything else proxied to the standalone server) against the same nginx serving the
same file from a minimal static ``server``, in one nginx on two loopback ports.

nginx is started the way the functional tests start it (``tests/functional/nginx.py``: the site
rendered by ``deploy/nginx/render.py``, one worker, as an ordinary user in a user namespace when run as
root), so the bench measures exactly the configuration those tests check.
"""

from __future__ import annotations

import http.client
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from benchmarks.servers import free_port, stop_process

STARTUP_DEADLINE = 60.0


@dataclass
class NginxServers:
    """The running nginx and the two URLs of the same file."""

    process: subprocess.Popen[bytes]
    shipped_url: str
    static_url: str
    log: Path

    def __enter__(self) -> NginxServers:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        stop_process(self.process, 20)


def _static_server(port: int, hit_file: Path) -> str:
    """The least nginx needs to serve ``hit_file``: a root, its type, nginx's defaults otherwise."""
    return "\n".join(
        [
            "server {",
            f"    listen 127.0.0.1:{port};",
            f'    root "{hit_file.parent}";',
            "    types { image/jpeg jpg; }",
            "}",
            "",
        ]
    )


def _nginx_config(pymager_config: Path, directory: Path) -> Path:
    """``pymager_config`` with ``etag_style = nginx``, which ``render.py`` requires (nginx computes its
    own ETags). Same data directory and address: the site serves the server's files and proxies to it.
    Only its misses would carry the other formula, and the bench asks none through nginx."""
    text = pymager_config.read_text(encoding="utf-8").replace(
        "[pymager]\n", "[pymager]\netag_style = nginx\n"
    )
    path = directory / "pymager-nginx.ini"
    path.write_text(text, encoding="utf-8")
    return path


def start(directory: Path, pymager_config: Path, hit_path: str, hit_file: Path) -> NginxServers | str:
    """Start nginx with the shipped site for ``pymager_config`` and a static server for ``hit_file``;
    or return why nginx cannot be measured here."""
    try:
        from tests.functional import apache
        from tests.functional import nginx as harness
    except ImportError as exc:
        return f"nginx unavailable: tests/functional/nginx.py cannot be imported ({exc})"
    binary = harness.find_binary()
    if isinstance(binary, str):
        return f"nginx unavailable: {binary}"
    directory.mkdir(parents=True, exist_ok=True)
    shipped_port, static_port = free_port(), free_port()
    site = harness.render_site(
        _nginx_config(pymager_config, directory),
        directory / "site.conf",
        shipped_port,
        apache.write_htpasswd(directory / "htpasswd"),
    )
    with site.open("a", encoding="utf-8") as config:
        config.write(_static_server(static_port, hit_file))
    log = directory / "nginx.out"
    process = harness.start_nginx(binary, harness.write_server_config(directory, site), log)
    servers = NginxServers(
        process,
        f"http://127.0.0.1:{shipped_port}{hit_path}",
        f"http://127.0.0.1:{static_port}/{hit_file.name}",
        log,
    )
    _wait_ready(servers, directory)
    return servers


def _wait_ready(servers: NginxServers, directory: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    pending = [servers.shipped_url, servers.static_url]
    while pending:
        if servers.process.poll() is not None:
            error_log = directory / "error.log"
            detail = error_log.read_text() if error_log.exists() else servers.log.read_text()
            raise RuntimeError(f"nginx exited with {servers.process.returncode}:\n{detail}")
        url = urlsplit(pending[0])
        try:
            connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=2)
            connection.request("GET", url.path)
            if connection.getresponse().status == 200:
                pending.pop(0)
                continue
        except OSError:
            pass
        if time.monotonic() > deadline:
            servers.__exit__(None, None, None)
            raise RuntimeError(f"nginx not ready after {STARTUP_DEADLINE}s")
        time.sleep(0.1)  # polling a starting process, bounded by the deadline above
