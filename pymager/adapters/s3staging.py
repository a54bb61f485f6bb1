"""Publishing to the bucket: a file staged in the data directory, then uploaded in one step (one
PutObject with its SHA-256, or a multipart upload above ``multipart_threshold``; a derived image only if
no object has its key), and a retired prefix of derived objects, removed in batches."""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, BinaryIO

from zope.interface import implementer

from pymager.adapters.filesystem import StagedFile
from pymager.adapters.s3client import bucket_errors, error_code
from pymager.errors import StorageFailed, StorageFull
from pymager.interfaces import IRetiredFiles, IStagedFile

if TYPE_CHECKING:
    from pymager.adapters.s3 import S3BlobStore

log = logging.getLogger(__name__)

# Above this an original is uploaded in parts, each of MULTIPART_CHUNK (boto3's transfer manager).
MULTIPART_THRESHOLD = 16 * 1024 * 1024
MULTIPART_CHUNK = 8 * 1024 * 1024


def _sha256_header(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


@implementer(IStagedFile)
class S3StagedFile:
    """Written to a temporary file in the data directory; ``publish`` uploads it to ``key`` in one step.
    A derived image (``cache_name`` given) is created only if absent and kept in the cache."""

    def __init__(self, store: S3BlobStore, key: str, doing: str, cache_name: str | None = None) -> None:
        self._store = store
        self._key = key
        self._doing = doing
        self._cache_name = cache_name
        if cache_name is not None:
            self._local = store.cache.stage(cache_name)
        else:
            self._local = StagedFile(store.temporary / key.replace("/", "_"), doing)
        self.file: BinaryIO = self._local.file
        self._published = False

    def open_for_reading(self) -> BinaryIO:
        return self._local.open_for_reading()

    def digest(self) -> tuple[int, str]:
        return self._local.digest()

    def publish(self) -> None:
        if self._published:
            raise RuntimeError(f"{self._key} was already published")
        size, checksum = self._local.digest()
        client, bucket = self._store.client, self._store.bucket
        created = False
        with bucket_errors(self._doing), open(self._local.path, "rb") as body:
            if self._cache_name is not None:
                created = self._create(body, checksum)
            elif size <= self._store.multipart_threshold:
                client.put_object(
                    Bucket=bucket,
                    Key=self._key,
                    Body=body,
                    ChecksumSHA256=_sha256_header(checksum),
                    Metadata={"sha256": checksum},
                )
            else:
                self._upload_in_parts(body, checksum)
        self._published = True
        if created and self._cache_name is not None:
            self._keep(self._cache_name)
        else:
            self._local.discard()

    def _create(self, body: BinaryIO, checksum: str) -> bool:
        """PutObject only if no object has the key (``If-None-Match: *``): a derived image is published
        once. Finding one is finding it published (by a generation whose row a repair removed since):
        kept, and what was rendered here is not cached (every host serves the bucket's bytes).
        Return whether this call created it."""
        from botocore.exceptions import ClientError

        try:
            self._store.client.put_object(
                Bucket=self._store.bucket,
                Key=self._key,
                Body=body,
                ChecksumSHA256=_sha256_header(checksum),
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if error_code(exc) not in ("PreconditionFailed", "412"):
                raise
            log.warning("%s was published already; keeping the object there", self._key)
            return False
        return True

    def _upload_in_parts(self, body: BinaryIO, checksum: str) -> None:
        from boto3.s3.transfer import TransferConfig

        self._store.client.upload_fileobj(
            body,
            self._store.bucket,
            self._key,
            ExtraArgs={"ChecksumAlgorithm": "SHA256", "Metadata": {"sha256": checksum}},
            Config=TransferConfig(
                multipart_threshold=self._store.multipart_threshold,
                multipart_chunksize=MULTIPART_CHUNK,
                use_threads=False,
            ),
        )

    def _keep(self, cache_name: str) -> None:
        """Put the published derived image in this host's cache with the object's ``Last-Modified``.
        A failure here is no failure of the publication: the next hit downloads it."""
        try:
            with bucket_errors(self._doing):
                head = self._store.client.head_object(Bucket=self._store.bucket, Key=self._key)
            self._store.cache.adopt(cache_name, self._local, head["LastModified"])
        except (StorageFailed, StorageFull, RuntimeError) as exc:
            log.warning("not caching %s: %s", self._key, exc)
        finally:
            self._local.discard()

    def discard(self) -> None:
        self._local.discard()


@implementer(IRetiredFiles)
class RetiredPrefix:
    """Objects under a prefix, already unservable (the registry says so); ``remove`` deletes them."""

    def __init__(self, store: S3BlobStore, prefix: str) -> None:
        self._store = store
        self.prefix = prefix

    def remove(self) -> None:
        self._store.delete_prefix(self.prefix, "deleting the image")
