"""Metrics with prometheus_client.

Each standalone process counts for itself. Under mod_wsgi with several daemon processes, set
``PROMETHEUS_MULTIPROC_DIR`` (an empty directory writable by the daemon user) before start: every process
then writes its samples there and any process's ``/metrics`` reports the sum over all of them. The
standalone server's ``[server] processes`` workers do the same in a directory their parent makes
(``pymager/cli/workers.py``).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from zope.interface import implementer

from pymager.interfaces import IMetrics

_GENERATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@implementer(IMetrics)
class PrometheusMetrics:
    def __init__(self) -> None:
        self._registry = CollectorRegistry()
        self._served = Counter(
            "pymager_derived_served",
            "Derived images served, by where the bytes came from",
            ["source"],
            registry=self._registry,
        )
        self._served_by_source: dict[str, Counter] = {}
        self._generated = Counter(
            "pymager_derived_generated", "Derived images generated", registry=self._registry
        )
        self._coalesced = Counter(
            "pymager_derived_coalesced",
            "Requests that waited on another request's generation instead of generating",
            registry=self._registry,
        )
        self._uploads = Counter(
            "pymager_uploads", "Upload requests, by HTTP status", ["status"], registry=self._registry
        )
        self._purges = Counter(
            "pymager_purge_notices",
            "Delivery attempts of CDN purge notices, by outcome",
            ["outcome"],
            registry=self._registry,
        )
        self._duration = Histogram(
            "pymager_derived_generation_seconds",
            "Time to generate one derived image",
            buckets=_GENERATION_BUCKETS,
            registry=self._registry,
        )
        self._exposed = self._registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self._exposed = CollectorRegistry()
            MultiProcessCollector(self._exposed)  # type: ignore[no-untyped-call]

    def derived_served(self, source: str) -> None:
        # labels() builds a key and takes a lock on every call: each child is looked up once.
        child = self._served_by_source.get(source)
        if child is None:
            child = self._served_by_source[source] = self._served.labels(source=source)
        child.inc()

    def derived_generated(self, seconds: float) -> None:
        self._generated.inc()
        self._duration.observe(seconds)

    def derived_coalesced(self) -> None:
        self._coalesced.inc()

    def upload_finished(self, status: int) -> None:
        self._uploads.labels(status=str(status)).inc()

    def purge_notice_sent(self, delivered: bool) -> None:
        self._purges.labels(outcome="delivered" if delivered else "failed").inc()

    def exposition(self) -> tuple[str, bytes]:
        return CONTENT_TYPE_LATEST, generate_latest(self._exposed)
