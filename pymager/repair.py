"""The consistency check: what crashes can leave behind, found and (on request) repaired.

Every write in pymager is ordered so that a crash leaves one of the states below, never a row that a
reader would trust wrongly; this module finds them by comparing the registry with what the blob
store's inventory lists.

It is safe beside running servers. Findings come from a snapshot, and the world may move on before a
finding is fixed (a DELETE completes and the id is uploaded again; a crashed upload is retried), so
every fix checks its finding again, under the row lock that the service's own writes take, and does
nothing if anything changed. Work in progress is left alone: files younger than
``generation_timeout``, and claims and temporary files of a live process of this host whatever their age.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymager.config import Settings
from pymager.domain import (
    DerivedRecord,
    DerivedSpec,
    DerivedStatus,
    ImageId,
    Original,
    OriginalRecord,
    OriginalStatus,
)
from pymager.errors import ImageNotFound, PymagerError
from pymager.interfaces import IBlobInventory, IBlobStore, IRegistry, Leftover
from pymager.outbox import PurgeNotices
from pymager.owners import owner_alive

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    """One inconsistency, and what repairing it does."""

    problem: str
    subject: str
    remedy: str
    # False: a fact to know, not damage (originals not yet backfilled); --repair leaves it alone.
    damage: bool = True

    def __str__(self) -> str:
        return f"{self.problem}: {self.subject} -> {self.remedy}"


class Repairer:
    def __init__(
        self,
        settings: Settings,
        registry: IRegistry,
        blobs: IBlobStore,
        inventory: IBlobInventory,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rebuild_reduced: Callable[[Original], None] | None = None,
        notices: PurgeNotices | None = None,
    ) -> None:
        """``rebuild_reduced`` makes an original's reduced copies again (``ImageService.rebuild_reduced``);
        without it a missing copy is reported, and derivations keep reading the original. ``notices``
        tell the CDN of purged derived images and of originals whose delete a repair finishes."""
        self._settings = settings
        self._registry = registry
        self._blobs = blobs
        self._inventory = inventory
        self._clock = clock
        self._rebuild_reduced = rebuild_reduced
        self._notices = notices

    def purge_derived(self, image_ids: Collection[ImageId] | None = None) -> list[DerivedSpec]:
        """Remove the published derived images of ``image_ids`` (of every original when ``None``) and
        their rows, so that the next request makes them again with the current pipeline; return what was
        removed. Safe beside running servers: each original's are removed under its row lock, which
        generations publish under, and only while their rows are ready (a generation in progress fails
        its publication, named for the epoch before, and the next request makes it). Each purge counts
        one more ``derived_epoch``, which renames the original's derived objects in a bucket, so that no
        host's cache serves a purged image, and queues a CDN purge notice, both in the same transaction.
        A crash half-way leaves a ready row without its file, which a request makes again (and
        ``--repair`` removes)."""
        with self._registry.unit_of_work() as uow:
            having = sorted(
                {
                    record.spec.image_id
                    for record in uow.derived.list_all()
                    if record.status is DerivedStatus.READY
                    and (image_ids is None or record.spec.image_id in image_ids)
                }
            )
        purged: list[DerivedSpec] = []
        for image_id in having:
            with self._registry.unit_of_work(write=True) as uow:
                original = uow.originals.lock(image_id)
                if original is None or original.status is not OriginalStatus.READY:
                    continue
                ready = [record.spec for record in uow.derived.list_ready(image_id)]
                for spec in ready:
                    self._inventory.remove_derived(spec)
                    uow.derived.remove(spec)
                uow.originals.renew_derived(image_id)
                if self._notices is not None and ready:
                    self._notices.announce(uow, image_id, ready, "purged")
                uow.commit()
            for spec in ready:
                log.info("purged %s", spec.key)
            purged.extend(ready)
        return purged

    def run(self, repair: bool) -> list[Finding]:
        """Return every inconsistency found; with ``repair``, fix each as its ``remedy`` says."""
        grace = self._clock() - timedelta(seconds=self._settings.generation_timeout)
        with self._registry.unit_of_work() as uow:
            originals = {record.original.image_id: record for record in uow.originals.list_all()}
            derived = {record.spec: record for record in uow.derived.list_all()}
        original_files = dict(self._inventory.list_originals())
        derived_files = dict(self._inventory.list_derived())
        findings: list[Finding] = []

        def found(problem: str, subject: str, remedy: str, fix: Callable[[], None]) -> None:
            findings.append(Finding(problem, subject, remedy))
            if repair:
                fix()
                log.info("repaired %s: %s", problem, subject)

        deleted: set[ImageId] = set()  # their derived rows and files go with them
        for image_id, record in originals.items():
            if record.status is OriginalStatus.DELETING:
                found("unfinished delete", image_id, "remove its files and rows", self._deleter(record))
                deleted.add(image_id)
            elif image_id not in original_files:
                remedy = "remove its rows and derived files"
                found("original row without its file", image_id, remedy, self._deleter(record))
                deleted.add(image_id)

        for image_id, modified in original_files.items():
            if image_id not in originals and modified < grace:
                remover = self._orphan(image_id, None, modified)
                found("original file without a row", image_id, "remove the file", remover)

        for spec, claim in derived.items():
            if spec.image_id in deleted:
                continue
            if claim.status is DerivedStatus.READY and spec not in derived_files:
                found(
                    "derived row without its file", spec.key, "remove the row", self._derived_remover(claim)
                )
            elif claim.status is DerivedStatus.PENDING and _abandoned(claim.owner, claim.claimed_at, grace):
                remedy = "remove the claim and any file it left"
                found(f"stale claim by {claim.owner}", spec.key, remedy, self._derived_remover(claim))

        for spec, modified in derived_files.items():
            if spec.image_id in deleted or (spec.image_id in originals and spec in derived):
                continue
            if modified < grace:
                remover = self._orphan(spec.image_id, spec, modified)
                found("derived file without a row", spec.key, "remove the file", remover)

        self._check_reduced(originals, deleted, grace, found)
        for leftover in self._inventory.list_leftovers():
            if _abandoned(leftover.owner, leftover.modified, grace):
                remover = self._leftover(leftover)
                found("leftover temporary file or directory", leftover.name, "remove it", remover)
        not_backfilled = sum(
            1
            for image_id, record in originals.items()
            if image_id not in deleted and record.original.reduced is None
        )
        if not_backfilled and self._settings.reduced_copy:
            remedy = (
                "pymager backfill makes their reduced copies (derived images read the originals until then)"
            )
            findings.append(
                Finding("not yet backfilled", f"{not_backfilled} original(s)", remedy, damage=False)
            )
        return findings

    def _check_reduced(
        self,
        originals: dict[ImageId, OriginalRecord],
        deleted: set[ImageId],
        grace: datetime,
        found: Callable[[str, str, str, Callable[[], None]], None],
    ) -> None:
        """Reduced copies recorded but missing (rebuilt from the original), and copies on disk that no
        ready original records (removed)."""
        listed = self._inventory.list_reduced()
        on_disk = {(image_id, side) for image_id, side, _ in listed}
        for image_id, record in originals.items():
            if image_id in deleted or record.status is not OriginalStatus.READY:
                continue
            missing = [side for side in record.original.reduced or () if (image_id, side) not in on_disk]
            if missing:
                subject = f"{image_id} ({', '.join(f'{side} px' for side in missing)})"
                found(
                    "reduced copy missing",
                    subject,
                    "make it again from the original",
                    self._rebuilder(record),
                )
        for image_id, side, modified in listed:
            owner = originals.get(image_id)
            if image_id in deleted or modified >= grace:
                continue
            if owner is None or side not in (owner.original.reduced or ()):
                remover = self._reduced_orphan(image_id, side, modified)
                found("reduced copy without its original", f"{image_id} ({side} px)", "remove it", remover)

    def _rebuilder(self, seen: OriginalRecord) -> Callable[[], None]:
        def rebuild() -> None:
            if self._rebuild_reduced is None:
                log.warning("cannot rebuild the reduced copies of %s here", seen.original.image_id)
                return
            try:
                self._rebuild_reduced(seen.original)  # checks under the row lock it is still this one
            except ImageNotFound:
                return  # deleted or replaced since the snapshot
            except PymagerError as exc:
                log.error("rebuilding the reduced copies of %s failed: %s", seen.original.image_id, exc)

        return rebuild

    def _reduced_orphan(self, image_id: ImageId, side: int, listed: datetime) -> Callable[[], None]:
        """Remove a copy no original records, if still none does: uploads publish theirs under the
        original's row lock."""

        def remove() -> None:
            with self._registry.unit_of_work(write=True) as uow:
                current = uow.originals.lock(image_id)
                if current is not None and side in (current.original.reduced or ()):
                    return
                self._inventory.remove_reduced(image_id, side, listed)
                uow.commit()

        return remove

    def _deleter(self, seen: OriginalRecord) -> Callable[[], None]:
        """Finish deleting an original, if its row is still the one seen (not a re-upload since)."""
        image_id = seen.original.image_id

        def delete() -> None:
            with self._registry.unit_of_work(write=True) as uow:
                current = uow.originals.lock(image_id)
                if current != seen:
                    return
                if current.status is OriginalStatus.READY and self._blobs.has_original(image_id):
                    return  # the file is back (it was being replaced when the snapshot was taken)
                uow.originals.set_status(image_id, OriginalStatus.DELETING, self._clock())
                if self._notices is not None and current.status is OriginalStatus.READY:
                    # a CDN may hold what it served: as a DELETE would, tell it
                    derived = [record.spec for record in uow.derived.list_ready(image_id)]
                    self._notices.announce(uow, image_id, derived, "deleted")
                retired = self._blobs.retire_derived(image_id)
                uow.commit()
            if retired is not None:
                retired.remove()
            self._blobs.delete_image(image_id)
            with self._registry.unit_of_work(write=True) as uow:
                uow.originals.remove(image_id)
                uow.commit()

        return delete

    def _orphan(self, image_id: ImageId, spec: DerivedSpec | None, listed: datetime) -> Callable[[], None]:
        """Remove an original (``spec`` None) or derived file that has no row, if it still has none and
        was not replaced since it was listed. The original's row lock is what uploads and generations
        publish under, so none can publish that file meanwhile."""

        def remove() -> None:
            with self._registry.unit_of_work(write=True) as uow:
                original = uow.originals.lock(image_id)
                if spec is None:
                    if original is not None:
                        return
                    self._inventory.remove_original(image_id, listed)
                else:
                    if original is not None and uow.derived.get(spec) is not None:
                        return
                    self._inventory.remove_derived(spec, listed)
                uow.commit()

        return remove

    def _derived_remover(self, seen: DerivedRecord) -> Callable[[], None]:
        """Remove a derived row (and its file), if it is still the claim or ready row seen."""
        spec = seen.spec

        def remove() -> None:
            with self._registry.unit_of_work(write=True) as uow:
                uow.originals.lock(spec.image_id)  # what generations publish under
                if uow.derived.get(spec) != seen:
                    return
                if seen.status is DerivedStatus.READY and self._blobs.has_derived(spec):
                    return
                self._inventory.remove_derived(spec)
                uow.derived.remove(spec)
                uow.commit()

        return remove

    def _leftover(self, leftover: Leftover) -> Callable[[], None]:
        return lambda: self._inventory.remove_leftover(leftover)


def _abandoned(owner: str, since: datetime, grace: datetime) -> bool:
    """Whether work by ``owner`` since ``since`` is abandoned: its process on this host is gone, or (an
    owner elsewhere or unknown) it is older than the grace period. A live local process keeps it."""
    alive = owner_alive(owner) if owner else None
    return alive is False or (alive is None and since < grace)
