"""S3BlobStore and S3Inventory against a real S3 engine (SeaweedFS): what the engine honours, atomic and
verified publication, the per-host cache and its validators, retirement and deletion, and the listing
and repairs of the consistency check. Two stores on separate data directories play two hosts sharing
one registry and one bucket."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from zope.interface.verify import verifyObject

from pymager.adapters.db import SqlRegistry, make_engine, migrate
from pymager.adapters.s3 import S3BlobStore
from pymager.adapters.s3client import make_client
from pymager.adapters.s3inventory import S3Inventory
from pymager.config import Settings
from pymager.domain import DerivedSpec, ImageFormat, ImageId, Original, OriginalStatus, Size, Traits
from pymager.errors import ImageNotFound, StorageFailed
from pymager.interfaces import IBlobInventory, IBlobStore, IRetiredFiles, IStagedFile
from pymager.repair import Repairer
from tests.conftest import sqlite_url
from tests.seaweed import SeaweedFS

pytestmark = pytest.mark.s3


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[SqlRegistry]:
    url = sqlite_url(tmp_path / "registry.sqlite3")
    migrate.upgrade(url)
    registry = SqlRegistry(make_engine(url))
    yield registry
    registry.dispose()


@dataclass
class Hosts:
    weed: SeaweedFS
    bucket: str
    registry: SqlRegistry
    make: Callable[..., S3BlobStore]


@pytest.fixture
def hosts(
    seaweedfs: SeaweedFS,
    s3_bucket: str,
    registry: SqlRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Hosts:
    for name, value in seaweedfs.environment.items():
        monkeypatch.setenv(name, value)
    made = 0

    def make(
        endpoint: str | None = None, cache_max_bytes: int = 1 << 30, multipart_threshold: int = 16 << 20
    ) -> S3BlobStore:
        nonlocal made
        made += 1
        client = make_client(endpoint or seaweedfs.endpoint_url, "us-east-1")
        store = S3BlobStore(
            client,
            s3_bucket,
            "site/",
            registry,
            tmp_path / f"host-{made}",
            cache_max_bytes,
            multipart_threshold=multipart_threshold,
        )
        if endpoint is None:
            store.prepare()
        else:  # a bucket that cannot be reached: only the local side is prepared
            for directory in (store.temporary, store.cache.root):
                directory.mkdir(parents=True)
        return store

    return Hosts(seaweedfs, s3_bucket, registry, make)


def spec(image_id: str, width: int = 10, height: int = 20, fmt: str = "png") -> DerivedSpec:
    return DerivedSpec(ImageId(image_id), Size(width, height), ImageFormat.from_extension(fmt))


def store_original(
    hosts: Hosts, store: S3BlobStore, image_id: str, data: bytes, reduced: tuple[int, ...] = ()
) -> Original:
    """Publish ``data`` as the original ``image_id`` with its ready row, as an upload does."""
    checksum = hashlib.sha256(data).hexdigest()
    original = Original(
        ImageId(image_id), ImageFormat.JPEG, 10, 10, len(data), checksum, _now(), reduced=reduced
    )
    staged = store.stage_original(ImageId(image_id))
    staged.file.write(data)
    with hosts.registry.unit_of_work(write=True) as uow:
        assert uow.originals.add(original)
        staged.publish()
        uow.commit()
    return original


def publish_derived(store: S3BlobStore, derived: DerivedSpec, data: bytes) -> None:
    staged = store.stage_derived(derived)
    staged.file.write(data)
    staged.publish()


def delete(hosts: Hosts, store: S3BlobStore, image_id: str) -> None:
    """What a DELETE does: DELETING and retired in one transaction, then removed, then the row."""
    with hosts.registry.unit_of_work(write=True) as uow:
        uow.originals.set_status(ImageId(image_id), OriginalStatus.DELETING, _now())
        retired = store.retire_derived(ImageId(image_id))
        uow.commit()
    retired.remove()
    store.delete_image(ImageId(image_id))
    with hosts.registry.unit_of_work(write=True) as uow:
        uow.originals.remove(ImageId(image_id))
        uow.commit()


def read(store: S3BlobStore, derived: DerivedSpec) -> bytes | None:
    stored = store.open_derived(derived)
    if stored is None:
        return None
    with stored.file:
        return stored.file.read()


def served_until(store: S3BlobStore, derived: DerivedSpec, old: bytes, limit: float = 5.0) -> float:
    """Seconds until ``store`` stops serving ``old`` as ``derived`` (polled; fails past ``limit``)."""
    started = time.monotonic()
    while read(store, derived) == old:
        elapsed = time.monotonic() - started
        assert elapsed < limit, f"{derived.key} still served after {limit} s"
        time.sleep(0.01)
    return time.monotonic() - started


def count_calls(store: S3BlobStore, operation: str) -> list[str]:
    """A list that grows by one at each ``operation`` (GetObject …) the store's client sends."""
    calls: list[str] = []
    store.client.meta.events.register(f"before-call.s3.{operation}", lambda **_: calls.append(operation))
    return calls


def _now() -> datetime:
    return datetime.now(UTC)


# What SeaweedFS honours


def test_seaweedfs_verifies_sha256_and_md5_and_honours_if_none_match(hosts: Hosts) -> None:
    client: Any = hosts.weed.client()
    data = b"exact bytes"
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(ClientError, match="BadDigest"):
        client.put_object(Bucket=hosts.bucket, Key="k", Body=data, ChecksumSHA256=wrong)
    with pytest.raises(ClientError, match="BadDigest"):
        client.put_object(
            Bucket=hosts.bucket,
            Key="k",
            Body=data,
            ContentMD5=base64.b64encode(hashlib.md5(b"x").digest()).decode(),
        )
    assert "Contents" not in client.list_objects_v2(Bucket=hosts.bucket)
    client.put_object(Bucket=hosts.bucket, Key="k", Body=data, IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=hosts.bucket, Key="k", Body=b"second", IfNoneMatch="*")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket=hosts.bucket, Key="k")["Body"].read() == data


def test_seaweedfs_verifies_the_sha256_of_each_part(hosts: Hosts) -> None:
    client: Any = hosts.weed.client()
    upload = client.create_multipart_upload(Bucket=hosts.bucket, Key="parts", ChecksumAlgorithm="SHA256")
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(ClientError, match="BadDigest"):
        client.upload_part(
            Bucket=hosts.bucket,
            Key="parts",
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"part",
            ChecksumSHA256=wrong,
        )
    client.abort_multipart_upload(Bucket=hosts.bucket, Key="parts", UploadId=upload["UploadId"])


# Contracts


def test_store_staged_files_retired_files_and_inventory_provide_their_interfaces(hosts: Hosts) -> None:
    store = hosts.make()
    store_original(hosts, store, "cat", b"original")
    assert verifyObject(IBlobStore, store)
    assert verifyObject(IBlobInventory, S3Inventory(store))
    staged = store.stage_derived(spec("cat"))
    assert verifyObject(IStagedFile, staged)
    staged.discard()
    assert verifyObject(IRetiredFiles, store.retire_derived(ImageId("cat")))


# Originals


def test_an_original_is_stored_byte_exact_with_its_sha256(hosts: Hosts) -> None:
    store = hosts.make()
    data = bytes(range(256)) * 100
    original = store_original(hosts, store, "cat", data)
    head = hosts.weed.client().head_object(
        Bucket=hosts.bucket, Key="site/originals/cat", ChecksumMode="ENABLED"
    )
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == original.checksum
    other = hosts.make()
    stored = other.open_original(ImageId("cat"), ImageFormat.JPEG)
    assert stored is not None
    with stored.file:
        assert stored.file.read() == data
    assert not list((store.root / "tmp").iterdir())  # the staged file went with the upload


def test_a_large_original_goes_up_in_parts_and_leaves_no_upload(hosts: Hosts) -> None:
    store = hosts.make(multipart_threshold=5 << 20)
    parts = count_calls(store, "UploadPart")
    data = hashlib.sha256(b"seed").digest() * (12 << 15)  # 12 MiB
    store_original(hosts, store, "big", data)
    assert len(parts) >= 2
    assert hosts.weed.client().list_multipart_uploads(Bucket=hosts.bucket).get("Uploads", []) == []
    stored = hosts.make().open_original(ImageId("big"), ImageFormat.JPEG)
    assert stored is not None
    with stored.file:
        assert stored.file.read() == data


def test_a_staged_original_is_invisible_until_published_and_gone_when_discarded(hosts: Hosts) -> None:
    store = hosts.make()
    staged = store.stage_original(ImageId("cat"))
    staged.file.write(b"half")
    assert not store.has_original(ImageId("cat"))
    staged.discard()
    assert not store.has_original(ImageId("cat"))
    assert hosts.weed.keys(hosts.bucket) == []


# Derived images and the cache


def test_a_derived_image_is_served_alike_by_every_host_and_downloaded_once(hosts: Hosts) -> None:
    first, second = hosts.make(), hosts.make()
    store_original(hosts, first, "cat", b"original")
    publish_derived(first, spec("cat"), b"derived bytes")
    gets = count_calls(second, "GetObject")
    opened: list[tuple[str, datetime, int]] = []
    lock = threading.Lock()

    def hit() -> None:
        stored = second.open_derived(spec("cat"))
        assert stored is not None
        with stored.file, lock:
            assert stored.file.read() == b"derived bytes"
            opened.append((stored.etag, stored.modified, stored.size))

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(gets) == 1
    here = first.open_derived(spec("cat"))
    assert here is not None
    here.file.close()
    assert set(opened) == {(here.etag, here.modified, here.size)}  # the same validators on both hosts
    assert read(second, spec("cat")) == b"derived bytes"
    assert len(gets) == 1  # a hit: no request


def test_a_derived_image_is_created_once_and_a_second_publication_keeps_the_first(hosts: Hosts) -> None:
    first, second = hosts.make(), hosts.make()
    store_original(hosts, first, "cat", b"original")
    publish_derived(first, spec("cat"), b"first")
    publish_derived(second, spec("cat"), b"second")
    assert read(second, spec("cat")) == b"first"
    assert read(hosts.make(), spec("cat")) == b"first"


def test_traits_published_on_one_host_are_read_on_another(hosts: Hosts) -> None:
    first, second = hosts.make(), hosts.make()
    store_original(hosts, first, "cat", b"original")
    assert second.published_traits(ImageId("cat")) is None
    first.publish_traits(ImageId("cat"), Traits.of_kind("alpha"))
    first.publish_traits(ImageId("cat"), Traits.of_kind("opaque"))
    assert second.published_traits(ImageId("cat")) == Traits.of_kind("opaque")
    assert hosts.weed.keys(hosts.bucket, "site/derived/") == ["site/derived/cat/.traits-opaque"]


def test_the_cache_drops_the_least_recently_used_entries(hosts: Hosts) -> None:
    store = hosts.make(cache_max_bytes=2500)
    store_original(hosts, store, "cat", b"original")
    for width in (10, 20, 30, 40):
        publish_derived(store, spec("cat", width), b"x" * 1000)
    cached = sorted(path.name for path in (store.root / "cache").rglob("*.png"))
    assert cached == ["30x20.png", "40x20.png"]
    assert read(store, spec("cat", 10)) == b"x" * 1000  # downloaded again


# Retirement and deletion


def test_a_delete_makes_every_derived_image_unservable_here_at_once_and_on_every_host_within_1_s(
    hosts: Hosts,
) -> None:
    first, second = hosts.make(), hosts.make()
    store_original(hosts, first, "cat", b"original")
    publish_derived(first, spec("cat"), b"derived")
    assert read(second, spec("cat")) == b"derived"  # cached on the second host
    with hosts.registry.unit_of_work(write=True) as uow:
        uow.originals.set_status(ImageId("cat"), OriginalStatus.DELETING, _now())
        retired = first.retire_derived(ImageId("cat"))
        uow.commit()
    assert read(first, spec("cat")) is None
    assert served_until(second, spec("cat"), b"derived") <= 1.0  # before any object is removed
    retired.remove()
    first.delete_image(ImageId("cat"))
    assert hosts.weed.keys(hosts.bucket) == []


def test_an_id_uploaded_again_never_shows_the_old_pictures_derived_images(hosts: Hosts) -> None:
    first, second = hosts.make(), hosts.make()
    store_original(hosts, first, "cat", b"old picture")
    publish_derived(first, spec("cat"), b"old derived")
    assert read(second, spec("cat")) == b"old derived"
    delete(hosts, first, "cat")
    store_original(hosts, first, "cat", b"new picture")
    assert served_until(second, spec("cat"), b"old derived") <= 1.0
    assert read(second, spec("cat")) is None
    publish_derived(first, spec("cat"), b"new derived")
    assert read(second, spec("cat")) == b"new derived"
    stored = second.open_original(ImageId("cat"), ImageFormat.JPEG)
    assert stored is not None
    with stored.file:
        assert stored.file.read() == b"new picture"


def test_a_purge_makes_the_purged_images_unservable_on_every_host(hosts: Hosts, tmp_path: Path) -> None:
    """``purge-derived`` on one host: the other host's cached copy is never served again (the purge
    renames the original's derived objects through the registry), and the image made again is."""
    first, second = hosts.make(), hosts.make()
    store_original(hosts, first, "cat", b"original")
    made = spec("cat")
    with hosts.registry.unit_of_work(write=True) as uow:
        assert uow.derived.claim(made, "owner", _now())
        publish_derived(first, made, b"old pipeline")
        assert uow.derived.mark_ready(made, "owner", 12, "0" * 64, _now())
        uow.commit()
    assert read(second, made) == b"old pipeline"  # cached on the second host

    settings = Settings.for_directory(tmp_path / "tool", database_url="sqlite://")
    assert Repairer(settings, hosts.registry, first, S3Inventory(first)).purge_derived() == [made]

    assert served_until(second, made, b"old pipeline") <= 1.0
    assert read(first, made) is None
    assert [key for key in hosts.weed.keys(hosts.bucket) if "/derived/" in key] == []
    publish_derived(first, made, b"new pipeline")
    assert read(second, made) == b"new pipeline"


def test_hits_within_the_validation_window_read_no_row_and_uploads_are_served_at_once(hosts: Hosts) -> None:
    first, second = hosts.make(), hosts.make()
    assert read(second, spec("cat")) is None  # not uploaded yet: not remembered
    store_original(hosts, first, "cat", b"original")
    publish_derived(first, spec("cat"), b"derived")
    second.validation_seconds = 60.0  # no expiry within this test
    assert read(second, spec("cat")) == b"derived"
    units: list[bool] = []
    unit_of_work = hosts.registry.unit_of_work
    hosts.registry.unit_of_work = lambda write=False: units.append(write) or unit_of_work(write)  # type: ignore[method-assign]
    try:
        for _ in range(20):
            assert read(second, spec("cat")) == b"derived"
        assert units == []
        second.has_derived(spec("cat"))  # what a generation asks reads afresh
        assert units == [False]
    finally:
        hosts.registry.unit_of_work = unit_of_work  # type: ignore[method-assign]


def test_staging_a_derived_image_of_a_missing_original_is_not_found(hosts: Hosts) -> None:
    with pytest.raises(ImageNotFound):
        hosts.make().stage_derived(spec("nobody"))


# An unreachable bucket


def test_an_unreachable_bucket_is_a_storage_failure_with_a_short_retry(hosts: Hosts) -> None:
    store = hosts.make()
    store_original(hosts, store, "cat", b"original")
    cut_off = hosts.make(endpoint="http://127.0.0.1:9")
    with pytest.raises(StorageFailed) as failed:
        cut_off.check()
    assert failed.value.retry_after <= 5
    with pytest.raises(StorageFailed):
        cut_off.open_derived(spec("cat"))
    assert hosts.weed.secret_key not in str(failed.value)


# The consistency check


def test_the_inventory_lists_what_is_published_and_repair_removes_leftovers(hosts: Hosts) -> None:
    store = hosts.make()
    inventory = S3Inventory(store)
    store_original(hosts, store, "cat", b"original", reduced=(800,))
    publish_derived(store, spec("cat"), b"derived")
    reduced = store.stage_reduced(ImageId("cat"), 800)
    reduced.file.write(b"copy")
    reduced.publish()
    client: Any = hosts.weed.client()
    client.put_object(Bucket=hosts.bucket, Key="site/derived/cat/0-deadbeef/10x20.png", Body=b"stale")
    abandoned = client.create_multipart_upload(Bucket=hosts.bucket, Key="site/originals/crashed")
    assert [name for name, _ in inventory.list_originals()] == ["cat"]
    assert [found for found, _ in inventory.list_derived()] == [spec("cat")]
    assert [(image_id, side) for image_id, side, _ in inventory.list_reduced()] == [("cat", 800)]
    names = {leftover.name for leftover in inventory.list_leftovers()}
    assert names == {
        f"s3://{hosts.bucket}/site/derived/cat/0-deadbeef/10x20.png",
        f"s3://{hosts.bucket}/site/originals/crashed?uploadId={abandoned['UploadId']}",
    }
    settings = Settings.for_directory(store.root, reduced_copies=(800,))
    later = _now() + timedelta(hours=1)
    findings = Repairer(settings, hosts.registry, store, inventory, clock=lambda: later).run(repair=True)
    assert sorted(finding.problem for finding in findings) == [
        "derived file without a row",  # the published one: no generation recorded it
        "leftover temporary file or directory",
        "leftover temporary file or directory",
    ]
    assert client.list_multipart_uploads(Bucket=hosts.bucket).get("Uploads", []) == []
    assert sorted(hosts.weed.keys(hosts.bucket)) == ["site/originals/cat", "site/reduced/cat/800"]
