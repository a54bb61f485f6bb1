"""Apache httpd for the hit comparison: the shipped ``deploy/apache`` site (cache hits served by
mod_rewrite from the data directory) against the same Apache serving the same file as a plain static
file, in one server on two loopback ports.

Apache is started the way the functional tests start it (``tests/functional/apache.py``: rendered by
``deploy/apache/render.py``, as an ordinary user in a user namespace when run as root), so the bench
measures exactly the configuration those tests check.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from benchmarks.servers import REPO, free_port, stop_process

STARTUP_DEADLINE = 60.0


@dataclass
class ApacheServers:
    """The running Apache and the two URLs of the same file."""

    process: subprocess.Popen[bytes]
    shipped_url: str
    static_url: str
    log: Path

    def __enter__(self) -> ApacheServers:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        stop_process(self.process, 20)


def _static_site(port: int, hit_file: Path) -> str:
    return "\n".join(
        [
            f"<VirtualHost 127.0.0.1:{port}>",
            "    ServerName 127.0.0.1",
            f'    DocumentRoot "{hit_file.parent}"',
            f'    <Directory "{hit_file.parent}">',
            "        Require all granted",
            "        Options None",
            "        AllowOverride None",
            "        ForceType image/jpeg",
            "    </Directory>",
            "</VirtualHost>",
            "",
        ]
    )


def start(directory: Path, pymager_config: Path, hit_path: str, hit_file: Path) -> ApacheServers | str:
    """Start Apache with the shipped site for ``pymager_config`` and a static site for ``hit_file``;
    or return why Apache cannot be measured here."""
    if not (REPO / "deploy" / "apache" / "render.py").exists():
        return "Apache unavailable: deploy/apache/render.py is missing"
    try:
        from tests.functional import apache as harness
    except ImportError as exc:
        return f"Apache unavailable: tests/functional/apache.py cannot be imported ({exc})"
    installation = harness.find_installation()
    if isinstance(installation, str):
        return f"Apache unavailable: {installation}"
    directory.mkdir(parents=True, exist_ok=True)
    shipped_port, static_port = free_port(), free_port()
    site = harness.render_site(
        pymager_config, directory / "site.conf", shipped_port, harness.write_htpasswd(directory / "htpasswd")
    )
    server_config = harness.write_server_config(directory, installation, shipped_port, site)
    static_site = directory / "static.conf"
    static_site.write_text(_static_site(static_port, hit_file), encoding="utf-8")
    with server_config.open("a", encoding="utf-8") as config:
        config.write(f'Listen 127.0.0.1:{static_port}\nInclude "{static_site}"\n')
    log = directory / "httpd.out"
    # The daemons serve what reaches Python (/health in the slow-client scenario) from the same registry.
    process = harness.start_httpd(installation, server_config, {"PYMAGER_CONFIG": str(pymager_config)}, log)
    servers = ApacheServers(
        process,
        f"http://127.0.0.1:{shipped_port}{hit_path}",
        f"http://127.0.0.1:{static_port}/{hit_file.name}",
        log,
    )
    _wait_ready(servers, directory)
    return servers


def _wait_ready(servers: ApacheServers, directory: Path) -> None:
    import http.client
    from urllib.parse import urlsplit

    deadline = time.monotonic() + STARTUP_DEADLINE
    pending = [servers.shipped_url, servers.static_url]
    while pending:
        if servers.process.poll() is not None:
            error_log = directory / "error.log"
            detail = error_log.read_text() if error_log.exists() else servers.log.read_text()
            raise RuntimeError(f"Apache exited with {servers.process.returncode}:\n{detail}")
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
            raise RuntimeError(f"Apache not ready after {STARTUP_DEADLINE}s")
        time.sleep(0.1)  # polling a starting process, bounded by the deadline above
