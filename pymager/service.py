"""ImageService: the operations of pymager over its ports (registry, blob store, image processor).

Consistency protocol (see README, "Design"):
- Upload: stream to a staged file, decode it completely, then in ONE writer transaction insert the row
  (``ON CONFLICT DO NOTHING``: exactly one concurrent upload of an id wins) and publish the file before
  committing. Bad input never creates a row or leaves a file.
- Delete: mark the row ``DELETING`` (readers see 404, re-uploads 409), remove the files, delete the
  rows. A crash in between leaves a ``DELETING`` row that a retried DELETE (or the repair) completes.
- Reduced copies: made by the upload check's decode, staged beside the original and published in the
  same transaction, before the original (both or neither); removed with it. Originals stored before
  them get theirs from ``backfill``, under the row lock as publications are.
- Derive: a published derived image is served without touching the registry. On a miss, one thread
  per process leads (single flight) and takes the image's cross-process lock (or blocks on it while
  another process generates); under the lock it claims the derived row, renders to a staged file and
  publishes it while holding the original's row lock, so a concurrent delete can never leave a derived
  file of a deleted or replaced original.
- Storage: a full or failing data directory (``StorageFull``, ``StorageFailed``, raised by the blob
  store) fails the request like any other failure above: nothing is published or recorded, a failed
  generation releases its claim, a failed delete keeps its ``DELETING`` row. Uploads keep
  ``min_free_bytes`` free, generations a quarter of it (``GENERATION_RESERVE_SHARE``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import BinaryIO

from zope.interface import implementer

from pymager.config import Settings
from pymager.domain import (
    CENTRE,
    STILL_OPAQUE,
    DerivedSpec,
    DerivedStatus,
    Focus,
    ImageId,
    ImageInfo,
    Original,
    OriginalDescription,
    OriginalRecord,
    OriginalsPage,
    OriginalStatus,
    Rendition,
    Size,
    StoredFile,
    Traits,
    Upload,
    choose_format,
    parse_derived,
)
from pymager.errors import (
    ImageAlreadyExists,
    ImageNotFound,
    InvalidListing,
    PymagerError,
    ServiceUnavailable,
    SizeNotAllowed,
    StorageFull,
    UploadTooLarge,
)
from pymager.interfaces import (
    IBlobStore,
    IGenerationLocks,
    IImageProcessor,
    IImageService,
    IMetrics,
    IRegistry,
    IStagedFile,
)
from pymager.outbox import PurgeNotices
from pymager.owners import new_owner
from pymager.reduced import choose_copy
from pymager.signing import SignedPath, UrlSigner
from pymager.singleflight import FlightTimeout, SingleFlight

log = logging.getLogger(__name__)

# How long a generation is taken to hold its slot until this process has timed one (a 24 MP photo to
# 200x200 held one for about 0.2 s in `make bench`), and the weight of each new time in the average.
FIRST_SLOT_SECONDS = 0.25
SLOT_SECONDS_WEIGHT = 0.2

_COPY_CHUNK = 1 << 20
# Generation keeps this share of min_free_bytes free: past the upload reserve a host still makes new
# sizes of what it holds (derived images are small beside originals), and the last of the space stays
# for the registry (SQLite lives in the data directory by default) and for deletes, which free space.
GENERATION_RESERVE_SHARE = 0.25


# The listing's page size: by default, and at most.
DEFAULT_PAGE = 100
MAX_PAGE = 1000


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class BackfillReport:
    """What ``ImageService.backfill`` did: the originals it gave their reduced copies and facts, those
    gone meanwhile (deleted or replaced), and those that failed, with why (each failure is logged)."""

    backfilled: int = 0
    gone: int = 0
    failed: dict[ImageId, str] = field(default_factory=dict)


def _same_upload(current: Original, seen: Original) -> bool:
    """Whether ``current`` is the upload ``seen`` was read from: another request may have recorded its
    facts meanwhile (two first ``info`` requests at once), which changes the row but not the upload."""
    return (current.checksum, current.created) == (seen.checksum, seen.created)


def _with_facts(original: Original, info: ImageInfo) -> Original:
    """``original`` with what ``identify`` found of it besides its format, size and focus."""
    upright = info.upright or Size(info.width, info.height)
    return replace(original, traits=info.traits, upright=upright, placeholder=info.placeholder)


@implementer(IImageService)
class ImageService:
    def __init__(
        self,
        settings: Settings,
        registry: IRegistry,
        blobs: IBlobStore,
        processor: IImageProcessor,
        locks: IGenerationLocks,
        metrics: IMetrics,
        clock: Callable[[], datetime] = _utcnow,
        notices: PurgeNotices | None = None,
    ) -> None:
        self._settings = settings
        self._notices = notices  # None: no CDN is told of deletes
        self._sizes = settings.size_policy
        self._registry = registry
        self._blobs = blobs
        self._processor = processor
        self._locks = locks
        self._metrics = metrics
        self._slots = threading.BoundedSemaphore(settings.max_concurrent_generations)
        self._cold = threading.BoundedSemaphore(settings.cold_request_cap)
        # How long a generation holds its slot (a moving average), and until when the cold requests
        # refused so far have been told to stay away: what the Retry-After of the next one is made of.
        self._slot_seconds = FIRST_SLOT_SECONDS
        self._refused_until = 0.0
        self._refusing = threading.Lock()
        self._clock = clock
        self._flights: SingleFlight[bool] = SingleFlight()
        self._generation_reserve = int(settings.min_free_bytes * GENERATION_RESERVE_SHARE)
        self._signer = UrlSigner(settings.url_keys) if settings.url_keys else None

    # -- originals -------------------------------------------------------------------------------

    def save_original(
        self, image_id: str, open_upload: Callable[[], Upload], declared_bytes: int | None = None
    ) -> Original:
        valid_id = ImageId(image_id)
        with self._registry.unit_of_work() as uow:
            if uow.originals.get(valid_id) is not None:
                raise ImageAlreadyExists(valid_id)
        # Above max_upload_bytes a declared length (which counts the multipart envelope too) may be a
        # 413, which wins over a 507: then the copy decides.
        if declared_bytes is not None and declared_bytes <= self._settings.max_upload_bytes:
            self._keep_reserve(declared_bytes, self._settings.min_free_bytes, "this upload")
        upload = open_upload()
        requested_focus = Focus.parse(upload.focus) if upload.focus is not None else None
        staged = self._blobs.stage_original(valid_id)
        with ExitStack() as cleanup:
            cleanup.callback(staged.discard)
            size, checksum = self._copy_limited(upload.file, staged.file)
            copies = self._stage_reduced(valid_id, cleanup)
            with staged.open_for_reading() as written:
                info = self._processor.identify(written, {side: copy.file for side, copy in copies.items()})
            focus = requested_focus or info.focus or CENTRE
            original = Original(
                valid_id,
                info.format,
                info.width,
                info.height,
                size,
                checksum,
                self._clock(),
                focus,
            )
            original = _with_facts(original, info)
            if self._settings.reduced_copy:
                original = replace(original, reduced=info.reduced)
            with self._registry.unit_of_work(write=True) as uow:
                if not uow.originals.add(original):
                    raise ImageAlreadyExists(valid_id)
                # The copies first: a failure half-way leaves files without a row (removed by the
                # repair), never an original recorded without its copies.
                for side in info.reduced:
                    copies[side].publish()
                staged.publish()
                uow.commit()
        log.info(
            "stored original %s (%s %dx%d, %d bytes)",
            valid_id,
            info.format.value,
            info.width,
            info.height,
            size,
        )
        return original

    def original_file(self, image_id: str) -> StoredFile:
        valid_id = ImageId(image_id)
        record = self._ready_original(valid_id)
        original = record.original
        stored = self._blobs.open_original(valid_id, original.format)
        if stored is None:
            log.error("registry lists original %s but its file is missing", valid_id)
            raise ImageNotFound(valid_id)
        return replace(stored, etag=f'"{original.checksum}"', original_id=valid_id)

    def delete_original(self, image_id: str) -> None:
        valid_id = ImageId(image_id)
        with self._registry.unit_of_work(write=True) as uow:
            record = uow.originals.lock(valid_id)
            if record is None:
                raise ImageNotFound(valid_id)
            # A DELETING row is a delete that crashed half-way (or runs concurrently): finish it.
            uow.originals.set_status(valid_id, OriginalStatus.DELETING, self._clock())
            if self._notices is not None:  # committed with the DELETING mark, or not at all
                derived = [derived.spec for derived in uow.derived.list_ready(valid_id)]
                self._notices.announce(uow, valid_id, derived, "deleted")
            # Before the commit, under the row lock: a crash after this leaves either a ready original
            # without derived files (made again on request) or a deleting one with none to serve.
            retired = self._blobs.retire_derived(valid_id)
            uow.commit()
        if retired is not None:
            retired.remove()
        with self._registry.unit_of_work(write=True) as uow:
            current = uow.originals.lock(valid_id)
            # Only the original this DELETE marked: a concurrent DELETE may have finished it meanwhile
            # and the id been uploaded again, and that new original is not this request's to remove.
            if current is not None and current.original == record.original:
                self._blobs.delete_image(valid_id)
                uow.originals.remove(valid_id)
                uow.commit()
        if self._notices is not None:
            self._notices.wake()
        log.info("deleted original %s and its derived images", valid_id)

    # -- derived ---------------------------------------------------------------------------------

    def derived_file(
        self, segment: str, signed: SignedPath | None = None, accepted: frozenset[str] = frozenset()
    ) -> StoredFile:
        request = parse_derived(segment)
        if isinstance(request, DerivedSpec):
            return replace(self._derived_file(request, signed), original_id=request.image_id)
        spec = request.resolve(choose_format(accepted, self._traits(request.image_id, signed)))
        return replace(self._derived_file(spec, signed), negotiated=spec, original_id=spec.image_id)

    def _traits(self, image_id: ImageId, signed: SignedPath | None) -> Traits:
        """The traits an ``auto`` URL of ``image_id`` chooses from: as published beside its derived
        images (no registry), else from the registry, then published for the next request and the
        front servers."""
        published = self._blobs.published_traits(image_id)
        if published is not None:
            return published
        try:
            seen = self._ready_original(image_id).original
        except ImageNotFound:
            if self._signer is not None:
                self._signer.verify(signed)  # a miss without a signature learns nothing, not even this
            raise
        return self._described(seen, publish_traits=True).traits or STILL_OPAQUE

    def _described(self, seen: Original, publish_traits: bool = False, reduce: bool = False) -> Original:
        """``seen`` with every fact ``identify`` finds: an original stored before pymager recorded them
        is decoded once and they are recorded. With ``publish_traits``, its traits are published too;
        with ``reduce``, it is decoded in any case and its reduced copies are made and published. All
        under the row lock, and only for the original seen: never a deleted one's facts or copies for
        its replacement."""
        with ExitStack() as cleanup:
            copies = self._stage_reduced(seen.image_id, cleanup) if reduce else {}
            info = None if seen.described and not reduce else self._identify_stored(seen, copies)
            if info is None and not publish_traits:
                return seen
            with self._registry.unit_of_work(write=True) as uow:
                current = uow.originals.lock(seen.image_id)
                if current is None or current.status is not OriginalStatus.READY:
                    raise ImageNotFound(seen.image_id)
                if not _same_upload(current.original, seen):
                    raise ImageNotFound(seen.image_id)  # deleted and uploaded again meanwhile
                described = seen
                if info is not None:
                    uow.originals.set_facts(seen.image_id, info)
                    described = _with_facts(seen, info)
                if reduce and self._settings.reduced_copy and info is not None:
                    for side in info.reduced:
                        copies[side].publish()
                    uow.originals.set_reduced(seen.image_id, info.reduced)
                    described = replace(described, reduced=info.reduced)
                if publish_traits and described.traits is not None:
                    self._blobs.publish_traits(seen.image_id, described.traits)
                uow.commit()
            return described

    def _identify_stored(self, original: Original, copies: dict[int, IStagedFile] | None = None) -> ImageInfo:
        stored = self._blobs.open_original(original.image_id, original.format)
        if stored is None:
            raise ImageNotFound(original.image_id)
        with stored.file:
            return self._processor.identify(
                stored.file, {side: copy.file for side, copy in (copies or {}).items()}
            )

    def _stage_reduced(self, image_id: ImageId, cleanup: ExitStack) -> dict[int, IStagedFile]:
        """A staged file for each reduced copy the settings ask for, discarded when ``cleanup`` ends
        (a no-op for those published)."""
        copies = {}
        for side in self._settings.reduced_sides:
            copies[side] = self._blobs.stage_reduced(image_id, side)
            cleanup.callback(copies[side].discard)
        return copies

    # -- reduced copies --------------------------------------------------------------------------

    def backfill(self, progress: Callable[[int, int], None] | None = None) -> BackfillReport:
        """Give every ready original stored before pymager made reduced copies (or recorded its facts:
        traits, upright size, ThumbHash) its copies and facts, one original at a time, each under its
        row lock as uploads publish (safe beside running servers). Resumable: what is done is skipped.
        ``progress(done, total)`` is called before the first and after each original."""
        with self._registry.unit_of_work() as uow:
            pending = [
                record.original
                for record in uow.originals.list_all()
                if record.status is OriginalStatus.READY and self._lacks_anything(record.original)
            ]
        report = BackfillReport()
        if progress is not None:
            progress(0, len(pending))
        for done, seen in enumerate(pending, start=1):
            try:
                self._described(seen, reduce=self._settings.reduced_copy)
                report.backfilled += 1
            except ImageNotFound:
                report.gone += 1  # deleted or replaced since it was listed: its successor has its own
            except PymagerError as exc:
                log.error("backfilling %s failed: %s", seen.image_id, exc)
                report.failed[seen.image_id] = str(exc)
            if progress is not None:
                progress(done, len(pending))
        return report

    def rebuild_reduced(self, seen: Original) -> None:
        """Make the reduced copies of ``seen`` again from it (the repair of a missing one); raise
        ``ImageNotFound`` if it is no longer the ready original of its id."""
        self._described(seen, reduce=True)

    def _lacks_anything(self, original: Original) -> bool:
        return not original.described or (self._settings.reduced_copy and original.reduced is None)

    def original_info(self, image_id: str) -> OriginalDescription:
        valid_id = ImageId(image_id)
        original = self._described(self._ready_original(valid_id).original)
        with self._registry.unit_of_work() as uow:
            derived = uow.derived.list_ready(valid_id)
        return OriginalDescription(original, tuple(derived))

    def list_originals(self, after: str | None = None, limit: int = DEFAULT_PAGE) -> OriginalsPage:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidListing(f"limit is a whole number from 1 to {MAX_PAGE}, got {limit}")
        start = None if after is None else ImageId(after)
        with self._registry.unit_of_work() as uow:
            records = uow.originals.list_page(start, limit + 1)
        originals = tuple(record.original for record in records[:limit])
        return OriginalsPage(originals, originals[-1].image_id if len(records) > limit else None)

    def _derived_file(self, spec: DerivedSpec, signed: SignedPath | None) -> StoredFile:
        if self._signer is None:
            self._check_size(spec)
        stored = self._blobs.open_derived(spec)
        if stored is not None:  # the hot path: no registry, no lock
            self._metrics.derived_served("disk")
            return stored
        if self._signer is not None:
            # Signing guards generation, not reading: a stored file is public (the front server sends
            # it unasked), so only a miss is checked, and before its size or its original are looked at.
            self._signer.verify(signed)
            self._check_size(spec)
        try:
            generated, shared = self._flights.run(
                spec.key, lambda: self._produce(spec), self._settings.wait_timeout
            )
        except FlightTimeout:
            self._metrics.derived_coalesced()
            raise self._still_generating(spec) from None
        generated_here = generated and not shared
        if shared:
            self._metrics.derived_coalesced()
        stored = self._blobs.open_derived(spec)
        if stored is None:  # deleted between generation and now
            raise ImageNotFound(spec.image_id)
        self._metrics.derived_served("generated" if generated_here else "disk")
        return stored

    def _check_size(self, spec: DerivedSpec) -> None:
        if not self._sizes.allows(spec.size, spec.mode):
            raise SizeNotAllowed(f"size {spec.size}{spec.mode.suffix} is not allowed on this server")

    def _produce(self, spec: DerivedSpec) -> bool:
        """Lead the making of ``spec`` (``_lead``) if this process leads fewer than its cap of cold
        requests (``max_waiting_generations``); otherwise 503 at once. A cold request holds a server
        thread while it generates or waits, and cache hits and /health need those threads: beyond the
        cap, waiting would only hold one longer. Followers of a flight never get here, so they are not
        counted: they cost no CPU and all finish with their leader, so the many viewers of one new
        image are coalesced, not refused."""
        if not self._cold.acquire(blocking=False):
            raise ServiceUnavailable(
                f"{self._settings.cold_request_cap} cold requests are in progress already; retry shortly",
                retry_after=self._cold_retry_after(),
            )
        try:
            return self._lead(spec)
        finally:
            self._cold.release()

    def _cold_retry_after(self) -> int:
        """When a refused cold request should come back: once the admitted ones are done, and after
        every request refused before it, each counted as a slot's share of a generation. Refused
        requests so come back in turn, about as fast as generations make room, rather than all at once:
        a wave of refusals is what cache hits would wait behind (measured: benchmarks/README.md). Never
        later than ``wait_timeout``, what a request would have waited, however many are refused."""
        per_request = self._slot_seconds / self._settings.max_concurrent_generations
        with self._refusing:
            now = time.monotonic()
            after_admitted = now + self._settings.cold_request_cap * per_request
            latest = now + self._settings.wait_timeout
            self._refused_until = min(max(self._refused_until, after_admitted) + per_request, latest)
            return max(1, math.ceil(self._refused_until - now))

    def _lead(self, spec: DerivedSpec) -> bool:
        """Make sure the derived image is published: generate it under its cross-process lock, or
        block on that lock while another process generates it. Return whether this process generated
        it."""
        deadline = time.monotonic() + self._settings.wait_timeout
        waited = False
        while True:
            lock = self._locks.try_acquire(spec)
            if lock is not None:
                try:
                    if self._blobs.has_derived(spec):  # finished by another process since our miss
                        return False
                    self._generate(spec, deadline)
                    return True
                finally:
                    lock.release()
            if not waited:
                self._metrics.derived_coalesced()  # waiting on another process's generation
            waited = True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._locks.wait(spec, remaining):
                raise self._still_generating(spec)
            if self._blobs.has_derived(spec):
                return False
            # Released without an image: that generation failed or its process died. Try ourselves.

    def _generate(self, spec: DerivedSpec, deadline: float) -> None:
        """Generate ``spec`` while holding its lock: claim and render it in one of this process's
        generation slots, then publish it. The claim is made in the slot: claims made ahead of it
        competed with renders and hits for the GIL, and hits under a cold flood waited longer
        (benchmarks/README.md). The slot is given back once the image is rendered: publishing (registry
        writes, fsyncs) leaves the CPU to the next generation. A failure after the claim releases it."""
        owner = new_owner()
        # Before the claim: a generation refused for room leaves no row.
        self._keep_reserve(0, self._generation_reserve, f"generating {spec.key}")
        with self._generation_slot(deadline):
            original = self._claim(spec, owner)
            try:
                started = time.perf_counter()
                staged, produced = self._render(spec, original)
            except BaseException:
                self._release(spec, owner)
                raise
        try:
            self._publish(spec, original, owner, staged, produced)
        except BaseException:
            self._release(spec, owner)
            raise
        finally:
            staged.discard()
        elapsed = time.perf_counter() - started
        self._metrics.derived_generated(elapsed)
        log.info("generated %s in %.0f ms", spec.key, elapsed * 1000)

    def _claim(self, spec: DerivedSpec, owner: str) -> Original:
        """Record in the registry that ``owner`` generates ``spec``. Called with the key's lock held,
        so no live process is generating it: a pending claim found here is a dead process's, and a
        ready row is one whose file went missing; either is taken over (compare-and-set on owner)."""
        now = self._clock()
        with self._registry.unit_of_work(write=True) as uow:
            # Locked, so a DELETE cannot remove the row between this check and the claim's insert.
            record = uow.originals.lock(spec.image_id)
            if record is None or record.status is not OriginalStatus.READY:
                raise ImageNotFound(spec.image_id)
            # The insert first: a row is there only after a crash or a lost file, and reading it every
            # time was a statement more in the writer's lock.
            claimed = uow.derived.claim(spec, owner, now)
            derived = None if claimed else uow.derived.get(spec)
            if derived is not None:
                if derived.status is DerivedStatus.PENDING:
                    log.warning("taking over the claim on %s left by %s", spec.key, derived.owner)
                claimed = uow.derived.take_over(spec, derived.owner, owner, now)
            uow.commit()
        if not claimed:  # only a writer that ignores the lock can get here
            raise ServiceUnavailable(f"{spec.key} is being generated elsewhere", self._retry_after())
        original: Original = record.original
        return original

    @contextmanager
    def _generation_slot(self, deadline: float) -> Iterator[None]:
        """One of this process's ``max_concurrent_generations`` slots, or 503 if none frees in time."""
        if not self._slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise ServiceUnavailable(
                f"all {self._settings.max_concurrent_generations} generation slots are busy; retry shortly",
                retry_after=self._retry_after(),
            )
        held = time.monotonic()
        try:
            yield
        finally:
            self._slots.release()
        # Successful generations only: one that failed at once says nothing about the next one's time.
        self._slot_seconds += (time.monotonic() - held - self._slot_seconds) * SLOT_SECONDS_WEIGHT

    def _render(self, spec: DerivedSpec, original: Original) -> tuple[IStagedFile, Size]:
        """Render ``spec`` from ``original`` into a new staged file, discarded if rendering fails;
        return it and the size of the picture made."""
        staged = self._blobs.stage_derived(spec)
        try:
            rendition = Rendition(self._sizes.box(spec.size), spec.mode, spec.format, original.focus)
            produced = self._render_reduced(spec, original, rendition, staged)
            if produced is None:
                # Opened, the original stays readable even if a concurrent DELETE removes it meanwhile.
                source = self._blobs.open_original(spec.image_id, original.format)
                if source is None:
                    raise ImageNotFound(spec.image_id)
                with source.file:
                    produced = self._processor.derive(source.file, rendition, staged.file)
        except BaseException:
            staged.discard()
            raise
        return staged, produced

    def _render_reduced(
        self, spec: DerivedSpec, original: Original, rendition: Rendition, staged: IStagedFile
    ) -> Size | None:
        """Render from the smallest reduced copy that is enough (``choose_copy``), if any; ``None``
        when the original must be read: no copy is enough, the output animates (copies are of the
        first frame), or the copy is missing (until ``--repair`` rebuilds it)."""
        if not original.reduced or original.upright is None or original.traits is None:
            return None
        if spec.format.animates and original.traits.animated:
            return None
        side = choose_copy(rendition, original.upright, original.reduced)
        if side is None:
            return None
        source = self._blobs.open_reduced(spec.image_id, side)
        if source is None:
            log.warning("the %d px reduced copy of %s is missing; reading the original", side, spec.image_id)
            return None
        with source:
            return self._processor.derive_reduced(source, rendition, original.upright, staged.file)

    def _publish(
        self, spec: DerivedSpec, original: Original, owner: str, staged: IStagedFile, produced: Size
    ) -> None:
        """Record ``spec`` ready with the size and SHA-256 of what was rendered, and publish it, under
        the original's row lock: a concurrent DELETE either sees the derived image or made this fail."""
        size, checksum = staged.digest()
        with self._registry.unit_of_work(write=True) as uow:
            current = uow.originals.lock(spec.image_id)
            if current is None or current.status is not OriginalStatus.READY:
                raise ImageNotFound(spec.image_id)  # deleted while we rendered
            # Replaced (even by the same bytes), or its derived images purged: what was staged is named
            # for the original as claimed, which no reader looks for any more.
            replaced = not _same_upload(current.original, original)
            renewed = current.original.derived_epoch != original.derived_epoch
            if (
                replaced
                or renewed
                or not uow.derived.mark_ready(spec, owner, size, checksum, self._clock(), produced)
            ):
                raise ServiceUnavailable(f"{spec.image_id} changed while {spec.key} was generated", 1)
            staged.publish()
            uow.commit()

    def _release(self, spec: DerivedSpec, owner: str) -> None:
        try:
            with self._registry.unit_of_work(write=True) as uow:
                uow.derived.release(spec, owner)
                uow.commit()
        except ServiceUnavailable:
            log.warning("could not release the claim on %s; the next generation takes it over", spec.key)

    def _still_generating(self, spec: DerivedSpec) -> ServiceUnavailable:
        return ServiceUnavailable(f"{spec.key} is still being generated; retry shortly", self._retry_after())

    def _retry_after(self) -> int:
        return max(1, round(self._settings.wait_timeout / 10))

    # -- health ----------------------------------------------------------------------------------

    def health(self) -> dict[str, str]:
        self._registry.ping()
        self._blobs.check()
        # Below the reserve uploads are refused but hits are served: "full" is no reason to drop the host.
        full = self._blobs.free_bytes() < max(1, self._settings.min_free_bytes)
        return {"registry": "ok", "storage": "full" if full else "ok"}

    # -- helpers ---------------------------------------------------------------------------------

    def _ready_original(self, image_id: ImageId) -> OriginalRecord:
        with self._registry.unit_of_work() as uow:
            record: OriginalRecord | None = uow.originals.get(image_id)
        if record is None or record.status is not OriginalStatus.READY:
            raise ImageNotFound(image_id)
        return record

    def _copy_limited(self, upload: BinaryIO, out: BinaryIO) -> tuple[int, str]:
        """Copy at most ``max_upload_bytes``, keeping ``min_free_bytes`` free (checked at each chunk);
        return the size and SHA-256 (hex), hashed on the way. Too large wins over no room (413, not 507)."""
        limit = self._settings.max_upload_bytes
        too_large = UploadTooLarge(f"the upload exceeds max_upload_bytes ({limit} bytes)")
        copied = 0
        sha256 = hashlib.sha256()
        try:
            while chunk := upload.read(_COPY_CHUNK):
                copied += len(chunk)
                if copied > limit:
                    raise too_large
                self._keep_reserve(len(chunk), self._settings.min_free_bytes, "this upload")
                sha256.update(chunk)
                out.write(chunk)
        except StorageFull:
            # The rest is already received (CherryPy spooled it): counted, not stored.
            while copied <= limit and (chunk := upload.read(_COPY_CHUNK)):
                copied += len(chunk)
            if copied > limit:
                raise too_large from None
            raise
        return copied, sha256.hexdigest()

    def _keep_reserve(self, adding: int, reserve: int, what: str) -> None:
        """Raise ``StorageFull`` if storing ``adding`` more bytes would leave less than ``reserve`` free
        (without a reserve, the disk itself refuses what does not fit)."""
        if reserve and self._blobs.free_bytes() - adding < reserve:
            raise StorageFull(
                f"no room for {what}: the server keeps {reserve} bytes free; retry once space is freed"
            )
