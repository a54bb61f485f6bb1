"""The consistency check finds what a crash at each step of a write leaves, and repairs it."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from pymager.domain import DerivedSpec, DerivedStatus, ImageId, OriginalStatus, Upload
from pymager.owners import new_owner
from tests.unit.fakes import fake_image
from tests.unit.world import NOW, World

OLD = NOW - timedelta(minutes=5)  # older than generation_timeout (60 s)


@pytest.fixture
def world() -> World:
    world = World()
    world.now = OLD  # what the service writes is old by the time the check runs, at NOW
    world.blobs.mtime = OLD
    return world


def test_a_consistent_store_has_no_findings(world: World) -> None:
    world.upload("a")
    world.service.derived_file("a-10x10.png")
    assert world.problems() == []


def test_check_without_repair_changes_nothing(world: World) -> None:
    world.upload("a")
    del world.blobs.files["originals/a"]
    before = (dict(world.blobs.files), world.registry.commits)
    assert world.problems() == ["original row without its file"]
    assert (dict(world.blobs.files), world.registry.commits) == before


def test_an_unfinished_delete_is_completed(world: World) -> None:
    world.upload("a")
    world.service.derived_file("a-10x10.png")
    with world.registry.unit_of_work(write=True) as uow:
        uow.originals.set_status(ImageId("a"), OriginalStatus.DELETING, OLD)
        uow.commit()
    assert world.problems(repair=True) == ["unfinished delete"]
    assert world.blobs.files == {}
    assert world.registry.tables.originals == {}
    assert world.registry.tables.derived == {}
    assert world.problems() == []


def test_an_original_row_without_its_file_is_removed_with_its_derived_images(world: World) -> None:
    world.upload("a")
    world.service.derived_file("a-10x10.png")
    del world.blobs.files["originals/a"]
    assert world.problems(repair=True) == ["original row without its file"]
    assert world.blobs.files == {}
    assert world.registry.tables.originals == {}
    assert world.problems() == []


def test_an_old_original_file_without_a_row_is_removed_but_a_young_one_is_left(world: World) -> None:
    world.blobs.files["originals/orphan"] = fake_image()
    assert world.problems(repair=True) == ["original file without a row"]
    assert world.blobs.files == {}
    world.blobs.files["originals/young"] = fake_image()
    world.blobs.mtime = NOW  # as if an upload were publishing it right now
    assert world.problems() == []


def test_a_ready_derived_row_without_its_file_is_removed(world: World) -> None:
    world.upload("a")
    world.service.derived_file("a-10x10.png")
    del world.blobs.files["derived/a/10x10.png"]
    assert world.problems(repair=True) == ["derived row without its file"]
    assert world.registry.tables.derived == {}
    assert world.problems() == []


def test_a_stale_claim_and_the_file_it_left_are_removed(world: World) -> None:
    world.upload("a")
    world.claim("a-10x10.png", "other-host:1:abc", OLD)
    world.blobs.files["derived/a/10x10.png"] = b"published before the crash, never marked ready"
    assert world.problems(repair=True) == ["stale claim by other-host:1:abc"]
    assert world.registry.tables.derived == {}
    assert "derived/a/10x10.png" not in world.blobs.files


def test_a_live_claim_is_left_alone(world: World) -> None:
    world.upload("a")
    world.claim("a-10x10.png", "other-host:1:abc", NOW)
    world.claim("a-20x20.png", new_owner(), NOW)  # this very process
    assert world.problems() == []


def test_a_claim_of_a_dead_process_on_this_host_is_stale_at_once(world: World) -> None:
    world.upload("a")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    host = new_owner().split(":")[0]
    world.claim("a-10x10.png", f"{host}:{int(dead.stdout)}:abc", NOW)
    assert world.problems(repair=True) == [f"stale claim by {host}:{int(dead.stdout)}:abc"]
    assert world.registry.tables.derived == {}


def test_derived_files_without_rows_are_removed(world: World) -> None:
    world.upload("a")
    world.blobs.files["derived/a/10x10.png"] = b"no row for me"
    world.blobs.files["derived/gone/10x10.png"] = b"no original for me"
    assert sorted(world.problems(repair=True)) == ["derived file without a row"] * 2
    assert sorted(world.blobs.files) == ["originals/a"]


def test_old_temporary_files_are_removed_young_ones_left(world: World) -> None:
    world.upload("a")
    world.blobs.stage_derived(DerivedSpec.parse("a-10x10.png"))  # a crash: never published
    assert world.problems(repair=True) == ["leftover temporary file or directory"]
    assert world.blobs.temporary == {}
    world.blobs.stage_original(ImageId("b"))
    world.blobs.mtime = NOW
    assert world.problems() == []


def test_pending_and_ready_records_are_told_apart(world: World) -> None:
    world.upload("a")
    world.service.derived_file("a-10x10.png")
    record = world.registry.tables.derived[("a", 10, 10, "PNG", "fill")]
    assert record.status is DerivedStatus.READY
    assert world.problems() == []


def _after_the_snapshot(world: World, change: Callable[[], None]) -> None:
    """Run ``change`` once the repairer has read the registry and listed the files, before any fix."""
    listing = world.inventory.list_derived

    def list_then_change() -> list[tuple[DerivedSpec, datetime]]:
        found = listing()
        change()
        return found

    world.inventory.list_derived = list_then_change  # type: ignore[method-assign]


def test_an_id_deleted_and_uploaded_again_after_the_snapshot_is_left_alone(world: World) -> None:
    world.upload("x")
    with world.registry.unit_of_work(write=True) as uow:  # a live DELETE, half-way
        uow.originals.set_status(ImageId("x"), OriginalStatus.DELETING, OLD)
        uow.commit()

    def finish_and_upload_again() -> None:
        world.service.delete_original("x")
        world.service.save_original("x", lambda: Upload(io.BytesIO(fake_image(width=99))))

    _after_the_snapshot(world, finish_and_upload_again)
    assert world.problems(repair=True) == ["unfinished delete"]
    assert world.registry.tables.originals["x"].original.width == 99
    assert world.service.original_file("x").file.read() == fake_image(width=99)


def test_an_orphan_file_whose_upload_is_retried_after_the_snapshot_is_left_alone(world: World) -> None:
    world.blobs.files["originals/y"] = b"left by a crashed upload"
    _after_the_snapshot(world, lambda: world.upload("y"))
    assert world.problems(repair=True) == ["original file without a row"]
    assert world.service.original_file("y").file.read() == fake_image()


def test_a_stale_claim_taken_over_after_the_snapshot_is_left_alone(world: World) -> None:
    world.upload("a")
    spec = world.claim("a-10x10.png", "other-host:1:abc", OLD)
    _after_the_snapshot(world, lambda: world.service.derived_file(spec.key))
    assert world.problems(repair=True) == ["stale claim by other-host:1:abc"]
    assert world.registry.tables.derived[("a", 10, 10, "PNG", "fill")].status is DerivedStatus.READY
    assert "derived/a/10x10.png" in world.blobs.files


def test_a_claim_of_a_live_process_on_this_host_is_kept_however_old(world: World) -> None:
    world.upload("a")
    world.claim("a-10x10.png", new_owner(), OLD - timedelta(days=1))  # this process: alive
    assert world.problems() == []


def test_derived_images_retired_by_a_delete_that_crashed_are_removed(world: World) -> None:
    world.upload("a")
    world.service.derived_file("a-10x10.png")
    # A DELETE that died after its first transaction: marked, derived images retired, never removed.
    with world.registry.unit_of_work(write=True) as uow:
        uow.originals.set_status(ImageId("a"), OriginalStatus.DELETING, OLD)
        world.blobs.retire_derived(ImageId("a"))
        uow.commit()
    assert sorted(world.problems(repair=True)) == [
        "leftover temporary file or directory",
        "unfinished delete",
    ]
    assert world.leaves_nothing("a")
    assert world.problems() == []


# -- purging derived images ----------------------------------------------------------------------


def test_purge_removes_the_ready_derived_images_of_the_given_ids_only(world: World) -> None:
    for image_id in ("a", "b"):
        world.upload(image_id)
        world.service.derived_file(f"{image_id}-10x10.png").file.close()
        world.service.derived_file(f"{image_id}-800x0-fit.jpg").file.close()

    purged = world.repairer.purge_derived({ImageId("a")})

    assert sorted(spec.key for spec in purged) == ["a-10x10.png", "a-800x0-fit.jpg"]
    assert not [name for name in world.blobs.files if name.startswith("derived/a/")]
    assert [key[0] for key in world.registry.tables.derived] == ["b", "b"]
    assert world.problems() == []  # nothing left half-done
    world.service.derived_file("a-10x10.png").file.close()  # made again on its next request
    assert len(world.processor.derive_calls) == 5


def test_purge_of_every_original_leaves_generations_in_progress_alone(world: World) -> None:
    world.upload("a")
    world.service.derived_file("a-10x10.png").file.close()
    world.registry.tables.derived[("a", 20, 20, "PNG", "fill")] = replace(
        world.registry.tables.derived[("a", 10, 10, "PNG", "fill")],
        spec=DerivedSpec.parse("a-20x20.png"),
        status=DerivedStatus.PENDING,
        bytes=None,
        checksum=None,
    )

    purged = world.repairer.purge_derived(None)

    assert [spec.key for spec in purged] == ["a-10x10.png"]
    assert list(world.registry.tables.derived) == [("a", 20, 20, "PNG", "fill")]  # the claim is kept
