"""What an ``S3BlobStore``'s bucket holds, listed for the consistency check (ListObjectsV2 by pages),
and removal of what was listed.

A derived object counts as published only under the incarnation of its original's ready row (see
``pymager.adapters.s3``); derived objects of any other incarnation (a crash between a DELETE's
commit and its removals, for instance) are leftovers, and so are multipart uploads never completed
(aborted) and temporary files of the data directory (``tmp/``, the cache's downloads).
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime

from zope.interface import implementer

from pymager.adapters.filesystem import TEMP_PREFIX, TRAITS_PREFIX
from pymager.adapters.s3 import S3BlobStore
from pymager.adapters.s3client import bucket_errors, error_code, missing
from pymager.domain import DerivedSpec, ImageId, stored_derived
from pymager.interfaces import IBlobInventory, Leftover
from pymager.owners import owner_of_tag

_UPLOAD = "?uploadId="


@implementer(IBlobInventory)
class S3Inventory:
    def __init__(self, store: S3BlobStore) -> None:
        self._store = store
        self._url = f"s3://{store.bucket}/"

    def _objects(self, under: str) -> list[tuple[str, datetime]]:
        """(key relative to ``<prefix><under>``, Last-Modified) of every object there."""
        start = f"{self._store.prefix}{under}"
        with bucket_errors("listing the bucket"):
            return [
                (entry["Key"].removeprefix(start), entry["LastModified"])
                for page in self._store.list_pages(start)
                for entry in page
            ]

    def list_originals(self) -> list[tuple[ImageId, datetime]]:
        return [
            (ImageId(name), modified)
            for name, modified in self._objects("originals/")
            if ImageId.is_valid(name)
        ]

    def _derived(self) -> tuple[list[tuple[DerivedSpec, datetime]], list[Leftover]]:
        current = self._store.ready_incarnations()
        published, stale = [], []
        for name, modified in self._objects("derived/"):
            image_id, _, rest = name.partition("/")
            if rest.startswith(TRAITS_PREFIX):
                continue  # a traits mark, of no incarnation
            born, _, file_name = rest.partition("/")
            if ImageId.is_valid(image_id) and current.get(ImageId(image_id)) == born:
                spec = stored_derived(image_id, file_name)
                if spec is not None:
                    published.append((spec, modified))
                else:
                    stale.append(Leftover(self._name(f"derived/{name}"), modified, ""))
            else:
                stale.append(Leftover(self._name(f"derived/{name}"), modified, ""))
        return published, stale

    def list_derived(self) -> list[tuple[DerivedSpec, datetime]]:
        return self._derived()[0]

    def list_reduced(self) -> list[tuple[ImageId, int, datetime]]:
        found = []
        for name, modified in self._objects("reduced/"):
            image_id, _, side = name.partition("/")
            if ImageId.is_valid(image_id) and side.isdigit() and side == str(int(side)):
                found.append((ImageId(image_id), int(side), modified))
        return found

    def list_leftovers(self) -> list[Leftover]:
        found = self._derived()[1]
        with bucket_errors("listing the bucket's uploads"):
            answer = self._store.client.list_multipart_uploads(
                Bucket=self._store.bucket, Prefix=self._store.prefix
            )
            for upload in answer.get("Uploads", []):
                name = (
                    self._name(upload["Key"].removeprefix(self._store.prefix)) + _UPLOAD + upload["UploadId"]
                )
                found.append(Leftover(name, upload["Initiated"].astimezone(UTC), ""))
        for directory in (self._store.temporary, self._store.cache.root):
            for parent, _, names in os.walk(directory):
                for file_name in names:
                    if file_name.startswith(TEMP_PREFIX):
                        path = os.path.join(parent, file_name)
                        with contextlib.suppress(FileNotFoundError):
                            modified = datetime.fromtimestamp(os.lstat(path).st_mtime, UTC)
                            owner = owner_of_tag(file_name.removeprefix(TEMP_PREFIX))
                            found.append(Leftover(path, modified, owner))
        return found

    def remove_original(self, image_id: ImageId, listed: datetime) -> None:
        self._remove(self._store.original_key(image_id), listed)

    def remove_derived(self, spec: DerivedSpec, listed: datetime | None = None) -> None:
        current = self._store.current_incarnation(spec.image_id)
        if current is not None:
            self._remove(self._store.derived_key(spec, current), listed)
            self._store.cache.drop(f"derived/{spec.image_id}/{current}/{spec.name}")

    def remove_reduced(self, image_id: ImageId, side: int, listed: datetime | None = None) -> None:
        self._remove(self._store.reduced_key(image_id, side), listed)

    def remove_leftover(self, leftover: Leftover) -> None:
        name = leftover.name
        if name.startswith(self._url):
            key, _, upload_id = name.removeprefix(self._url).partition(_UPLOAD)
            if not key.startswith(self._store.prefix):
                raise ValueError(f"{name} is outside the store's prefix {self._store.prefix!r}")
            if upload_id:
                self._abort(key, upload_id)
                return
            self._remove(key, leftover.modified)
            return
        path = os.path.abspath(name)
        if not any(path.startswith(f"{d}/") for d in (self._store.temporary, self._store.cache.root)):
            raise ValueError(f"{name} is neither in the bucket nor in the data directory")
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if datetime.fromtimestamp(st.st_mtime, UTC) == leftover.modified:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _abort(self, key: str, upload_id: str) -> None:
        from botocore.exceptions import ClientError

        with bucket_errors("aborting an upload"):
            try:
                self._store.client.abort_multipart_upload(
                    Bucket=self._store.bucket, Key=key, UploadId=upload_id
                )
            except ClientError as exc:
                if error_code(exc) != "NoSuchUpload":  # completed or aborted meanwhile
                    raise

    def _name(self, relative: str) -> str:
        return f"{self._url}{self._store.prefix}{relative}"

    def _remove(self, key: str, listed: datetime | None) -> None:
        """Delete ``key``; with ``listed``, only if its Last-Modified is still that."""
        from botocore.exceptions import ClientError

        with bucket_errors("removing from the bucket"):
            if listed is not None:
                try:
                    head = self._store.client.head_object(Bucket=self._store.bucket, Key=key)
                except ClientError as exc:
                    if missing(exc):
                        return
                    raise
                if head["LastModified"] != listed:
                    return  # published again since it was listed
            self._store.client.delete_object(Bucket=self._store.bucket, Key=key)
