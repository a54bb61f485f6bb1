"""CDN purge notices, end to end: a real server (standalone on SQLite, on PostgreSQL + S3, and under
Apache's mod_wsgi) posting to a local receiver standing in for the CDN's webhook."""

from __future__ import annotations

import hashlib
import hmac
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests import images
from tests.functional.conftest import (
    SERVER_KINDS,
    Server,
    free_port,
    log_text,
    start_kind,
    start_server,
    stop_and_check_log,
    upload,
)
from tests.receiver import Receiver

KEY = "a purge key of the tests"
PUBLIC = "https://img.example.com"
KINDS = [
    kind
    for kind in SERVER_KINDS
    if kind.values[0] in ("standalone-sqlite", "standalone-postgres-s3", "apache")
]


def cdn_settings(receiver_url: str) -> dict[str, object]:
    return {"cdn.purge_url": receiver_url, "cdn.public_url": PUBLIC}


def signed_by_key(body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def pending_notices(server: Server) -> int:
    engine = create_engine(server.database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM purge_notices")).scalar_one())
    finally:
        engine.dispose()


def wait_for_log(server: Server, text_in_log: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text_in_log not in log_text(server.log_path):
        assert time.monotonic() < deadline, f"{text_in_log!r} not logged within {timeout} s"
        time.sleep(0.05)


def delete(server: Server, image_id: str) -> requests.Response:
    return requests.delete(server.url(f"/original/{image_id}"), auth=server.auth, timeout=30)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture(scope="module", params=KINDS)
def purging_server(
    request: pytest.FixtureRequest, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    running = start_kind(
        request,
        tmp_path_factory.mktemp(f"purging-{request.param}"),
        env={"PYMAGER_PURGE_KEY": KEY},
        **cdn_settings(receiver.url),
    )
    yield running
    stop_and_check_log(running)


def test_a_delete_posts_one_signed_notice_naming_every_url_the_cdn_may_hold(
    purging_server: Server, receiver: Receiver, image_id: str
) -> None:
    assert upload(purging_server, image_id, images.jpeg(320, 200)).status_code == 201
    for name in ("100x100.jpg", "100x100.png", "64x64-fit.webp"):
        assert requests.get(purging_server.url(f"/derived/{image_id}-{name}"), timeout=30).status_code == 200
    before = len(receiver.received)

    assert delete(purging_server, image_id).status_code == 204

    received = [r for r in receiver.wait_for(before + 1)[before:] if r.notice["id"] == image_id]
    assert len(received) == 1
    notice = received[0]
    assert signed_by_key(notice.body, notice.headers["X-Pymager-Signature"])
    assert notice.headers["Content-Type"] == "application/json"
    assert notice.headers["X-Pymager-Delivery"].isdigit()
    assert notice.notice["reason"] == "deleted"
    assert notice.notice["keys"] == [image_id]
    assert set(notice.notice["urls"]) == {
        f"{PUBLIC}/original/{image_id}",
        f"{PUBLIC}/original/{image_id}/info",
        f"{PUBLIC}/derived/{image_id}-100x100.jpg",
        f"{PUBLIC}/derived/{image_id}-100x100.jpeg",
        f"{PUBLIC}/derived/{image_id}-100x100.png",
        f"{PUBLIC}/derived/{image_id}-64x64-fit.webp",
        f"{PUBLIC}/derived/{image_id}-100x100.auto",
        f"{PUBLIC}/derived/{image_id}-64x64-fit.auto",
    }
    assert pending_notices(purging_server) == 0


def test_a_failed_delete_queues_no_notice(purging_server: Server, receiver: Receiver, image_id: str) -> None:
    before = len(receiver.received)
    assert delete(purging_server, image_id).status_code == 404
    assert pending_notices(purging_server) == 0
    assert len(receiver.received) == before


def test_a_refused_notice_is_posted_again_until_accepted(tmp_path: Path, image_id: str) -> None:
    receiver = Receiver(statuses=[503, 302]).start()  # a redirect is no delivery either
    server = start_server(
        tmp_path,
        f"sqlite:///{tmp_path / 'registry.sqlite3'}",
        env={"PYMAGER_PURGE_KEY": KEY},
        **cdn_settings(receiver.url),
    )
    try:
        assert upload(server, image_id, images.jpeg(64, 48)).status_code == 201
        assert delete(server, image_id).status_code == 204
        attempts = receiver.wait_for(3)
        assert [a.body for a in attempts] == [attempts[0].body] * 3
        assert len({a.headers["X-Pymager-Delivery"] for a in attempts}) == 1
        assert len(receiver.wait_for(3)) == 3  # accepted the third time: not posted again
        assert pending_notices(server) == 0
        metrics = requests.get(server.url("/metrics"), timeout=10).text
        assert 'pymager_purge_notices_total{outcome="failed"} 2.0' in metrics
        assert 'pymager_purge_notices_total{outcome="delivered"} 1.0' in metrics
    finally:
        stop_and_check_log(server)
        receiver.stop()


def test_a_notice_outlives_a_killed_server_and_is_delivered_by_the_next(
    tmp_path: Path, image_id: str
) -> None:
    """The CDN's webhook is down when the DELETE commits and the server is then SIGKILLed: the notice
    waits in the registry, and the server started next delivers it."""
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    settings = cdn_settings(f"http://127.0.0.1:{port}/purge")
    first = start_server(
        tmp_path / "first", database_url, tmp_path / "data", env={"PYMAGER_PURGE_KEY": KEY}, **settings
    )
    try:
        assert upload(first, image_id, images.jpeg(64, 48)).status_code == 201
        assert delete(first, image_id).status_code == 204
        # Killed once its first attempt failed (the next is seconds away), not in the middle of one,
        # whose lease would hold the notice back for a minute (covered in the integration tests).
        wait_for_log(first, "not delivered")
        assert pending_notices(first) == 1
    finally:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=30)

    receiver = Receiver(port).start()
    second = start_server(
        tmp_path / "second", database_url, tmp_path / "data", env={"PYMAGER_PURGE_KEY": KEY}, **settings
    )
    try:
        (delivered,) = receiver.wait_for(1)
        assert delivered.notice["id"] == image_id
        assert signed_by_key(delivered.body, delivered.headers["X-Pymager-Signature"])
    finally:
        stop_and_check_log(second)
        receiver.stop()


def test_purge_derived_posts_a_notice_of_the_derived_images_only(
    purging_server: Server, receiver: Receiver, image_id: str
) -> None:
    assert upload(purging_server, image_id, images.jpeg(320, 200)).status_code == 201
    assert requests.get(purging_server.url(f"/derived/{image_id}-100x100.png"), timeout=30).status_code == 200
    before = len(receiver.received)

    tool = purging_server.run_tool("--purge-derived", image_id, env={"PYMAGER_PURGE_KEY": KEY})
    assert tool.returncode == 0, tool.stderr

    notices = [r.notice for r in receiver.wait_for(before + 1)[before:] if r.notice["id"] == image_id]
    assert [(n["reason"], sorted(n["urls"])) for n in notices] == [
        ("purged", [f"{PUBLIC}/derived/{image_id}-100x100.auto", f"{PUBLIC}/derived/{image_id}-100x100.png"])
    ]
    # made again on request, from the same original
    assert requests.get(purging_server.url(f"/derived/{image_id}-100x100.png"), timeout=30).status_code == 200
