"""The purge outbox on real registries (SQLite, PostgreSQL) and the webhook sender against a local HTTP
receiver: notices commit with their transaction, one deliverer at a time takes each, a crashed
deliverer's notice is retried once its lease expires, and only a 2xx answer delivers."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from zope.interface.verify import verifyObject

from pymager.adapters.db import SqlRegistry, migrate
from pymager.adapters.metrics import PrometheusMetrics
from pymager.adapters.webhook import WebhookSender, signature
from pymager.bootstrap import StartupError, build
from pymager.config import Settings
from pymager.domain import DerivedSpec, ImageFormat, ImageId, Mode, Size
from pymager.errors import PurgeFailed
from pymager.interfaces import IPurgeOutbox, IPurgeSender
from pymager.outbox import DELAY, LEASE, PurgeNotices
from tests.functional.conftest import free_port
from tests.integration.test_registry import make_original
from tests.receiver import Receiver

KEY = b"integration key"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def notices(
    registry: SqlRegistry, url: str, clock: Clock, tmp_path: Path, delay: float = 0.0
) -> PurgeNotices:
    settings = Settings.for_directory(tmp_path, public_url="https://cdn.example/")
    sender = WebhookSender(url, KEY, timeout=5)
    return PurgeNotices(settings, registry, sender, PrometheusMetrics(), clock, delay=delay)


def queue(registry: SqlRegistry, outbox: PurgeNotices, image_id: str, commit: bool = True) -> None:
    specs = [DerivedSpec(ImageId(image_id), Size(100, 100), ImageFormat.JPEG, Mode.FILL)]
    with registry.unit_of_work(write=True) as uow:
        outbox.announce(uow, ImageId(image_id), specs, "deleted")
        if commit:
            uow.commit()


def test_the_outbox_and_the_sender_provide_their_interfaces(registry: SqlRegistry) -> None:
    with registry.unit_of_work() as uow:
        assert verifyObject(IPurgeOutbox, uow.outbox)
    assert verifyObject(IPurgeSender, WebhookSender("http://127.0.0.1:1/", KEY))


def test_a_notice_commits_with_its_transaction_and_is_delivered_signed(
    registry: SqlRegistry, receiver: Receiver, tmp_path: Path
) -> None:
    clock = Clock()
    outbox = notices(registry, receiver.url, clock, tmp_path)
    queue(registry, outbox, "rolled-back", commit=False)
    assert outbox.pending() == 0
    queue(registry, outbox, "cat")
    assert outbox.pending() == 1

    assert outbox.deliver_due() == 1

    (received,) = receiver.received
    assert received.headers["X-Pymager-Signature"] == signature(KEY, received.body)
    assert hmac.compare_digest(
        received.headers["X-Pymager-Signature"],
        "sha256=" + hmac.new(KEY, received.body, hashlib.sha256).hexdigest(),
    )
    assert json.loads(received.body) == {
        "id": "cat",
        "reason": "deleted",
        "keys": ["cat"],
        "urls": [
            "https://cdn.example/original/cat",
            "https://cdn.example/original/cat/info",
            "https://cdn.example/derived/cat-100x100.jpg",
            "https://cdn.example/derived/cat-100x100.jpeg",
            "https://cdn.example/derived/cat-100x100.auto",
        ],
        "at": clock.now.isoformat(),
    }
    assert outbox.pending() == 0


def test_a_notice_is_first_due_once_no_host_serves_what_it_announces(
    registry: SqlRegistry, receiver: Receiver, tmp_path: Path
) -> None:
    clock = Clock()
    outbox = notices(registry, receiver.url, clock, tmp_path, delay=DELAY)
    queue(registry, outbox, "cat")
    clock.now += timedelta(seconds=DELAY) - timedelta(milliseconds=1)
    assert outbox.deliver_due() == 0
    clock.now += timedelta(milliseconds=1)
    assert outbox.deliver_due() == 1


def test_notice_numbers_are_never_reused(registry: SqlRegistry, receiver: Receiver, tmp_path: Path) -> None:
    """Receivers drop a delivery number they have seen: an emptied outbox must not give it again."""
    outbox = notices(registry, receiver.url, Clock(), tmp_path)
    for image_id in ("a", "b", "c"):
        queue(registry, outbox, image_id)
        assert outbox.deliver_due() == 1
    numbers = [r.headers["X-Pymager-Delivery"] for r in receiver.received]
    assert [r.notice["id"] for r in receiver.received] == ["a", "b", "c"]
    assert len(set(numbers)) == 3


def test_a_late_failure_does_not_undo_another_deliverers_lease(registry: SqlRegistry, tmp_path: Path) -> None:
    clock = Clock()
    outbox = notices(registry, "http://127.0.0.1:1/", clock, tmp_path)
    queue(registry, outbox, "cat")
    with registry.unit_of_work() as uow:
        (seen,) = uow.outbox.due(clock.now, 10)
    first = replace(seen, attempts=seen.attempts + 1)
    with registry.unit_of_work(write=True) as uow:
        assert uow.outbox.lease(seen, clock.now + LEASE)  # the first deliverer; its lease expires
        assert uow.outbox.lease(first, clock.now + 2 * LEASE)  # a second one leases it again
        uow.outbox.postpone(first, clock.now, "the first deliverer's late failure")
        uow.commit()
    with registry.unit_of_work() as uow:
        assert uow.outbox.due(clock.now + LEASE, 10) == []  # still the second deliverer's


def test_a_failed_delivery_is_retried_later_with_a_growing_delay(
    registry: SqlRegistry, receiver: Receiver, tmp_path: Path
) -> None:
    clock = Clock()
    receiver.statuses = [500, 404]
    outbox = notices(registry, receiver.url, clock, tmp_path)
    queue(registry, outbox, "cat")

    assert outbox.deliver_due() == 0  # 500
    assert outbox.deliver_due() == 0  # not due yet: nothing sent
    assert len(receiver.received) == 1
    clock.now += timedelta(seconds=2)
    assert outbox.deliver_due() == 0  # 404
    clock.now += timedelta(seconds=2)
    assert outbox.deliver_due() == 0  # the second delay is 4 s
    clock.now += timedelta(seconds=2)
    assert outbox.deliver_due() == 1
    assert len(receiver.received) == 3
    assert len({r.headers["X-Pymager-Delivery"] for r in receiver.received}) == 1


def test_one_deliverer_takes_a_notice_and_a_crashed_ones_lease_expires(
    registry: SqlRegistry, receiver: Receiver, tmp_path: Path
) -> None:
    clock = Clock()
    outbox = notices(registry, receiver.url, clock, tmp_path)
    queue(registry, outbox, "cat")
    with registry.unit_of_work() as uow:
        (seen,) = uow.outbox.due(clock.now, 10)
    # Two deliverers read the notice; the first takes it, then crashes before sending.
    with registry.unit_of_work(write=True) as uow:
        assert uow.outbox.lease(seen, clock.now + LEASE)
        assert not uow.outbox.lease(seen, clock.now + LEASE)  # the second finds it taken
        uow.commit()

    assert outbox.deliver_due() == 0
    clock.now += LEASE - timedelta(seconds=1)
    assert outbox.deliver_due() == 0
    assert receiver.received == []
    clock.now += timedelta(seconds=1)
    assert outbox.deliver_due() == 1
    assert len(receiver.received) == 1


def test_the_sender_fails_unless_the_webhook_answers_2xx() -> None:
    nobody = WebhookSender(f"http://127.0.0.1:{free_port()}/purge", KEY, timeout=5)
    with pytest.raises(PurgeFailed, match="unreachable"):
        nobody.send(1, b"{}")
    receiver = Receiver(statuses=[302, 400, 204]).start()
    try:
        sender = WebhookSender(receiver.url, KEY, timeout=5)
        with pytest.raises(PurgeFailed, match="answered 302"):
            sender.send(1, b"{}")  # not followed: the body would be lost
        with pytest.raises(PurgeFailed, match="answered 400"):
            sender.send(1, b"{}")
        sender.send(1, b"{}")
        assert len(receiver.received) == 3  # nothing posted to the redirect's target
    finally:
        receiver.stop()


def test_purging_counts_the_originals_derived_epoch(registry: SqlRegistry) -> None:
    original = make_original()
    with registry.unit_of_work(write=True) as uow:
        assert uow.originals.add(original)
        uow.originals.renew_derived(original.image_id)
        uow.originals.renew_derived(original.image_id)
        uow.commit()
    with registry.unit_of_work() as uow:
        record = uow.originals.get(original.image_id)
    assert record is not None
    assert record.original.derived_epoch == 2


def test_a_server_with_a_purge_url_and_no_key_does_not_start(tmp_path: Path) -> None:
    settings = Settings.for_directory(tmp_path, purge_url="https://cdn.example/purge")
    migrate.upgrade(settings.database_url)
    with pytest.raises(StartupError, match=r"\$PYMAGER_PURGE_KEY is empty"):
        build(settings)
