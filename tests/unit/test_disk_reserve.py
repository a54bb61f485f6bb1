"""The disk reserve and storage failures, in the service against fakes: what is refused for room and
when, that 413 wins over 507, and that a failing store leaves the registry true. The same on a real
filesystem: tests/integration/test_disk_full.py."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path

import pytest

from pymager.config import ConfigError, Settings, load_settings
from pymager.domain import DerivedSpec, ImageId, OriginalStatus, Upload
from pymager.errors import (
    ImageAlreadyExists,
    InvalidImageId,
    ServiceUnavailable,
    StorageFailed,
    StorageFull,
    UploadTooLarge,
    storage_failure,
)
from pymager.web.errors import error_problem
from tests.unit.fakes import fake_image
from tests.unit.world import World

MIB = 1024 * 1024
RESERVE = 4 * MIB


def _never_called() -> Upload:
    raise AssertionError("the upload body was read")


def _reserved(free_above_reserve: int, **overrides: object) -> World:
    """A world with ``min_free_bytes = RESERVE`` whose store has ``free_above_reserve`` bytes more free."""
    world = World(min_free_bytes=RESERVE, **overrides)
    world.blobs.capacity = RESERVE + free_above_reserve
    return world


def _upload(world: World, image_id: str, data: bytes, declared: int | None = None) -> None:
    world.service.save_original(image_id, lambda: Upload(io.BytesIO(data)), declared)


def _big_image(size: int) -> bytes:
    """Bytes of ``size`` that the fake processor identifies as an image."""
    head = fake_image()
    return head + b"\0" * (size - len(head))


# -- the setting -------------------------------------------------------------------------------------


def test_min_free_bytes_defaults_to_100_mib() -> None:
    assert Settings.for_directory(Path("d")).min_free_bytes == 100 * MIB


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("1048576", MIB)])
def test_min_free_bytes_is_read(tmp_path: Path, text: str, value: int) -> None:
    path = tmp_path / "pymager.ini"
    path.write_text(f"[pymager]\nmin_free_bytes = {text}\n")
    assert load_settings(path).min_free_bytes == value


@pytest.mark.parametrize("text", ["-1", "lots", "1.5"])
def test_min_free_bytes_must_be_a_count_of_bytes(tmp_path: Path, text: str) -> None:
    path = tmp_path / "pymager.ini"
    path.write_text(f"[pymager]\nmin_free_bytes = {text}\n")
    with pytest.raises(ConfigError, match=rf"\[pymager\] min_free_bytes = '{text}' is invalid"):
        load_settings(path)


# -- uploads -----------------------------------------------------------------------------------------


def test_upload_declared_past_the_reserve_is_refused_before_its_body_is_read() -> None:
    world = _reserved(MIB)
    with pytest.raises(StorageFull, match="no room for this upload: the server keeps 4194304 bytes free"):
        world.service.save_original("sample", _never_called, MIB + 1)
    assert world.leaves_nothing("sample")


def test_upload_declared_within_the_reserve_is_stored() -> None:
    world = _reserved(MIB)
    _upload(world, "sample", fake_image(), declared=MIB)
    assert world.registry.tables.originals["sample"].status is OriginalStatus.READY


def test_upload_refused_for_room_only_after_its_id_is_checked() -> None:
    world = _reserved(MIB)
    _upload(world, "sample", fake_image())
    with pytest.raises(InvalidImageId):
        world.service.save_original("bad id", _never_called, 10 * MIB)
    with pytest.raises(ImageAlreadyExists):
        world.service.save_original("sample", _never_called, 10 * MIB)


def test_chunked_upload_crossing_the_reserve_is_refused_while_copied_and_leaves_nothing() -> None:
    world = _reserved(int(1.5 * MIB))
    with pytest.raises(StorageFull, match="no room for this upload"):
        _upload(world, "sample", _big_image(2 * MIB))
    assert world.leaves_nothing("sample")


def test_chunked_upload_within_the_reserve_is_stored() -> None:
    world = _reserved(3 * MIB)
    _upload(world, "sample", _big_image(2 * MIB))
    assert len(world.blobs.files["originals/sample"]) == 2 * MIB


def test_upload_over_max_upload_bytes_is_413_even_when_the_reserve_is_crossed_first() -> None:
    world = _reserved(MIB // 2, max_upload_bytes=3 * MIB)
    with pytest.raises(UploadTooLarge, match="max_upload_bytes"):
        _upload(world, "sample", _big_image(3 * MIB + 1))
    assert world.leaves_nothing("sample")


def test_upload_over_max_upload_bytes_is_413_even_when_the_disk_fills_first() -> None:
    world = World(min_free_bytes=0, max_upload_bytes=3 * MIB)
    stage = world.blobs.stage_original

    def full_after_a_mib(image_id: ImageId):  # type: ignore[no-untyped-def]
        staged = stage(image_id)
        write = staged.file.write

        def limited(data: bytes) -> int:
            if staged.file.tell() + len(data) > MIB:
                raise StorageFull("no room while storing the original: No space left on device")
            return write(data)

        staged.file.write = limited  # type: ignore[method-assign]
        return staged

    world.blobs.stage_original = full_after_a_mib  # type: ignore[method-assign]
    with pytest.raises(UploadTooLarge):
        _upload(world, "sample", _big_image(3 * MIB + 1))
    with pytest.raises(StorageFull, match="No space left on device"):
        _upload(world, "sample", _big_image(2 * MIB))
    assert world.leaves_nothing("sample")


def test_upload_declared_over_max_upload_bytes_is_413_not_507_when_its_file_is() -> None:
    world = _reserved(0, max_upload_bytes=2 * MIB)
    with pytest.raises(UploadTooLarge):
        _upload(world, "sample", _big_image(2 * MIB + 1), declared=2 * MIB + 200)
    with pytest.raises(StorageFull):  # the envelope made it larger, not the file
        _upload(world, "sample", _big_image(2 * MIB), declared=2 * MIB + 200)
    assert world.leaves_nothing("sample")


def test_upload_whose_publication_fails_records_nothing() -> None:
    world = World()
    stage = world.blobs.stage_original

    def failing_publish(image_id: ImageId):  # type: ignore[no-untyped-def]
        staged = stage(image_id)

        def publish() -> None:
            raise StorageFailed("the storage failed while storing the original: Input/output error")

        staged.publish = publish  # type: ignore[method-assign]
        return staged

    world.blobs.stage_original = failing_publish  # type: ignore[method-assign]
    with pytest.raises(StorageFailed):
        world.upload("sample")
    assert world.leaves_nothing("sample")


# -- generation --------------------------------------------------------------------------------------


def test_generation_keeps_a_quarter_of_the_reserve() -> None:
    world = _reserved(MIB)
    world.upload("sample")
    world.blobs.capacity -= world.blobs.free_bytes() - (RESERVE // 4 - 1)  # a byte under a quarter free

    with pytest.raises(StorageFull, match=r"no room for generating sample-10x10\.png"):
        world.service.derived_file("sample-10x10.png")

    assert not world.registry.tables.derived  # refused before the claim: no row to release
    assert not world.blobs.temporary
    assert not world.processor.derive_calls
    world.blobs.capacity += 1
    assert world.service.derived_file("sample-10x10.png").size > 0


def test_uploads_stop_at_the_reserve_while_generation_goes_on() -> None:
    world = _reserved(MIB)
    world.upload("sample")
    world.blobs.capacity -= world.blobs.free_bytes() - RESERVE // 2  # half the reserve free
    with pytest.raises(StorageFull):
        world.upload("other")
    assert world.service.derived_file("sample-10x10.png").size > 0


def test_hits_are_served_from_a_full_store() -> None:
    world = World()
    world.upload("sample")
    world.service.derived_file("sample-10x10.png")
    world.blobs.capacity = 0
    assert world.service.derived_file("sample-10x10.png").size > 0


def test_generation_whose_publication_fails_releases_its_claim_and_succeeds_once_fixed() -> None:
    world = World()
    world.upload("sample")
    stage = world.blobs.stage_derived
    failure: list[Exception] = [StorageFull("no room while storing the derived image: Disk quota exceeded")]

    def failing_publish(spec: DerivedSpec):  # type: ignore[no-untyped-def]
        staged = stage(spec)
        publish = staged.publish

        def maybe_fail() -> None:
            if failure:
                raise failure[0]
            publish()

        staged.publish = maybe_fail  # type: ignore[method-assign]
        return staged

    world.blobs.stage_derived = failing_publish  # type: ignore[method-assign]
    for error in (StorageFull("full"), StorageFailed("broken")):
        failure[:] = [error]
        with pytest.raises(type(error)):
            world.service.derived_file("sample-10x10.png")
        assert not world.registry.tables.derived
        assert not world.blobs.temporary
        assert "derived/sample/10x10.png" not in world.blobs.files
    failure.clear()
    assert world.service.derived_file("sample-10x10.png").size > 0


# -- delete ------------------------------------------------------------------------------------------


def test_delete_whose_retirement_fails_changes_nothing() -> None:
    world = World()
    world.upload("sample")
    world.service.derived_file("sample-10x10.png")

    def fail(image_id: ImageId) -> None:
        raise StorageFailed("the storage failed while deleting the image: Read-only file system")

    world.blobs.retire_derived = fail  # type: ignore[assignment]
    with pytest.raises(StorageFailed):
        world.service.delete_original("sample")
    assert world.registry.tables.originals["sample"].status is OriginalStatus.READY
    assert world.service.derived_file("sample-10x10.png").size > 0


def test_delete_whose_removal_fails_keeps_its_deleting_row_for_a_retry() -> None:
    world = World()
    world.upload("sample")
    world.service.derived_file("sample-10x10.png")
    delete_image = world.blobs.delete_image

    def fail(image_id: ImageId) -> None:
        raise StorageFailed("the storage failed while deleting the image: Input/output error")

    world.blobs.delete_image = fail  # type: ignore[method-assign]
    with pytest.raises(StorageFailed):
        world.service.delete_original("sample")
    assert world.registry.tables.originals["sample"].status is OriginalStatus.DELETING
    assert world.problems() == ["unfinished delete"]

    world.blobs.delete_image = delete_image  # type: ignore[method-assign]
    world.service.delete_original("sample")
    assert world.leaves_nothing("sample")


# -- health ------------------------------------------------------------------------------------------


def test_health_reports_full_below_the_reserve_and_still_answers() -> None:
    world = _reserved(0)
    assert world.service.health() == {"registry": "ok", "storage": "ok"}
    world.blobs.capacity -= 1
    assert world.service.health() == {"registry": "ok", "storage": "full"}


def test_health_without_a_reserve_is_full_only_when_nothing_is_free() -> None:
    world = World(min_free_bytes=0)
    world.blobs.capacity = 1
    assert world.service.health()["storage"] == "ok"
    world.blobs.capacity = 0
    assert world.service.health()["storage"] == "full"


# -- the failures and their problems -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "failure"),
    [
        (errno.ENOSPC, StorageFull),
        (errno.EDQUOT, StorageFull),
        (errno.EIO, StorageFailed),
        (errno.EROFS, StorageFailed),
        (errno.EACCES, StorageFailed),
    ],
)
def test_an_oserror_of_the_storage_is_full_or_failed(code: int, failure: type[Exception]) -> None:
    error = storage_failure(OSError(code, "strerror", "/srv/data/originals/secret"), "storing the original")
    assert type(error) is failure
    assert "while storing the original: strerror" in error.detail
    assert "/srv" not in error.detail  # clients read the detail


def test_a_failing_store_is_unavailable_to_whoever_handles_unavailability() -> None:
    assert issubclass(StorageFailed, ServiceUnavailable)


@pytest.mark.parametrize(
    ("failure", "status", "problem", "retry_after"),
    [
        (StorageFull("no room"), 507, "storage-full", "60"),
        (StorageFailed("broken"), 503, "storage-failed", "30"),
    ],
)
def test_storage_problems_carry_retry_after(
    failure: StorageFull | StorageFailed, status: int, problem: str, retry_after: str
) -> None:
    got_status, headers, body = error_problem(failure, "POST", "/original/a")
    assert got_status == status
    assert ("Retry-After", retry_after) in headers
    assert json.loads(body)["type"] == f"urn:pymager:problem:{problem}"
