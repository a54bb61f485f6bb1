"""Originals and derived images as objects in an S3-compatible bucket (``storage_url = s3://<bucket>/
<prefix>``), served from a local cache of it (``ObjectCache``) in the data directory.

Layout of the bucket, under the prefix::

    originals/<id>                                   the original, byte for byte
    reduced/<id>/<side>                              its reduced copies (never served)
    derived/<id>/<incarnation>/<W>x<H>[-<mode>].<ext>
    derived/<id>/.traits-<kind>                      the traits mark (an empty object)

``<incarnation>`` names one upload of an id: its registry row's creation time in microseconds and the
start of its SHA-256, both in hex, and ``-p<n>`` after its derived images' ``n``-th purge. Every request
for a derived image, a reduced copy or an original reads the original's row (one primary-key query), or
trusts this host's reading of it from the last ``VALIDATION_SECONDS`` (0.5 s; a hit's registry read
costs three times the hit, measured in benchmarks/README.md): only a ``READY`` row's incarnation is ever
looked up, in the bucket or in the cache. So the registry is the truth, as the rename of a directory is
on disk:

- ``retire_derived`` (called under the row lock by a DELETE, which marks the row ``DELETING`` in the same
  transaction) takes every derived image out of service on every host within ``VALIDATION_SECONDS`` of
  that transaction's commit (on this host at once); the objects are removed afterwards by prefix, in
  batches (``IRetiredFiles.remove``).
- An id deleted and uploaded again is a new incarnation: once the delete has reached a host, it cannot
  serve the old picture's derived images, cached or not, even before they are all removed.

Writes are staged in the data directory (``tmp/``) and published by one PutObject (atomic: the object
appears whole or not at all) with its SHA-256 for the engine to verify (``ChecksumSHA256``), or by a
multipart upload (boto3's transfer manager, a SHA-256 per part) above ``multipart_threshold``; the
upload completes in one step. A derived image is created conditionally (``If-None-Match: *``), on top
of the generation lock. Every failure of the bucket (unreachable, refusing, erring) is ``StorageFailed``
with a short ``Retry-After``; the next request tries again, so a bucket back up serves without a restart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from zope.interface import implementer

from pymager.adapters.filesystem import TRAITS_PREFIX, apache_etag, nginx_etag
from pymager.adapters.objectcache import ObjectCache
from pymager.adapters.s3client import BUCKET_RETRY_AFTER, S3Client, bucket_errors, missing
from pymager.adapters.s3staging import MULTIPART_THRESHOLD, RetiredPrefix, S3StagedFile
from pymager.config import EtagStyle
from pymager.domain import (
    TRAIT_KINDS,
    DerivedSpec,
    ImageFormat,
    ImageId,
    Original,
    OriginalStatus,
    StoredFile,
    Traits,
)
from pymager.errors import ImageNotFound, ServiceUnavailable, StorageFailed, StorageFull, storage_failure
from pymager.interfaces import IBlobStore, IRegistry

log = logging.getLogger(__name__)

# How long a thread waits for another thread's download of the same object into the cache.
DOWNLOAD_TIMEOUT = 60.0
# How long a process serves hits on the registry's word that an original is ready (and of which
# incarnation): a DELETE, replace or purge elsewhere reaches every process within it (the bound is
# 1 s); the process's own deletes take effect at once. Writes, generations and repairs read afresh.
VALIDATION_SECONDS = 0.5
_VALIDATIONS_KEPT = 4096  # entries before the expired ones are swept
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
_CHUNK = 1 << 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def upload_name(original: Original) -> str:
    """The name of one upload of an id: its creation time (µs) and the start of its SHA-256, in hex
    (what the cache names its original and reduced copies by)."""
    created = original.created if original.created.tzinfo else original.created.replace(tzinfo=UTC)
    micros = (created - _EPOCH) // timedelta(microseconds=1)
    return f"{micros:x}-{original.checksum[:8]}"


def incarnation(original: Original) -> str:
    """The name of one upload of an id in the bucket's derived keys: its ``upload_name``, then how many
    times its derived images were purged, if ever (a purge renames them, so no host's cache, keyed by
    this name, serves a purged image)."""
    purged = f"-p{original.derived_epoch}" if original.derived_epoch else ""
    return f"{upload_name(original)}{purged}"


@implementer(IBlobStore)
class S3BlobStore:
    """Objects in ``bucket`` under ``prefix``, validated against ``registry`` on every read, cached in
    ``data_directory/cache`` (at most about ``cache_max_bytes``)."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str,
        registry: IRegistry,
        data_directory: Path,
        cache_max_bytes: int,
        etag_style: EtagStyle = "apache",
        multipart_threshold: int = MULTIPART_THRESHOLD,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.root = data_directory
        self.temporary = data_directory / "tmp"
        self.cache = ObjectCache(data_directory / "cache", cache_max_bytes)
        self.multipart_threshold = multipart_threshold
        self._registry = registry
        self._etag = apache_etag if etag_style == "apache" else nginx_etag
        self._remembering = threading.Lock()
        # id → (when asked, the ready original, or None: not ready, or forgotten then)
        self._validated: dict[ImageId, tuple[float, Original | None]] = {}
        self._swept = 0.0  # when the expired readings were last swept out
        self.validation_seconds = VALIDATION_SECONDS

    # -- names -----------------------------------------------------------------------------------

    def original_key(self, image_id: ImageId) -> str:
        return f"{self.prefix}originals/{ImageId(image_id)}"

    def reduced_key(self, image_id: ImageId, side: int) -> str:
        return f"{self.prefix}reduced/{ImageId(image_id)}/{int(side)}"

    def derived_prefix(self, image_id: ImageId, current: str | None = None) -> str:
        """Every derived object of ``image_id`` (of its incarnation ``current`` only, if given)."""
        return f"{self.prefix}derived/{ImageId(image_id)}/" + (f"{current}/" if current else "")

    def derived_key(self, spec: DerivedSpec, current: str) -> str:
        return f"{self.derived_prefix(spec.image_id, current)}{spec.name}"

    def current(self, image_id: ImageId) -> Original | None:
        """The ready original ``image_id`` as the registry records it now, or ``None``."""
        asked = time.monotonic()  # a reading is as old as its question, not its answer
        with self._registry.unit_of_work() as uow:
            record = uow.originals.get(image_id)
        ready = record is not None and record.status is OriginalStatus.READY
        original: Original | None = record.original if ready and record is not None else None
        self._remember(image_id, asked, original)
        return original

    def validated(self, image_id: ImageId) -> Original | None:
        """What a hit is served on: ``current``, as read within the last ``validation_seconds``. Only
        ready originals are trusted so: an upload is served by every host at once."""
        seen = self._validated.get(image_id)
        if seen is not None and seen[1] is not None and time.monotonic() - seen[0] < self.validation_seconds:
            return seen[1]
        return self.current(image_id)

    def _remember(self, image_id: ImageId, asked: float, original: Original | None) -> None:
        """Keep the reading asked at ``asked``, unless a later one (or a ``forget``) is kept already:
        a slow reading from before a delete must not replace what the delete left."""
        # Swept at most once a window: with more ids than that read in one, a sweep on every read would
        # scan them all on the hits' path.
        if len(self._validated) >= _VALIDATIONS_KEPT and asked - self._swept >= self.validation_seconds:
            self._swept = asked
            for stale in [
                key for key, (at, _) in list(self._validated.items()) if asked - at >= self.validation_seconds
            ]:
                self._validated.pop(stale, None)
        with self._remembering:
            kept = self._validated.get(image_id)
            if kept is None or kept[0] <= asked:
                self._validated[image_id] = (asked, original)

    def forget(self, image_id: ImageId) -> None:
        """Trust no reading of ``image_id`` asked before now (this host deletes it)."""
        with self._remembering:
            self._validated[image_id] = (time.monotonic(), None)

    def ready_incarnations(self) -> dict[ImageId, str]:
        """The incarnation of every ready original (for the consistency check)."""
        with self._registry.unit_of_work() as uow:
            records = uow.originals.list_all()
        return {
            record.original.image_id: incarnation(record.original)
            for record in records
            if record.status is OriginalStatus.READY
        }

    def current_incarnation(self, image_id: ImageId) -> str | None:
        original = self.current(image_id)
        return None if original is None else incarnation(original)

    # -- serving ---------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the local directories; raise ``ServiceUnavailable`` unless they and the bucket are
        usable."""
        for directory in (self.temporary, self.cache.root):
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ServiceUnavailable(f"cannot create {directory}: {exc.strerror}") from None
        self.check()

    def open_original(self, image_id: ImageId, image_format: ImageFormat) -> StoredFile | None:
        # Read afresh: generations read originals too, and must read the one they claimed.
        original = self.current(image_id)
        if original is None:
            return None
        name = f"originals/{ImageId(image_id)}/{upload_name(original)}"
        return self._serve(name, self.original_key(image_id), image_format.mime_type, original.checksum)

    def open_derived(self, spec: DerivedSpec) -> StoredFile | None:
        original = self.validated(spec.image_id)
        if original is None:
            return None
        current = incarnation(original)
        name = f"derived/{ImageId(spec.image_id)}/{current}/{spec.name}"
        return self._serve(name, self.derived_key(spec, current), spec.format.mime_type)

    def _serve(
        self, name: str, key: str, content_type: str, checksum: str | None = None
    ) -> StoredFile | None:
        """The cached entry ``name`` of the object ``key``, downloaded on a miss (verified against
        ``checksum``, the SHA-256 the registry keeps, when given)."""
        opened = self.cache.open(name)
        if opened is None:
            if not self.cache.fill(name, lambda out: self._download(key, out, checksum), DOWNLOAD_TIMEOUT):
                return None
            opened = self.cache.open(name)
            if opened is None:
                return None
        handle, st = opened
        return StoredFile(
            file=handle,
            content_type=content_type,
            size=st.st_size,
            modified=datetime.fromtimestamp(st.st_mtime, UTC),
            etag=self._etag(st),
        )

    def _download(self, key: str, out: BinaryIO, checksum: str | None) -> datetime | None:
        """Write the object ``key`` to ``out``; return its ``Last-Modified``, ``None`` if it is missing."""
        import hashlib

        from botocore.exceptions import ClientError

        doing = "reading from the bucket"
        with bucket_errors(doing):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if missing(exc):
                    return None
                raise
            sha256 = hashlib.sha256()
            with contextlib.closing(response["Body"]) as body:
                for chunk in body.iter_chunks(_CHUNK):
                    sha256.update(chunk)
                    out.write(chunk)
        if checksum is not None and sha256.hexdigest() != checksum:
            raise StorageFailed(f"the bucket's copy of {key} does not match its SHA-256", BUCKET_RETRY_AFTER)
        modified: datetime = response["LastModified"]
        return modified

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        with bucket_errors("looking in the bucket"):
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if missing(exc):
                    return False
                raise
        return True

    def has_original(self, image_id: ImageId) -> bool:
        return self._exists(self.original_key(image_id))

    def has_derived(self, spec: DerivedSpec) -> bool:
        current = self.current_incarnation(spec.image_id)
        if current is None:
            return False
        name = f"derived/{ImageId(spec.image_id)}/{current}/{spec.name}"
        return self.cache.contains(name) or self._exists(self.derived_key(spec, current))

    def has_reduced(self, image_id: ImageId, side: int) -> bool:
        return self._exists(self.reduced_key(image_id, side))

    def open_reduced(self, image_id: ImageId, side: int) -> BinaryIO | None:
        original = self.current(image_id)  # for a generation: afresh, as open_original
        if original is None:
            return None
        name = f"reduced/{ImageId(image_id)}/{upload_name(original)}/{int(side)}"
        stored = self._serve(name, self.reduced_key(image_id, side), "application/octet-stream")
        return None if stored is None else stored.file

    # -- writing ---------------------------------------------------------------------------------

    def stage_original(self, image_id: ImageId) -> S3StagedFile:
        return S3StagedFile(self, self.original_key(image_id), "storing the original")

    def stage_reduced(self, image_id: ImageId, side: int) -> S3StagedFile:
        return S3StagedFile(self, self.reduced_key(image_id, side), "storing a reduced copy")

    def stage_derived(self, spec: DerivedSpec) -> S3StagedFile:
        current = self.current_incarnation(spec.image_id)
        if current is None:
            raise ImageNotFound(spec.image_id)
        name = f"derived/{ImageId(spec.image_id)}/{current}/{spec.name}"
        return S3StagedFile(self, self.derived_key(spec, current), "storing the derived image", name)

    # -- traits ----------------------------------------------------------------------------------

    def published_traits(self, image_id: ImageId) -> Traits | None:
        original = self.validated(image_id)
        if original is None:
            return None
        current = incarnation(original)
        cached = f"derived/{ImageId(image_id)}/{current}/{TRAITS_PREFIX}"
        for kind in TRAIT_KINDS:
            if self.cache.contains(cached + kind):
                return Traits.of_kind(kind)
        marks = self._marks(image_id)
        with bucket_errors("reading the image's traits"):
            listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=marks, MaxKeys=10)
        for entry in listed.get("Contents", []):
            kind = entry["Key"].removeprefix(marks)
            if kind in TRAIT_KINDS:
                self._cache_mark(cached + kind, entry["LastModified"])
                return Traits.of_kind(kind)
        return None

    def _marks(self, image_id: ImageId) -> str:
        """The traits marks of ``image_id``: beside its derived images, of no incarnation, since
        ``publish_traits`` runs under the row lock, where looking the incarnation up would take a second
        connection (and a pool that runs out of them would deadlock). A DELETE removes them with the
        derived images, before the row, so no mark outlives its original."""
        return f"{self.derived_prefix(image_id)}{TRAITS_PREFIX}"

    def _cache_mark(self, name: str, modified: datetime) -> None:
        with contextlib.suppress(StorageFailed, StorageFull):
            staged = self.cache.stage(name)
            try:
                self.cache.adopt(name, staged, modified)
            finally:
                staged.discard()

    def publish_traits(self, image_id: ImageId, traits: Traits) -> None:
        marks = self._marks(image_id)
        with bucket_errors("publishing the image's traits"):
            self.client.put_object(Bucket=self.bucket, Key=f"{marks}{traits.kind}", Body=b"")
            others = [{"Key": f"{marks}{kind}"} for kind in TRAIT_KINDS if kind != traits.kind]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": others, "Quiet": True})

    # -- removing --------------------------------------------------------------------------------

    def retire_derived(self, image_id: ImageId) -> RetiredPrefix:
        # Out of service on every host within VALIDATION_SECONDS of the commit of the caller's
        # transaction (which marks the row DELETING): each read checks the row, or a reading of it that
        # recent. This host's validation and cached copies go at once.
        self.forget(image_id)
        self.cache.drop(f"derived/{ImageId(image_id)}")
        return RetiredPrefix(self, self.derived_prefix(image_id))

    def delete_image(self, image_id: ImageId) -> None:
        self.forget(image_id)
        self.retire_derived(image_id).remove()
        self.delete_prefix(f"{self.prefix}reduced/{ImageId(image_id)}/", "deleting the image")
        with bucket_errors("deleting the image"):
            self.client.delete_object(Bucket=self.bucket, Key=self.original_key(image_id))
        self.cache.drop(f"originals/{ImageId(image_id)}")
        self.cache.drop(f"reduced/{ImageId(image_id)}")

    def delete_prefix(self, prefix: str, doing: str) -> None:
        """Delete every object under ``prefix``, listed by pages, in batches of DeleteObjects."""
        with bucket_errors(doing):
            for keys in self.list_keys(prefix):
                if not keys:
                    continue
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
                )
                errors = answer.get("Errors") or []
                if errors:
                    raise StorageFailed(
                        f"the bucket failed while {doing}: {errors[0].get('Code')}", BUCKET_RETRY_AFTER
                    )

    def list_keys(self, prefix: str) -> Iterator[list[str]]:
        """Pages (at most 1000) of the keys under ``prefix``."""
        for page in self.list_pages(prefix):
            yield [entry["Key"] for entry in page]

    def list_pages(self, prefix: str) -> Iterator[list[dict[str, Any]]]:
        """Pages (ListObjectsV2, at most 1000 each) of the objects under ``prefix``."""
        token: str | None = None
        while True:
            arguments: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": _DELETE_BATCH}
            if token:
                arguments["ContinuationToken"] = token
            page = self.client.list_objects_v2(**arguments)
            yield list(page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    # -- health ----------------------------------------------------------------------------------

    def check(self) -> None:
        for directory in (self.temporary, self.cache.root):
            if not (directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)):
                raise StorageFailed(f"the data directory {directory} is missing or not writable")
        with bucket_errors("checking the bucket"):
            self.client.head_bucket(Bucket=self.bucket)

    def free_bytes(self) -> int:
        # What uploads are staged on and the cache kept in: the bucket itself has no such limit here.
        try:
            st = os.statvfs(self.root)
        except OSError as exc:
            raise storage_failure(exc, "measuring free space") from exc
        return st.f_bavail * st.f_frsize
