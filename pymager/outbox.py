"""CDN purge notices through a transactional outbox (README, "CDN purge").

A DELETE (or ``purge-derived``) writes its notice into the registry's ``purge_notices`` table in its own
transaction: the notice exists exactly when the change it announces committed, and survives any crash.
A notice is first due ``DELAY`` after the change: by then no host serves what it announces (hosts on a
bucket trust a reading of the registry for up to 0.5 s, ``pymager.adapters.s3``), so a CDN that purges
and fetches again gets the new answer. A deliverer in every server process posts due notices to
``[cdn] purge_url`` and removes each once the webhook accepted it, so every notice is delivered at least
once (a crash between the webhook's answer and the removal delivers it again: receivers dedupe on
``X-Pymager-Delivery``). Several processes and hosts may deliver: each attempt is leased
(compare-and-set on the attempt count), and a lease a crashed deliverer left expires after ``LEASE``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from pymager.config import Settings
from pymager.domain import DerivedSpec, ImageFormat, ImageId, PurgeNotice
from pymager.errors import PurgeFailed, ServiceUnavailable
from pymager.interfaces import IMetrics, IPurgeSender, IRegistry, IUnitOfWork

log = logging.getLogger(__name__)

# Longer than a delivery can take (the webhook's timeout), so that only a crashed deliverer's lease
# expires.
LEASE = timedelta(seconds=60)
# After the change, before the first attempt: longer than any host serves what the notice announces.
DELAY = 1.0
BATCH = 20
FIRST_RETRY = 2.0  # seconds before the second attempt; doubled after each failure
MAX_RETRY = 600.0
# How soon a process finds notices written by another process or host (its own wake it at once).
POLL = 5.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PurgeNotices:
    """Writes purge notices with the changes they announce, and delivers them."""

    def __init__(
        self,
        settings: Settings,
        registry: IRegistry,
        sender: IPurgeSender,
        metrics: IMetrics,
        clock: Callable[[], datetime] = _utcnow,
        first_retry: float = FIRST_RETRY,
        poll: float = POLL,
        delay: float = DELAY,
    ) -> None:
        self._base = settings.public_url.rstrip("/")
        self._registry = registry
        self._sender = sender
        self._metrics = metrics
        self._clock = clock
        self._first_retry = first_retry
        self._poll = poll
        self._delay = delay
        self._wake = threading.Event()

    def announce(
        self, uow: IUnitOfWork, image_id: ImageId, derived: Iterable[DerivedSpec], reason: str
    ) -> None:
        """Queue, in ``uow``'s transaction, a notice that ``image_id``'s responses are stale:
        ``reason`` is ``deleted`` (the original and every derived image) or ``purged`` (its derived
        images only); ``derived`` are the derived images it had."""
        now = self._clock()
        body = {
            "id": str(image_id),
            "reason": reason,
            "keys": [str(image_id)],  # its Surrogate-Key / Cache-Tag
            "urls": self.urls(image_id, derived, originals=reason == "deleted"),
            "at": now.isoformat(),
        }
        uow.outbox.add(
            image_id, json.dumps(body, separators=(",", ":")), now + timedelta(seconds=self._delay)
        )

    def urls(self, image_id: ImageId, derived: Iterable[DerivedSpec], originals: bool = True) -> list[str]:
        """Every URL a CDN may hold for these: the original's (when ``originals``) and each derived
        image's, under each extension it answers to, and its ``auto`` URL."""
        paths = [f"/original/{image_id}", f"/original/{image_id}/info"] if originals else []
        autos: list[str] = []
        for spec in derived:
            paths.append(f"/derived/{spec.key}")
            if spec.format is ImageFormat.JPEG:
                paths.append(f"/derived/{spec.key.removesuffix('.jpg')}.jpeg")
            auto = f"/derived/{image_id}-{spec.size}{spec.mode.suffix}.auto"
            if auto not in autos:
                autos.append(auto)
        return [self._base + path for path in paths + autos]

    def wake(self) -> None:
        """Deliver soon: a notice was just committed (due ``delay`` from now)."""
        self._wake.set()

    def deliver_soon(self) -> int:
        """Wait until notices just committed are due, then deliver what is (a tool's last act)."""
        time.sleep(self._delay)  # the propagation bound itself, not a guess at a state to poll for
        return self.deliver_due()

    def deliver_due(self) -> int:
        """Try every notice due now once; return how many were delivered."""
        delivered = 0
        with self._registry.unit_of_work() as uow:
            due = uow.outbox.due(self._clock(), BATCH)
        for notice in due:
            if self._lease(notice):
                delivered += self._attempt(dataclasses.replace(notice, attempts=notice.attempts + 1))
        return delivered

    def pending(self) -> int:
        with self._registry.unit_of_work() as uow:
            count: int = uow.outbox.pending()
            return count

    def run(self, stopping: threading.Event) -> None:
        """Deliver until ``stopping`` is set (the deliverer thread of a server process)."""
        while not stopping.is_set():
            self._wake.clear()
            try:
                while self.deliver_due() == BATCH:
                    pass
            except ServiceUnavailable as exc:  # the registry is down: its notices wait there
                log.warning("purge notices wait: %s", exc.detail)
            except Exception:  # never let the deliverer die; the notices stay in the outbox
                log.exception("delivering purge notices failed")
            if self._wake.wait(self._poll):
                stopping.wait(self._delay)  # what woke us is due then

    def stop(self, stopping: threading.Event) -> None:
        stopping.set()
        self._wake.set()

    def _lease(self, notice: PurgeNotice) -> bool:
        with self._registry.unit_of_work(write=True) as uow:
            taken: bool = uow.outbox.lease(notice, self._clock() + LEASE)
            uow.commit()
        return taken

    def _attempt(self, leased: PurgeNotice) -> int:
        """One delivery of ``leased`` (its ``attempts`` counting this one)."""
        try:
            self._sender.send(leased.number, leased.body.encode("utf-8"))
        except PurgeFailed as exc:
            self._metrics.purge_notice_sent(False)
            # 2, 4, 8 … s, at most MAX_RETRY (the exponent capped: a week of failures overflows a float)
            delay = min(self._first_retry * 2 ** min(leased.attempts - 1, 30), MAX_RETRY)
            log.warning(
                "purge notice %d for %s not delivered (attempt %d, next in %.0f s): %s",
                leased.number,
                leased.image_id,
                leased.attempts,
                delay,
                exc,
            )
            with self._registry.unit_of_work(write=True) as uow:
                uow.outbox.postpone(leased, self._clock() + timedelta(seconds=delay), str(exc))
                uow.commit()
            return 0
        self._metrics.purge_notice_sent(True)
        with self._registry.unit_of_work(write=True) as uow:
            uow.outbox.remove(leased.number)
            uow.commit()
        log.info("purge notice %d for %s delivered", leased.number, leased.image_id)
        return 1
