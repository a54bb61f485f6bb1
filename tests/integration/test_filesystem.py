"""FileBlobStore and FileInventory on a real filesystem: layout, atomic publication, serving, deletion,
and the listing and removal the consistency check uses."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from zope.interface.verify import verifyObject

from pymager import owners
from pymager.adapters.filesystem import FileBlobStore, FileInventory, StagedFile
from pymager.domain import DerivedSpec, ImageFormat, ImageId, Size
from pymager.errors import InvalidImageId, ServiceUnavailable, StorageFailed
from pymager.interfaces import IBlobInventory, IBlobStore, IRetiredFiles, IStagedFile, Leftover


@pytest.fixture
def store(tmp_path: Path) -> FileBlobStore:
    blobs = FileBlobStore(tmp_path / "data")
    blobs.prepare()
    return blobs


@pytest.fixture
def inventory(store: FileBlobStore) -> FileInventory:
    return FileInventory(store)


def spec(image_id: str = "cat", width: int = 10, height: int = 20, fmt: str = "png") -> DerivedSpec:
    return DerivedSpec(ImageId(image_id), Size(width, height), ImageFormat.from_extension(fmt))


def publish(staged: StagedFile, data: bytes) -> None:
    staged.file.write(data)
    staged.publish()


def leftovers(inventory: FileInventory) -> set[Path]:
    return {Path(leftover.name) for leftover in inventory.list_leftovers()}


def leftover_named(inventory: FileInventory, path: Path | str) -> Leftover:
    [leftover] = [leftover for leftover in inventory.list_leftovers() if leftover.name == str(path)]
    return leftover


def temp_files(directory: Path) -> list[Path]:
    return list(directory.rglob(".tmp-*"))


# Contracts


def test_file_blob_store_provides_iblobstore(store: FileBlobStore) -> None:
    assert verifyObject(IBlobStore, store)


def test_file_inventory_provides_iblobinventory(inventory: FileInventory) -> None:
    assert verifyObject(IBlobInventory, inventory)


def test_staged_file_provides_istagedfile(store: FileBlobStore) -> None:
    staged = store.stage_original(ImageId("cat"))
    try:
        assert verifyObject(IStagedFile, staged)
    finally:
        staged.discard()


def test_retired_directory_provides_iretiredfiles(store: FileBlobStore) -> None:
    publish(store.stage_derived(spec()), b"d")
    retired = store.retire_derived(ImageId("cat"))
    assert retired is not None
    try:
        assert verifyObject(IRetiredFiles, retired)
    finally:
        retired.remove()


# Layout


def test_prepare_creates_originals_and_derived(tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet" / "there"
    blobs = FileBlobStore(root)

    blobs.prepare()

    assert (root / "originals").is_dir()
    assert (root / "derived").is_dir()


def test_prepare_is_idempotent(store: FileBlobStore) -> None:
    store.prepare()

    store.check()


def test_prepare_under_a_regular_file_raises_service_unavailable(tmp_path: Path) -> None:
    regular = tmp_path / "file"
    regular.write_bytes(b"")

    with pytest.raises(ServiceUnavailable, match="cannot create"):
        FileBlobStore(regular / "data").prepare()


def test_original_path_is_originals_id(store: FileBlobStore) -> None:
    assert store.original_path(ImageId("cat")) == str(store.root / "originals" / "cat")


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("png", "10x20.png"), ("jpg", "10x20.jpg"), ("jpeg", "10x20.jpg"), ("gif", "10x20.gif")],
)
def test_derived_path_is_derived_id_size_canonical_extension(
    store: FileBlobStore, fmt: str, name: str
) -> None:
    assert store.derived_path(spec("a-b", fmt=fmt)) == str(store.root / "derived" / "a-b" / name)


@pytest.mark.parametrize("bad", ["..", "../x", "", "a/b"])
def test_paths_refuse_unvalidated_ids(store: FileBlobStore, bad: str) -> None:
    with pytest.raises(InvalidImageId):
        store.original_path(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidImageId):
        store.open_original(bad, ImageFormat.PNG)  # type: ignore[arg-type]
    with pytest.raises(InvalidImageId):
        store.open_derived(DerivedSpec(bad, Size(1, 1), ImageFormat.PNG))  # type: ignore[arg-type]


def test_open_derived_serves_the_file_a_front_server_finds_from_the_url(store: FileBlobStore) -> None:
    # deploy/apache maps /derived/<id>-<W>x<H>.<ext> to derived/<id>/<W>x<H>.<canonical ext>.
    (store.root / "derived" / "a-b").mkdir()
    (store.root / "derived" / "a-b" / "10x20.jpg").write_bytes(b"placed as the front server sees it")

    stored = store.open_derived(DerivedSpec.parse("a-b-10x20.jpeg"))

    assert stored is not None
    with stored.file:
        assert stored.file.read() == b"placed as the front server sees it"
    assert stored.content_type == "image/jpeg"


# Staging and publishing


def test_staged_file_is_invisible_until_publish(store: FileBlobStore) -> None:
    final = Path(store.original_path(ImageId("cat")))
    staged = store.stage_original(ImageId("cat"))
    staged.file.write(b"meow")
    staged.file.flush()

    assert not final.exists()
    assert not store.has_original(ImageId("cat"))
    assert store.open_original(ImageId("cat"), ImageFormat.PNG) is None
    assert Path(staged.path).parent == final.parent
    assert Path(staged.path).name.startswith(".tmp-")

    staged.publish()

    assert final.read_bytes() == b"meow"
    assert store.has_original(ImageId("cat"))


def test_staged_derived_file_is_invisible_until_publish(store: FileBlobStore) -> None:
    staged = store.stage_derived(spec())
    staged.file.write(b"pixels")
    staged.file.flush()

    assert not store.has_derived(spec())
    assert store.open_derived(spec()) is None

    staged.publish()

    assert store.has_derived(spec())


def test_open_for_reading_reads_what_was_written_without_moving_the_writer(store: FileBlobStore) -> None:
    staged = store.stage_original(ImageId("cat"))
    staged.file.write(b"meow")

    with staged.open_for_reading() as reader:
        assert reader.read() == b"meow"
    staged.file.write(b"!")
    staged.publish()

    assert Path(store.original_path(ImageId("cat"))).read_bytes() == b"meow!"


def test_published_file_has_mode_0644_and_leaves_no_temp(store: FileBlobStore) -> None:
    staged = store.stage_derived(spec())

    publish(staged, b"pixels")

    final = Path(store.derived_path(spec()))
    assert final.read_bytes() == b"pixels"
    assert stat.S_IMODE(final.stat().st_mode) == 0o644
    assert temp_files(store.root) == []
    assert not Path(staged.path).exists()


def test_published_file_mode_ignores_umask(store: FileBlobStore) -> None:
    previous = os.umask(0o077)
    try:
        staged = store.stage_original(ImageId("cat"))
    finally:
        os.umask(previous)

    publish(staged, b"x")

    assert stat.S_IMODE(Path(store.original_path(ImageId("cat"))).stat().st_mode) == 0o644


def test_publish_twice_raises(store: FileBlobStore) -> None:
    staged = store.stage_original(ImageId("cat"))
    publish(staged, b"x")

    with pytest.raises(RuntimeError):
        staged.publish()


def test_publish_replaces_existing_file_atomically(store: FileBlobStore) -> None:
    final = Path(store.original_path(ImageId("cat")))
    publish(store.stage_original(ImageId("cat")), b"old")
    staged = store.stage_original(ImageId("cat"))
    staged.file.write(b"new content")
    staged.file.flush()

    assert final.read_bytes() == b"old"

    staged.publish()

    assert final.read_bytes() == b"new content"
    assert temp_files(store.root) == []


def test_digest_returns_size_and_sha256_of_written_bytes(store: FileBlobStore) -> None:
    data = bytes(range(256)) * 5000
    staged = store.stage_original(ImageId("cat"))
    try:
        staged.file.write(data)

        assert staged.digest() == (len(data), hashlib.sha256(data).hexdigest())
    finally:
        staged.discard()


def test_digest_of_empty_staged_file(store: FileBlobStore) -> None:
    staged = store.stage_original(ImageId("cat"))
    try:
        assert staged.digest() == (0, hashlib.sha256(b"").hexdigest())
    finally:
        staged.discard()


def test_digest_of_derived_file_whose_directory_a_delete_removed(store: FileBlobStore) -> None:
    spec = DerivedSpec(ImageId("cat"), Size(10, 10), ImageFormat.JPEG)
    staged = store.stage_derived(spec)
    staged.file.write(b"rendered")
    retired = store.retire_derived(ImageId("cat"))  # a concurrent DELETE, while it was rendered
    assert retired is not None
    retired.remove()

    assert staged.digest() == (8, hashlib.sha256(b"rendered").hexdigest())
    staged.discard()


def test_digest_matches_published_file(store: FileBlobStore) -> None:
    staged = store.stage_original(ImageId("cat"))
    staged.file.write(b"abc" * 1000)
    size, checksum = staged.digest()

    staged.publish()

    published = Path(store.original_path(ImageId("cat"))).read_bytes()
    assert (size, checksum) == (len(published), hashlib.sha256(published).hexdigest())


# Discarding


def test_discard_removes_temp_file_and_publishes_nothing(store: FileBlobStore) -> None:
    staged = store.stage_original(ImageId("cat"))
    staged.file.write(b"partial")

    staged.discard()

    assert not Path(staged.path).exists()
    assert not Path(store.original_path(ImageId("cat"))).exists()
    assert temp_files(store.root) == []


def test_discard_is_idempotent(store: FileBlobStore) -> None:
    staged = store.stage_original(ImageId("cat"))

    staged.discard()
    staged.discard()

    assert temp_files(store.root) == []


def test_discard_after_publish_keeps_published_file(store: FileBlobStore) -> None:
    staged = store.stage_original(ImageId("cat"))
    publish(staged, b"kept")

    staged.discard()

    assert Path(store.original_path(ImageId("cat"))).read_bytes() == b"kept"


def test_publish_after_discard_raises(store: FileBlobStore) -> None:
    staged = store.stage_original(ImageId("cat"))
    staged.discard()

    with pytest.raises(RuntimeError):
        staged.publish()
    assert not Path(store.original_path(ImageId("cat"))).exists()


# Opening


def test_open_of_a_missing_image_returns_none(store: FileBlobStore) -> None:
    assert store.open_original(ImageId("nobody"), ImageFormat.PNG) is None
    assert store.open_derived(spec("nobody")) is None
    assert not store.has_original(ImageId("nobody"))
    assert not store.has_derived(spec("nobody"))


def test_open_derived_under_a_regular_file_returns_none(store: FileBlobStore) -> None:
    (store.derived / "cat").write_bytes(b"x")  # where the image's directory would be

    assert store.open_derived(spec()) is None
    assert not store.has_derived(spec())


def test_open_describes_the_file(store: FileBlobStore) -> None:
    publish(store.stage_derived(spec()), b"0123456789")
    path = store.derived_path(spec())

    stored = store.open_derived(spec())

    assert stored is not None
    with stored.file:
        assert stored.file.read() == b"0123456789"
    assert stored.content_type == "image/png"
    assert stored.size == 10
    assert stored.modified.tzinfo is not None
    assert stored.modified.timestamp() == pytest.approx(os.stat(path).st_mtime)
    assert stored.etag.startswith('"')
    assert stored.etag.endswith('"')


def test_open_file_stays_readable_after_unlink(store: FileBlobStore) -> None:
    publish(store.stage_original(ImageId("cat")), b"still here")
    path = store.original_path(ImageId("cat"))
    stored = store.open_original(ImageId("cat"), ImageFormat.GIF)
    assert stored is not None
    assert stored.content_type == "image/gif"

    with stored.file:
        os.unlink(path)
        assert stored.file.read() == b"still here"


def test_open_file_stays_readable_after_delete_image(store: FileBlobStore) -> None:
    publish(store.stage_derived(spec()), b"derived bytes")
    stored = store.open_derived(spec())
    assert stored is not None

    with stored.file:
        store.delete_image(ImageId("cat"))
        assert stored.file.read() == b"derived bytes"


def test_etag_is_stable_for_the_same_file(store: FileBlobStore) -> None:
    publish(store.stage_original(ImageId("cat")), b"same")
    cat = ImageId("cat")

    first, second = store.open_original(cat, ImageFormat.PNG), store.open_original(cat, ImageFormat.PNG)

    assert first is not None
    assert second is not None
    first.file.close()
    second.file.close()
    assert first.etag == second.etag


def test_etag_changes_when_file_is_replaced(store: FileBlobStore) -> None:
    publish(store.stage_original(ImageId("cat")), b"same")
    before = store.open_original(ImageId("cat"), ImageFormat.PNG)
    assert before is not None
    before.file.close()

    publish(store.stage_original(ImageId("cat")), b"same")  # same size and content

    after = store.open_original(ImageId("cat"), ImageFormat.PNG)
    assert after is not None
    after.file.close()
    assert after.etag != before.etag


@pytest.mark.parametrize(
    ("etag_style", "formula"),
    [
        # Apache's FileETag MTime Size: size, then mtime in microseconds.
        ("apache", lambda size, mtime_ns: f'"{size:x}-{mtime_ns // 1000:x}"'),
        # nginx: mtime in whole seconds, then size.
        ("nginx", lambda size, mtime_ns: f'"{mtime_ns // 10**9:x}-{size:x}"'),
    ],
)
def test_derived_etag_is_the_front_servers_formula(
    tmp_path: Path, etag_style: str, formula: Callable[[int, int], str]
) -> None:
    blobs = FileBlobStore(tmp_path / "data", etag_style)  # type: ignore[arg-type]
    blobs.prepare()
    publish(blobs.stage_derived(spec()), b"0123456789")
    mtime_ns = 1_700_000_000_123_456_789
    os.utime(blobs.derived_path(spec()), ns=(mtime_ns, mtime_ns))

    stored = blobs.open_derived(spec())

    assert stored is not None
    stored.file.close()
    assert stored.etag == formula(10, mtime_ns)


# Deleting


def test_delete_image_removes_original_and_every_derived_file(
    store: FileBlobStore, inventory: FileInventory
) -> None:
    publish(store.stage_original(ImageId("cat")), b"original")
    for derived in (spec(), spec(width=30, height=30), spec(fmt="jpeg"), spec(fmt="webp")):
        publish(store.stage_derived(derived), b"derived")
    publish(store.stage_original(ImageId("dog")), b"other")
    publish(store.stage_derived(spec("dog")), b"other derived")

    store.delete_image(ImageId("cat"))

    assert not Path(store.original_path(ImageId("cat"))).exists()
    assert not (store.derived / "cat").exists()
    assert not [p for p in store.derived.iterdir() if p.name.startswith(".trash-")]
    assert leftovers(inventory) == set()
    assert Path(store.original_path(ImageId("dog"))).read_bytes() == b"other"
    assert Path(store.derived_path(spec("dog"))).read_bytes() == b"other derived"


def test_delete_image_of_unknown_id_is_fine(store: FileBlobStore) -> None:
    store.delete_image(ImageId("nobody"))

    assert list(store.originals.iterdir()) == []
    assert list(store.derived.iterdir()) == []


def test_delete_image_with_only_derived_files(store: FileBlobStore) -> None:
    publish(store.stage_derived(spec()), b"derived")

    store.delete_image(ImageId("cat"))

    assert not (store.derived / "cat").exists()


def test_delete_image_refuses_unvalidated_id(store: FileBlobStore) -> None:
    publish(store.stage_original(ImageId("cat")), b"original")

    with pytest.raises(InvalidImageId):
        store.delete_image("..")  # type: ignore[arg-type]

    assert store.originals.is_dir()
    assert Path(store.original_path(ImageId("cat"))).exists()


def test_staged_derived_file_can_be_discarded_after_delete_image(
    store: FileBlobStore, inventory: FileInventory
) -> None:
    staged = store.stage_derived(spec())
    staged.file.write(b"half written")

    store.delete_image(ImageId("cat"))
    staged.discard()

    assert not (store.derived / "cat").exists()
    assert leftovers(inventory) == set()


def test_staged_derived_file_cannot_publish_after_delete_image(
    store: FileBlobStore, inventory: FileInventory
) -> None:
    staged = store.stage_derived(spec())
    staged.file.write(b"half written")
    store.delete_image(ImageId("cat"))

    with pytest.raises(StorageFailed, match="No such file or directory"):
        staged.publish()
    staged.discard()

    assert not Path(store.derived_path(spec())).exists()
    assert leftovers(inventory) == set()


# Health and leftovers


def test_list_leftovers_lists_temporary_files_of_a_crash(
    store: FileBlobStore, inventory: FileInventory
) -> None:
    crashed_original = store.stage_original(ImageId("cat"))
    crashed_derived = store.stage_derived(spec("dog"))
    publish(store.stage_original(ImageId("fine")), b"published")
    # A crash: neither staged file is published or discarded; only their descriptors are closed.
    crashed_original.file.close()
    crashed_derived.file.close()

    found = leftovers(inventory)

    assert found == {Path(crashed_original.path), Path(crashed_derived.path)}


def test_list_leftovers_lists_leftover_trash_directory(
    store: FileBlobStore, inventory: FileInventory
) -> None:
    trash = store.derived / ".trash-deadbeef"
    trash.mkdir()

    assert trash in leftovers(inventory)


def test_list_leftovers_lists_derived_files_retired_and_never_removed(
    store: FileBlobStore, inventory: FileInventory
) -> None:
    publish(store.stage_derived(spec()), b"d")

    retired = store.retire_derived(ImageId("cat"))  # a delete that crashed before removing them

    assert retired is not None
    assert leftovers(inventory) == {Path(retired.path)}


def test_list_leftovers_is_empty_on_a_clean_store(store: FileBlobStore, inventory: FileInventory) -> None:
    publish(store.stage_original(ImageId("cat")), b"x")
    publish(store.stage_derived(spec()), b"y")

    assert leftovers(inventory) == set()


def test_listings_on_missing_directories_are_empty(tmp_path: Path) -> None:
    inventory = FileInventory(FileBlobStore(tmp_path / "never-prepared"))

    assert inventory.list_leftovers() == []
    assert inventory.list_originals() == []
    assert inventory.list_derived() == []


def test_check_passes_on_prepared_store(store: FileBlobStore) -> None:
    store.check()


@pytest.mark.parametrize("missing", ["derived", "originals"])
def test_check_raises_service_unavailable_when_a_directory_is_missing(
    store: FileBlobStore, missing: str
) -> None:
    shutil.rmtree(store.root / missing)

    with pytest.raises(ServiceUnavailable, match=missing):
        store.check()


def test_check_raises_service_unavailable_when_directory_is_a_file(store: FileBlobStore) -> None:
    shutil.rmtree(store.derived)
    store.derived.write_bytes(b"")

    with pytest.raises(ServiceUnavailable):
        store.check()


def test_list_leftovers_gives_modification_times(store: FileBlobStore, inventory: FileInventory) -> None:
    crashed = store.stage_original(ImageId("cat"))
    crashed.file.close()

    [leftover] = inventory.list_leftovers()

    assert leftover.name == crashed.path
    assert leftover.modified.tzinfo is not None
    assert leftover.modified.timestamp() == pytest.approx(os.stat(crashed.path).st_mtime)
    assert leftover.owner.endswith(f":{os.getpid()}:")


def test_list_leftovers_owner_of_untagged_name_is_unknown(
    store: FileBlobStore, inventory: FileInventory
) -> None:
    (store.originals / ".tmp-untagged").write_bytes(b"")

    [leftover] = inventory.list_leftovers()

    assert leftover.owner == ""


def test_staged_file_name_carries_host_and_pid(store: FileBlobStore) -> None:
    crashed = store.stage_derived(spec())
    crashed.file.close()

    name = Path(crashed.path).name
    assert name.startswith(f".tmp-{owners.file_tag()}")
    assert owners.owner_of_tag(name.removeprefix(".tmp-")) == owners.new_owner().rsplit(":", 1)[0] + ":"
    assert f"~{os.getpid()}~" in name


# Listing what is on disk


def test_list_originals_lists_published_originals_only(
    store: FileBlobStore, inventory: FileInventory
) -> None:
    publish(store.stage_original(ImageId("cat")), b"x")
    publish(store.stage_original(ImageId("dog")), b"y")
    store.stage_original(ImageId("crashed")).file.close()
    (store.originals / "not.an.id").write_bytes(b"stray")
    (store.originals / "a-directory").mkdir()

    listed = dict(inventory.list_originals())

    assert set(listed) == {"cat", "dog"}
    assert all(isinstance(image_id, ImageId) for image_id in listed)
    assert listed[ImageId("cat")].timestamp() == pytest.approx(
        os.stat(store.original_path(ImageId("cat"))).st_mtime
    )


def test_list_derived_lists_published_derived_files(store: FileBlobStore, inventory: FileInventory) -> None:
    published = {spec(), spec("a-b", 30, 40, "jpg"), spec("dog", fmt="webp")}
    for derived in published:
        publish(store.stage_derived(derived), b"d")
    store.stage_derived(spec("crashed")).file.close()
    (store.derived / "cat" / "notes.txt").write_bytes(b"stray")
    (store.derived / ".trash-deadbeef").mkdir()

    listed = {derived for derived, _ in inventory.list_derived()}

    assert listed == published


def test_list_derived_lists_images_the_store_serves(store: FileBlobStore, inventory: FileInventory) -> None:
    publish(store.stage_derived(spec(fmt="jpeg")), b"d")

    [(derived, _)] = inventory.list_derived()

    assert Path(store.derived_path(derived)).is_file()
    assert store.has_derived(derived)


@pytest.mark.parametrize("name", ["010x20.png", "10x20.jpeg"])
def test_list_derived_ignores_non_canonical_file_names(
    store: FileBlobStore, inventory: FileInventory, name: str
) -> None:
    (store.derived / "cat").mkdir()
    (store.derived / "cat" / name).write_bytes(b"stray")

    assert inventory.list_derived() == []


# Removing what a listing found


def test_remove_leftover_deletes_a_leftover_temp_file(store: FileBlobStore, inventory: FileInventory) -> None:
    crashed = store.stage_original(ImageId("cat"))
    crashed.file.close()

    inventory.remove_leftover(leftover_named(inventory, crashed.path))

    assert inventory.list_leftovers() == []


def test_remove_leftover_deletes_a_leftover_trash_tree(
    store: FileBlobStore, inventory: FileInventory
) -> None:
    trash = store.derived / ".trash-deadbeef"
    (trash / "cat").mkdir(parents=True)
    (trash / "cat" / "10x20.png").write_bytes(b"d")

    inventory.remove_leftover(leftover_named(inventory, trash))

    assert not trash.exists()


def test_remove_leftover_of_missing_path_is_fine(store: FileBlobStore, inventory: FileInventory) -> None:
    inventory.remove_leftover(Leftover(str(store.originals / ".tmp-gone"), datetime.now(UTC), ""))


def test_remove_leftover_refuses_path_outside_data_directory(
    inventory: FileInventory, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    listed = datetime.fromtimestamp(victim.stat().st_mtime, UTC)

    with pytest.raises(ValueError, match="outside"):
        inventory.remove_leftover(Leftover(str(victim), listed, ""))

    assert victim.exists()


def test_remove_leftover_refuses_dot_dot_escape_from_data_directory(
    store: FileBlobStore, inventory: FileInventory, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    listed = datetime.fromtimestamp(victim.stat().st_mtime, UTC)

    with pytest.raises(ValueError, match="outside"):
        inventory.remove_leftover(Leftover(str(store.root / ".." / "victim"), listed, ""))

    assert victim.exists()


def test_an_empty_image_directory_is_a_leftover_removed_only_while_empty(
    store: FileBlobStore, inventory: FileInventory
) -> None:
    empty = store.derived / "gone"
    empty.mkdir()
    leftover = leftover_named(inventory, empty)
    assert leftover.owner == ""
    (empty / "10x10.png").write_bytes(b"a generation got there first")
    os.utime(empty, (leftover.modified.timestamp(), leftover.modified.timestamp()))  # same mtime, for sure
    inventory.remove_leftover(leftover)
    assert (empty / "10x10.png").exists()  # not empty any more: kept


def test_an_empty_image_directory_is_removed(store: FileBlobStore, inventory: FileInventory) -> None:
    empty = store.derived / "gone"
    empty.mkdir()

    inventory.remove_leftover(leftover_named(inventory, empty))

    assert not empty.exists()


def test_remove_original_removes_the_file_listed(store: FileBlobStore, inventory: FileInventory) -> None:
    publish(store.stage_original(ImageId("cat")), b"left by a crashed upload")
    [(image_id, listed)] = inventory.list_originals()

    inventory.remove_original(image_id, listed)

    assert not store.has_original(ImageId("cat"))
    inventory.remove_original(image_id, listed)  # missing: fine


def test_remove_original_leaves_a_file_changed_since_it_was_listed(
    store: FileBlobStore, inventory: FileInventory
) -> None:
    staged = store.stage_original(ImageId("cat"))
    staged.file.write(b"old")
    staged.publish()
    (listed,) = [modified for image_id, modified in inventory.list_originals() if image_id == "cat"]
    fresh = store.stage_original(ImageId("cat"))
    fresh.file.write(b"a retried upload")
    os.utime(fresh.path, (1_000_000_000, 1_000_000_000))  # a different modification time, for sure
    fresh.publish()
    inventory.remove_original(ImageId("cat"), listed)
    assert Path(store.original_path(ImageId("cat"))).read_bytes() == b"a retried upload"


def test_remove_derived_removes_it_unless_changed_since_listed(
    store: FileBlobStore, inventory: FileInventory
) -> None:
    publish(store.stage_derived(spec()), b"old")
    [(derived, listed)] = inventory.list_derived()
    os.utime(store.derived_path(derived), (1_000_000_000, 1_000_000_000))  # published again since

    inventory.remove_derived(derived, listed)
    assert store.has_derived(derived)

    inventory.remove_derived(derived)  # unconditionally
    assert not store.has_derived(derived)
    inventory.remove_derived(derived)  # missing: fine


def test_retire_derived_hides_every_derived_file_at_once(store: FileBlobStore) -> None:
    for name in ("10x10.png", "20x20.jpg"):
        publish(store.stage_derived(DerivedSpec.parse(f"cat-{name}")), b"x")
    retired = store.retire_derived(ImageId("cat"))
    assert retired is not None
    assert not (store.derived / "cat").exists()
    assert not store.has_derived(DerivedSpec.parse("cat-10x10.png"))
    assert store.open_derived(DerivedSpec.parse("cat-20x20.jpg")) is None
    assert store.retire_derived(ImageId("cat")) is None
    retired.remove()
    assert not Path(retired.path).exists()
    retired.remove()  # twice: fine
