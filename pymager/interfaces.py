"""The ports of pymager. The service depends on these; adapters implement them (``@implementer``) and
tests prove each implementation with ``verifyObject``."""

# ruff: noqa: N805  (zope interface methods are declared without ``self``)
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import BinaryIO, NamedTuple

from zope.interface import Attribute, Interface

from pymager.domain import (
    DerivedRecord,
    DerivedSpec,
    ImageFormat,
    ImageId,
    ImageInfo,
    Original,
    OriginalDescription,
    OriginalRecord,
    OriginalsPage,
    OriginalStatus,
    PurgeNotice,
    Rendition,
    Size,
    StoredFile,
    Traits,
    Upload,
)
from pymager.signing import SignedPath


class IOriginalRepository(Interface):
    """Rows of originals, inside one unit of work. Never commits."""

    def get(image_id: ImageId) -> OriginalRecord | None:
        """Return the ``OriginalRecord`` for ``image_id``, or ``None``."""

    def lock(image_id: ImageId) -> OriginalRecord | None:
        """Like ``get``, but hold the row against concurrent writers until the unit of work ends
        (``SELECT … FOR UPDATE``; on SQLite the writer transaction already serialises writers)."""

    def add(original: Original) -> bool:
        """Insert a ready original. Return ``False`` (inserting nothing) when the id already has a row,
        in any status; never raises for that conflict."""

    def set_status(image_id: ImageId, status: OriginalStatus, now: datetime) -> None:
        """Set the ``OriginalStatus`` of an existing row, changed at ``now``."""

    def set_facts(image_id: ImageId, info: ImageInfo) -> None:
        """Record what ``identify`` found (traits, upright size, placeholder) of an original stored
        before pymager recorded it."""

    def set_reduced(image_id: ImageId, sides: tuple[int, ...]) -> None:
        """Record the long sides of the reduced copies published of an original (``()``: it needs
        none)."""

    def list_page(after: ImageId | None, limit: int) -> list[OriginalRecord]:
        """At most ``limit`` ready originals by id ascending, after the id ``after`` (from the first
        when ``None``)."""

    def remove(image_id: ImageId) -> None:
        """Delete the original's row and every derived row of it."""

    def renew_derived(image_id: ImageId) -> None:
        """Count one more purge of its derived images (``Original.derived_epoch``)."""

    def list_all() -> list[OriginalRecord]:
        """Every original's row (for the consistency check)."""


class IDerivedRepository(Interface):
    """Rows of derived images, inside one unit of work. Never commits."""

    def get(spec: DerivedSpec) -> DerivedRecord | None:
        """Return the ``DerivedRecord`` for ``spec``, or ``None``."""

    def claim(spec: DerivedSpec, owner: str, now: datetime) -> bool:
        """Insert a ``PENDING`` row owned by ``owner``. Return ``False`` (inserting nothing) when a row
        for ``spec`` exists already (``INSERT … ON CONFLICT DO NOTHING``)."""

    def take_over(spec: DerivedSpec, expected_owner: str, owner: str, now: datetime) -> bool:
        """Compare-and-set: make the row ``PENDING`` and owned by ``owner`` only if it is still owned
        by ``expected_owner``. Return whether it was taken."""

    def mark_ready(
        spec: DerivedSpec,
        owner: str,
        size_bytes: int,
        checksum: str,
        now: datetime,
        produced: Size | None = None,
    ) -> bool:
        """Mark the row ``READY`` (its file of ``size_bytes`` with ``checksum``, a picture of
        ``produced`` pixels) if ``owner`` still owns it. Return whether it did."""

    def list_ready(image_id: ImageId) -> list[DerivedRecord]:
        """Every ready derived image of ``image_id``, by size, mode and format."""

    def release(spec: DerivedSpec, owner: str) -> None:
        """Delete the row if ``owner`` still owns it and it is ``PENDING`` (a failed generation)."""

    def remove(spec: DerivedSpec) -> None:
        """Delete the row, whoever owns it (repairs only)."""

    def list_all() -> list[DerivedRecord]:
        """Every derived image's row (for the consistency check)."""


class IPurgeOutbox(Interface):
    """Purge notices waiting for delivery, inside one unit of work (the transactional outbox): a notice
    added with a DELETE commits or rolls back with it. Never commits."""

    def add(image_id: ImageId, body: str, now: datetime) -> None:
        """Queue a notice about ``image_id``, due at ``now``."""

    def due(now: datetime, limit: int) -> list[PurgeNotice]:
        """At most ``limit`` notices due at ``now``, oldest first."""

    def lease(notice: PurgeNotice, until: datetime) -> bool:
        """Take ``notice`` for one delivery attempt: count the attempt and make it due again at ``until``
        (when a crashed deliverer's notice is retried). Compare-and-set on ``attempts``: ``False`` when
        another deliverer took or finished it since it was read."""

    def postpone(notice: PurgeNotice, until: datetime, error: str) -> None:
        """The delivery of ``notice`` (as leased: ``attempts`` counted it) failed with ``error``: due
        again at ``until``, unless another deliverer leased it since."""

    def remove(number: int) -> None:
        """The notice was delivered."""

    def pending() -> int:
        """How many notices wait."""


class IUnitOfWork(Interface):
    """One database transaction. A context manager that rolls back unless ``commit`` was called."""

    originals = Attribute("IOriginalRepository bound to this transaction")
    derived = Attribute("IDerivedRepository bound to this transaction")
    outbox = Attribute("IPurgeOutbox bound to this transaction")

    def __enter__() -> IUnitOfWork:
        """Begin the transaction; return the unit of work."""

    def __exit__(
        exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Roll back unless committed; close the transaction."""

    def commit() -> None:
        """Commit the transaction."""


class IRegistry(Interface):
    """The SQL registry of images: a source of units of work."""

    def unit_of_work(write: bool = False) -> IUnitOfWork:
        """Return a new ``IUnitOfWork``. ``write=True`` begins a writer transaction at once (SQLite:
        ``BEGIN IMMEDIATE``), so that read-then-write sequences cannot deadlock on lock upgrades."""

    def ping() -> None:
        """Raise ``ServiceUnavailable`` unless the database answers and its schema is current."""


class IStagedFile(Interface):
    """A picture being written out of sight, then published under its final name at once, or discarded.
    Its storage failing (in any method, and in writes to ``file``) is ``StorageFull`` or
    ``StorageFailed``, as in ``IBlobStore``."""

    file = Attribute("binary file object open for writing")

    def open_for_reading() -> BinaryIO:
        """Flush ``file`` and return a new binary file object that reads what was written so far from its
        start, without moving ``file``. The caller closes it."""

    def digest() -> tuple[int, str]:
        """Flush and return the size in bytes and the SHA-256 (hex) of what was written so far."""

    def publish() -> None:
        """Make what was written visible under its final name at once (replacing what was there) and
        durable before returning; on a storage failure, publish nothing. Raise ``RuntimeError`` if
        already published or discarded."""

    def discard() -> None:
        """Close and remove what was written. Safe to call after ``publish`` (then a no-op)."""


class IRetiredFiles(Interface):
    """Derived images of one original, out of service since ``IBlobStore.retire_derived`` and not yet
    removed."""

    def remove() -> None:
        """Remove them for good (raising ``StorageFull`` or ``StorageFailed`` when the store fails,
        which leaves what it could not remove for a later call or the repair). Safe to call twice."""


class IBlobStore(Interface):
    """The stored pictures, as the service asks for them: originals by id, derived images by spec. Where
    and how they are kept is the adapter's business (the filesystem adapter keeps the layout that a
    front server computes from a URL).

    A full store (no space, over a quota) raises ``StorageFull`` and a failing one (an I/O error, a
    read-only filesystem) ``StorageFailed``, never the adapter's own errors, from every method."""

    def open_original(image_id: ImageId, image_format: ImageFormat) -> StoredFile | None:
        """Open the published original ``image_id`` for reading and describe it as ``image_format``
        (size, modification time, a strong ETag from the stored file's identity); ``None`` if there is
        none. The caller closes ``file``, which stays readable if the original is deleted meanwhile."""

    def open_derived(spec: DerivedSpec) -> StoredFile | None:
        """Like ``open_original``, for the published derived image ``spec``. Called on every cache hit,
        so as cheap as opening one file."""

    def has_original(image_id: ImageId) -> bool:
        """Whether the original ``image_id`` is published."""

    def has_derived(spec: DerivedSpec) -> bool:
        """Whether the derived image ``spec`` is published."""

    def stage_original(image_id: ImageId) -> IStagedFile:
        """Return an ``IStagedFile`` that publishes the original ``image_id``."""

    def stage_derived(spec: DerivedSpec) -> IStagedFile:
        """Return an ``IStagedFile`` that publishes the derived image ``spec``."""

    def stage_reduced(image_id: ImageId, side: int) -> IStagedFile:
        """Return an ``IStagedFile`` that publishes the reduced copy of long side ``side`` of the
        original ``image_id``. The caller publishes it under the original's row lock, as the original."""

    def open_reduced(image_id: ImageId, side: int) -> BinaryIO | None:
        """Open the reduced copy of long side ``side`` of ``image_id`` for reading, ``None`` if there
        is none. The caller closes it; it stays readable if the original is deleted meanwhile."""

    def has_reduced(image_id: ImageId, side: int) -> bool:
        """Whether the reduced copy of long side ``side`` of ``image_id`` is published."""

    def published_traits(image_id: ImageId) -> Traits | None:
        """The traits published for ``image_id`` by ``publish_traits`` (what an ``auto`` URL's format
        is chosen from: animated, or alpha, or neither; alpha is not kept for an animation, whose
        choice does not depend on it), or ``None`` when none are. Called on every ``auto`` hit, so as
        cheap as looking at a few names."""

    def publish_traits(image_id: ImageId, traits: Traits) -> None:
        """Publish ``image_id``'s traits beside its derived images, where a front server choosing an
        ``auto`` format can read them. They go with the derived images (``retire_derived``,
        ``delete_image``). The caller holds the original's row lock, so the traits of a deleted original
        can never be published for its replacement."""

    def retire_derived(image_id: ImageId) -> IRetiredFiles | None:
        """Take every derived image of ``image_id`` out of service at once, so that neither pymager nor
        a front server serves any of them any more, however long removing them takes; return them as
        ``IRetiredFiles`` to remove later, or ``None`` when there were none."""

    def delete_image(image_id: ImageId) -> None:
        """Remove the original ``image_id``, its reduced copies and every derived image of it. Missing
        ones are not an error."""

    def check() -> None:
        """Raise ``StorageFailed`` unless the store is usable for writing."""

    def free_bytes() -> int:
        """The bytes new files may still take in the store now (what an unprivileged writer may use)."""


class Leftover(NamedTuple):
    """Something a crash or a race may have left in a blob store (a temporary file, retired derived
    images never removed, an emptied container): the store's own ``name`` for it (shown in findings,
    given back to ``remove_leftover``), when it was last ``modified``, and the ``owner``
    (``<host>:<pid>:``) of the process that created it, ``""`` if unknown."""

    name: str
    modified: datetime
    owner: str


class IBlobInventory(Interface):
    """What a blob store holds, listed for the consistency check, and removal of what was listed. Only
    the consistency check uses it: serving a request never lists."""

    def list_originals() -> list[tuple[ImageId, datetime]]:
        """Every published original, with its modification time."""

    def list_derived() -> list[tuple[DerivedSpec, datetime]]:
        """Every published derived image, with its modification time."""

    def list_leftovers() -> list[Leftover]:
        """Every ``Leftover`` in the store."""

    def list_reduced() -> list[tuple[ImageId, int, datetime]]:
        """Every published reduced copy: its original's id, its long side, its modification time."""

    def remove_reduced(image_id: ImageId, side: int, listed: datetime | None = None) -> None:
        """Remove the reduced copy of long side ``side`` of ``image_id``; with ``listed``, only if its
        modification time is still that. Missing is not an error."""

    def remove_original(image_id: ImageId, listed: datetime) -> None:
        """Remove the original ``image_id`` if its modification time is still ``listed`` (otherwise an
        upload published it again since it was listed). Missing is not an error."""

    def remove_derived(spec: DerivedSpec, listed: datetime | None = None) -> None:
        """Remove the derived image ``spec``; with ``listed``, only if its modification time is still
        that. Missing is not an error."""

    def remove_leftover(leftover: Leftover) -> None:
        """Remove a ``Leftover`` listed by ``list_leftovers``, unless it was modified since (then someone
        is using it). An emptied container is removed only while still empty. Missing is not an error;
        a name outside the store is refused with ``ValueError``."""


class IImageProcessor(Interface):
    """Decoding, checking and transforming images."""

    def identify(source: BinaryIO, reduced: Mapping[int, BinaryIO] | None = None) -> ImageInfo:
        """Return the ``ImageInfo`` of the image in the binary file ``source`` (read from its start; the
        caller closes it) after decoding it completely, with the focal point detected in the decoded
        picture (upright coordinates) unless detection is off.

        ``reduced`` maps long sides to files: for each side smaller than the upright picture, write its
        reduced copy there, made from the decoded picture (its first frame): upright, sRGB, no
        metadata, exactly ``reduced_size`` (``pymager.reduced``). ``ImageInfo.reduced`` lists the sides
        written; the other files are left empty.

        Raise ``UnsupportedImage`` when it is not an image in an accepted format (without handing it to
        any other decoder), ``DecodingLimit`` when it is over a decoding limit and ``CorruptImage`` when
        it is an accepted format that fails to decode."""

    def derive(source: BinaryIO, rendition: Rendition, out: BinaryIO) -> Size:
        """Write to the binary file ``out`` the original read from ``source`` made into ``rendition``:
        EXIF orientation applied, fitted to ``rendition.size`` in ``rendition.mode`` (fill crops around
        ``rendition.focus``), converted to sRGB from its embedded colour profile, encoded as
        ``rendition.format`` with no metadata and no large colour profile. Return the size of the
        picture made."""

    def derive_reduced(source: BinaryIO, rendition: Rendition, upright: Size, out: BinaryIO) -> Size:
        """Like ``derive``, from ``source``, a reduced copy (as ``identify`` writes them) of an original
        whose upright size is ``upright``: the same geometry (crop window around the focal point,
        fitted size) as from that original, the first frame only. Return the size of the picture
        made."""


class IHeldLock(Interface):
    """A lock this process holds."""

    def release() -> None:
        """Release the lock. Safe to call twice."""


class IGenerationLocks(Interface):
    """Cross-process locks, one per derived image. The process generating an image holds its lock for
    the whole claim, render and publish, so other processes block on the lock instead of polling. A
    lock dies with its holder (the kernel closes its file; PostgreSQL ends its session), so a crashed
    generation frees its image at once."""

    def try_acquire(spec: DerivedSpec) -> IHeldLock | None:
        """Take the lock of ``spec`` if no process holds it now; ``None`` otherwise. Never blocks."""

    def wait(spec: DerivedSpec, timeout: float) -> bool:
        """Block until no process holds the lock of ``spec`` (``True``) or ``timeout`` seconds pass
        (``False``). Does not take the lock."""


class IMetrics(Interface):
    """Counters and timings of one process (or, in multiprocess mode, of all processes sharing a
    metrics directory)."""

    def derived_served(source: str) -> None:
        """Count a derived image served, from ``"disk"`` or freshly ``"generated"`` by this request."""

    def derived_generated(seconds: float) -> None:
        """Count one generation of a derived image, which took ``seconds``."""

    def derived_coalesced() -> None:
        """Count a request that waited on another request's (or process's) generation."""

    def upload_finished(status: int) -> None:
        """Count an upload request by its HTTP status."""

    def purge_notice_sent(delivered: bool) -> None:
        """Count one delivery attempt of a purge notice, ``delivered`` or failed."""

    def exposition() -> tuple[str, bytes]:
        """The content type and body of the metrics in the Prometheus text format."""


class IPurgeSender(Interface):
    """Where purge notices go: the CDN's webhook (``purge_url``)."""

    def send(number: int, body: bytes) -> None:
        """Deliver notice ``number`` (its JSON ``body``); raise ``PurgeFailed`` unless the receiver
        accepted it."""


class IImageService(Interface):
    """What the web layer may ask of pymager. Arguments are raw strings from the request; the service
    validates them."""

    def save_original(
        image_id: str, open_upload: Callable[[], Upload], declared_bytes: int | None = None
    ) -> Original:
        """Store an upload as original ``image_id``; return the ``Original``. ``open_upload`` returns
        the ``Upload`` (raising ``BadUpload`` for a malformed request); it is called only once the id
        is known to be valid and free and the ``declared_bytes`` of the request (its
        ``Content-Length``, if it has one) would leave ``min_free_bytes`` free (else ``StorageFull``),
        so a rejected upload is never read. The upload's ``focus`` (``<x>,<y>``) is the focal point;
        without one it is detected (or the centre)."""

    def original_file(image_id: str) -> StoredFile:
        """Return the ``StoredFile`` of an original."""

    def delete_original(image_id: str) -> None:
        """Delete an original and everything derived from it."""

    def original_info(image_id: str) -> OriginalDescription:
        """Describe a ready original and its ready derived images (an original stored before pymager
        recorded its traits, upright size and placeholder is decoded once for them)."""

    def list_originals(after: str | None = None, limit: int = 100) -> OriginalsPage:
        """Ready originals by id ascending, ``limit`` (1 to 1000, else ``InvalidListing``) at most,
        after the id ``after``."""

    def derived_file(
        segment: str, signed: SignedPath | None = None, accepted: frozenset[str] = frozenset()
    ) -> StoredFile:
        """Return the ``StoredFile`` for a derived URL segment, generating it on first request. With
        url keys configured, a stored one is served to anyone, and generating one needs ``signed``
        (the request's path and ``s`` parameters) to carry a valid signature. An ``auto`` segment is
        served as the derived image in the format ``choose_format`` picks for ``accepted`` (the media
        types the request's Accept header names explicitly with q > 0), with ``negotiated`` set to it."""

    def health() -> dict[str, str]:
        """Return a dict of component → ``"ok"`` (``"storage"`` is ``"full"`` below ``min_free_bytes``:
        uploads are refused, but the server still serves); raise ``ServiceUnavailable`` when one is
        unusable."""


__all__ = [
    "IBlobInventory",
    "IBlobStore",
    "IDerivedRepository",
    "IGenerationLocks",
    "IHeldLock",
    "IImageProcessor",
    "IImageService",
    "IMetrics",
    "IOriginalRepository",
    "IRegistry",
    "IRetiredFiles",
    "IStagedFile",
    "IUnitOfWork",
    "Leftover",
]
