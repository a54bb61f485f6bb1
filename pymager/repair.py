"""The consistency check: what crashes can leave behind, found and (on request) repaired.

Every write in pymager is ordered so that a crash leaves one of the states below, never a row that a
reader would trust wrongly; this module finds them by comparing the registry with the data directory.
Files younger than ``generation_timeout`` are left alone: they may belong to work still in progress.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymager.config import Settings
from pymager.domain import DerivedSpec, DerivedStatus, ImageId, OriginalStatus
from pymager.interfaces import IBlobStore, IRegistry
from pymager.owners import owner_is_dead

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    """One inconsistency, and what repairing it does."""

    problem: str
    subject: str
    remedy: str

    def __str__(self) -> str:
        return f"{self.problem}: {self.subject} -> {self.remedy}"


class Repairer:
    def __init__(
        self,
        settings: Settings,
        registry: IRegistry,
        blobs: IBlobStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._blobs = blobs
        self._clock = clock

    def run(self, repair: bool) -> list[Finding]:
        """Return every inconsistency found; with ``repair``, fix each as its ``remedy`` says."""
        now = self._clock()
        grace = now - timedelta(seconds=self._settings.generation_timeout)
        with self._registry.unit_of_work() as uow:
            originals = {record.original.image_id: record for record in uow.originals.list_all()}
            derived = {record.spec: record for record in uow.derived.list_all()}
        original_files = dict(self._blobs.list_originals())
        derived_files = dict(self._blobs.list_derived())
        findings: list[Finding] = []

        def found(problem: str, subject: str, remedy: str, fix: Callable[[], None]) -> None:
            findings.append(Finding(problem, subject, remedy))
            if repair:
                fix()
                log.info("repaired %s: %s", problem, subject)

        deleted: set[ImageId] = set()  # their derived rows and files go with them
        for image_id, record in originals.items():
            if record.status is OriginalStatus.DELETING:
                found("unfinished delete", image_id, "remove its files and rows", self._deleter(image_id))
                deleted.add(image_id)
            elif image_id not in original_files:
                remedy = "remove its rows and derived files"
                found("original row without its file", image_id, remedy, self._deleter(image_id))
                deleted.add(image_id)

        for image_id, modified in original_files.items():
            if image_id not in originals and modified < grace:
                path = self._blobs.original_path(image_id)
                found("original file without a row", path, "remove the file", self._remover(path))

        for spec, record in derived.items():
            if spec.image_id in deleted:
                continue
            if record.status is DerivedStatus.READY and spec not in derived_files:
                found("derived row without its file", spec.key, "remove the row", self._derived_remover(spec))
            elif record.status is DerivedStatus.PENDING and (
                record.claimed_at < grace or owner_is_dead(record.owner)
            ):
                remedy = "remove the claim and any file it left"
                found(f"stale claim by {record.owner}", spec.key, remedy, self._derived_remover(spec))

        for spec, modified in derived_files.items():
            if spec.image_id in deleted:
                continue
            orphan = spec.image_id not in originals or spec not in derived
            if orphan and modified < grace:
                path = self._blobs.derived_path(spec)
                found("derived file without a row", path, "remove the file", self._remover(path))

        for path, modified, owner in self._blobs.list_temporary():
            if modified < grace or (owner and owner_is_dead(owner)):
                found("temporary file", path, "remove it", self._remover(path))
        return findings

    def _deleter(self, image_id: ImageId) -> Callable[[], None]:
        def delete() -> None:
            self._blobs.delete_image(image_id)
            with self._registry.unit_of_work(write=True) as uow:
                uow.originals.remove(image_id)
                uow.commit()

        return delete

    def _remover(self, path: str) -> Callable[[], None]:
        return lambda: self._blobs.remove(path)

    def _derived_remover(self, spec: DerivedSpec) -> Callable[[], None]:
        def remove() -> None:
            self._blobs.remove(self._blobs.derived_path(spec))
            with self._registry.unit_of_work(write=True) as uow:
                uow.derived.remove(spec)
                uow.commit()

        return remove
