"""Servers keeping their pictures in a SeaweedFS bucket: an outage of the bucket and its recovery without
a restart, and two hosts (their own host names, their own data directories, no shared filesystem)
sharing one PostgreSQL registry and one bucket."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests import images
from tests.conftest import start_seaweedfs
from tests.functional.conftest import Server, all_at_once, log_text, start_server, stop_and_check_log, upload
from tests.seaweed import SeaweedFS

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

DELETE_SEEN_WITHIN = 1.0


def s3_config(weed: SeaweedFS, bucket: str) -> dict[str, object]:
    return {"storage_url": f"s3://{bucket}/pymager", "s3_endpoint_url": weed.endpoint_url}


def test_an_unreachable_bucket_is_a_503_and_serves_again_once_back(
    tmp_path: Path, make_postgres_database: Callable[[], str]
) -> None:
    weed = start_seaweedfs(tmp_path / "weed")
    try:
        bucket = weed.make_bucket()
        server = start_server(
            tmp_path / "server", make_postgres_database(), env=weed.environment, **s3_config(weed, bucket)
        )
        try:
            assert upload(server, "cat", images.jpeg(300, 200)).status_code == 201
            cached = server.url("/derived/cat-100x100.jpg")
            assert requests.get(cached, timeout=30).status_code == 200
            weed.stop()
            cold = requests.get(server.url("/derived/cat-120x120.jpg"), timeout=30)
            assert cold.status_code == 503, cold.text
            assert 1 <= int(cold.headers["Retry-After"]) <= 5
            assert requests.get(server.url("/health"), timeout=30).status_code == 503
            assert upload(server, "dog", images.jpeg()).status_code == 503
            assert requests.get(cached, timeout=30).status_code == 200  # from this host's cache
            weed.start()
            assert requests.get(server.url("/derived/cat-120x120.jpg"), timeout=30).status_code == 200
            assert requests.get(server.url("/health"), timeout=30).status_code == 200
            assert upload(server, "dog", images.jpeg()).status_code == 201
        finally:
            server.stop()
        assert "Traceback" not in log_text(server.log_path)
        weed.remove_bucket(bucket)
    finally:
        weed.stop()


def _host_named(name: str) -> list[str]:
    """A command prefix that runs a program in a UTS namespace of its own, as host ``name``, so that
    the owners it names (pymager.owners) are another host's. Skips when the system cannot."""
    unshare = shutil.which("unshare")
    script = 'hostname "$0" && exec "$@"'
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed: cannot give a server a host name of its own")
    probe = subprocess.run(
        [unshare, "--uts", "sh", "-c", script, name, "hostname"], capture_output=True, text=True
    )
    if probe.returncode != 0 or probe.stdout.strip() != name:
        pytest.skip(f"unshare --uts cannot set a host name here: {probe.stderr.strip()}")
    return [unshare, "--uts", "sh", "-c", script, name]


def test_two_hosts_share_the_registry_and_the_bucket(
    tmp_path: Path, seaweedfs: SeaweedFS, s3_bucket: str, make_postgres_database: Callable[[], str]
) -> None:
    database = make_postgres_database()
    config = s3_config(seaweedfs, s3_bucket)
    hosts: list[Server] = []
    try:
        for name in ("host-a", "host-b"):
            hosts.append(
                start_server(
                    tmp_path / name, database, env=seaweedfs.environment, command=_host_named(name), **config
                )
            )
        a, b = hosts
        assert upload(a, "shared", images.jpeg(400, 300)).status_code == 201
        keys = [f"shared-{40 + 10 * n}x{40 + 10 * n}.jpg" for n in range(6)]

        def get(index: int) -> int:
            host = hosts[index % 2]
            status: int = requests.get(host.url(f"/derived/{keys[index % 6]}"), timeout=60).status_code
            return status

        assert set(all_at_once(120, get)) == {200}
        logs = log_text(a.log_path) + log_text(b.log_path)
        generated = re.findall(r"generated (shared-\S+)", logs)
        assert sorted(generated) == sorted(keys)  # exactly one generation per key, on either host

        assert upload(b, "from-b", images.png(64, 48)).status_code == 201
        on_a = requests.get(a.url("/original/from-b"), timeout=30)
        assert on_a.status_code == 200
        assert on_a.content == requests.get(b.url("/original/from-b"), timeout=30).content
        assert requests.get(a.url("/derived/from-b-20x20.png"), timeout=30).status_code == 200

        cached_on_b = b.url(f"/derived/{keys[0]}")
        assert requests.get(cached_on_b, timeout=30).status_code == 200
        assert requests.delete(a.url("/original/shared"), timeout=30).status_code == 204
        deleted_at = time.monotonic()
        while requests.get(cached_on_b, timeout=30).status_code != 404:
            assert time.monotonic() - deleted_at < DELETE_SEEN_WITHIN, "host-b still serves a deleted image"
            time.sleep(0.05)  # polling the other host, bounded by the deadline above
        assert not [key for key in seaweedfs.keys(s3_bucket) if "/shared" in key]
    finally:
        for host in hosts:
            stop_and_check_log(host)
