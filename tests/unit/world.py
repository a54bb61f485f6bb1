"""One world of fakes for the unit tests: the service and the consistency check over the same fake
registry, blob store and inventory."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from pymager.config import Settings
from pymager.domain import DerivedSpec, Upload
from pymager.outbox import PurgeNotices
from pymager.repair import Repairer
from pymager.service import ImageService
from tests.unit.fakes import (
    FakeBlobStore,
    FakeInventory,
    FakeLocks,
    FakeMetrics,
    FakeProcessor,
    FakePurgeSender,
    FakeRegistry,
    fake_image,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class World:
    """``now`` is the service's clock and ``checked_at`` the consistency check's; both start at
    ``NOW``. ``overrides`` are ``Settings`` fields; with ``purge_url`` among them, DELETEs and purges
    queue notices for ``sender``."""

    def __init__(self, **overrides: object) -> None:
        self.registry = FakeRegistry()
        self.blobs = FakeBlobStore()
        self.inventory = FakeInventory(self.blobs)
        self.processor = FakeProcessor()
        self.metrics = FakeMetrics()
        self.locks = FakeLocks()
        self.settings = Settings.for_directory(Path("/nonexistent"), **overrides)
        self.now = NOW
        self.checked_at = NOW
        self.sender = FakePurgeSender()
        self.notices = (
            PurgeNotices(self.settings, self.registry, self.sender, self.metrics, lambda: self.now)
            if self.settings.purge_url
            else None
        )
        self.service = ImageService(
            self.settings,
            self.registry,
            self.blobs,
            self.processor,
            self.locks,
            self.metrics,
            lambda: self.now,
            notices=self.notices,
        )
        self.repairer = Repairer(
            self.settings,
            self.registry,
            self.blobs,
            self.inventory,
            lambda: self.checked_at,
            rebuild_reduced=self.service.rebuild_reduced,
            notices=self.notices,
        )

    def upload(self, image_id: str, data: bytes | None = None, focus: str | None = None) -> None:
        """Upload ``data`` (by default a ``fake_image()``) as ``image_id``, with the ``focus`` field."""
        body = fake_image() if data is None else data
        self.service.save_original(image_id, lambda: Upload(io.BytesIO(body), focus))

    def leaves_nothing(self, image_id: str) -> bool:
        """Whether no row, file, temporary file or retired file of ``image_id`` is left."""
        return (
            image_id not in self.registry.tables.originals
            and not any(image_id in name for name in self.blobs.files)
            and not self.blobs.temporary
            and not self.blobs.retired
        )

    def problems(self, repair: bool = False) -> list[str]:
        """The problems the consistency check finds (and, with ``repair``, fixes)."""
        return [finding.problem for finding in self.repairer.run(repair)]

    def claim(self, segment: str, owner: str, at: datetime) -> DerivedSpec:
        """Claim the derived image ``segment`` for ``owner`` at ``at``, as a generation would."""
        spec = DerivedSpec.parse(segment)
        with self.registry.unit_of_work(write=True) as uow:
            assert uow.derived.claim(spec, owner, at)
            uow.commit()
        return spec
