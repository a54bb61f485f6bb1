"""Reduced copies: published with their original or not at all, removed with it, derived from when
enough, known to the consistency check, and made for older originals by the backfill."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from pymager.domain import ImageFormat, ImageId, Traits
from pymager.errors import CorruptImage, ImageAlreadyExists, StorageFailed
from tests.unit.fakes import FakeStagedFile, fake_image
from tests.unit.world import NOW, World

OLD = NOW - timedelta(minutes=5)  # older than generation_timeout (60 s) when the check runs


@pytest.fixture
def world() -> World:
    # fake_image() is 40x30: both copies apply.
    world = World(reduced_copies=(20, 10))
    world.now = OLD
    world.blobs.mtime = OLD
    return world


def _forget_copies(world: World, image_id: str, undescribed: bool = False) -> None:
    """Make ``image_id`` look stored before reduced copies existed (and, with ``undescribed``, before
    its facts were recorded)."""
    record = world.registry.tables.originals[image_id]
    original = replace(record.original, reduced=None)
    if undescribed:
        original = replace(original, traits=None, upright=None, placeholder=None)
    world.registry.tables.originals[image_id] = replace(record, original=original)
    for name in [name for name in world.blobs.files if name.startswith(f"reduced/{image_id}/")]:
        del world.blobs.files[name]


def test_upload_publishes_its_reduced_copies_and_records_them(world: World) -> None:
    world.upload("a")
    assert world.blobs.files["reduced/a/20"] == b"REDUCED:20:" + fake_image()
    assert world.blobs.files["reduced/a/10"] == b"REDUCED:10:" + fake_image()
    assert world.registry.tables.originals["a"].original.reduced == (20, 10)
    assert not world.blobs.temporary


def test_upload_makes_no_copy_as_large_as_the_original() -> None:
    world = World(reduced_copies=(40, 10))
    world.upload("a")
    assert [name for name in world.blobs.files if name.startswith("reduced/")] == ["reduced/a/10"]
    assert world.registry.tables.originals["a"].original.reduced == (10,)


def test_upload_with_reduced_copy_off_makes_none_and_records_none() -> None:
    world = World(reduced_copies=(20, 10), reduced_copy=False)
    world.upload("a")
    assert not any(name.startswith("reduced/") for name in world.blobs.files)
    assert world.registry.tables.originals["a"].original.reduced is None
    assert world.problems() == []  # not "not yet backfilled": there is nothing to backfill


def test_a_rejected_upload_publishes_no_copy(world: World) -> None:
    with pytest.raises(CorruptImage):
        world.upload("a", b"CORRUPT")
    assert world.leaves_nothing("a")
    assert not any(name.startswith("reduced/") for name in world.blobs.files)


def test_an_upload_losing_the_race_for_its_id_publishes_no_copy(world: World) -> None:
    world.upload("a", fake_image(width=40))
    original = world.registry.tables.originals.pop("a")  # the check before the copy sees no row …
    copies = {name: data for name, data in world.blobs.files.items() if name.startswith("reduced/")}

    real_add = world.registry.unit_of_work

    def add_back(write: bool = False):  # type: ignore[no-untyped-def]
        world.registry.tables.originals["a"] = original  # … and the other upload commits meanwhile
        return real_add(write)

    world.registry.unit_of_work = add_back  # type: ignore[method-assign]
    with pytest.raises(ImageAlreadyExists):
        world.upload("a", fake_image(width=50))
    world.registry.unit_of_work = real_add  # type: ignore[method-assign]
    assert {name: data for name, data in world.blobs.files.items() if name.startswith("reduced/")} == copies
    assert not world.blobs.temporary


def test_an_upload_failing_to_publish_its_original_records_nothing_and_its_copies_are_repaired(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_publish = FakeStagedFile.publish

    def publish(staged: FakeStagedFile) -> None:
        if staged.name.startswith("originals/"):
            raise StorageFailed("fake I/O error publishing the original")
        real_publish(staged)

    monkeypatch.setattr(FakeStagedFile, "publish", publish)
    with pytest.raises(StorageFailed):
        world.upload("a")
    monkeypatch.undo()
    assert "a" not in world.registry.tables.originals
    assert not world.blobs.temporary
    # Published before the failure, the copies have no row: the repair removes them.
    assert world.problems(repair=True) == ["reduced copy without its original"] * 2
    assert world.leaves_nothing("a")
    assert not any(name.startswith("reduced/") for name in world.blobs.files)


def test_delete_removes_the_reduced_copies(world: World) -> None:
    world.upload("a")
    world.service.delete_original("a")
    assert world.leaves_nothing("a")
    assert not any(name.startswith("reduced/") for name in world.blobs.files)


def _derived(world: World, segment: str) -> bytes:
    stored = world.service.derived_file(segment)
    with stored.file:
        return stored.file.read()


def test_a_rendition_is_derived_from_the_smallest_copy_that_is_enough(world: World) -> None:
    world.upload("a")  # 40x30; copies 20x15 and 10x8
    # 2x2 fill takes a 30x30 window: 7.5x8 pixels of the 10 px copy, at least twice 2 each way.
    assert _derived(world, "a-2x2.png").startswith(b"FROM-COPY:DERIVED:2x2:PNG:0.5,0.5:REDUCED:10:")
    # 4x4: the 10 px copy gives 7.5 < 8 across; the 20 px copy gives 15.
    assert _derived(world, "a-4x4.png").startswith(b"FROM-COPY:DERIVED:4x4:PNG:0.5,0.5:REDUCED:20:")
    # 10x10: no copy reduces twofold, so the original.
    assert _derived(world, "a-10x10.png").startswith(b"DERIVED:10x10:PNG:0.5,0.5:IMG:")


def test_fit_chooses_by_the_fitted_size(world: World) -> None:
    world.upload("a")
    # 5x5 fit of 40x30 is 5x4: the 10 px copy (10x8) is twice that.
    assert b"REDUCED:10:" in _derived(world, "a-5x5-fit.webp")
    assert b"REDUCED:20:" in _derived(world, "a-8x8-fit.webp")  # 8x6: needs 16x12


def test_an_animated_output_of_an_animation_reads_the_original(world: World) -> None:
    world.upload("a", fake_image(ImageFormat.GIF, traits=Traits(animated=True, alpha=False)))
    assert _derived(world, "a-2x2.gif").startswith(b"DERIVED:")
    assert _derived(world, "a-2x2.png").startswith(b"FROM-COPY:")  # a still: the first frame


def test_a_missing_copy_is_read_around_then_rebuilt_by_the_repair(world: World) -> None:
    world.upload("a")
    del world.blobs.files["reduced/a/10"]
    assert _derived(world, "a-2x2.png").startswith(b"DERIVED:")
    assert world.problems() == ["reduced copy missing"]
    assert world.problems(repair=True) == ["reduced copy missing"]
    assert world.blobs.files["reduced/a/10"] == b"REDUCED:10:" + fake_image()
    assert world.problems() == []


def test_an_orphan_copy_is_removed_but_a_young_one_is_left(world: World) -> None:
    world.blobs.files["reduced/gone/10"] = b"REDUCED:10:"
    assert world.problems(repair=True) == ["reduced copy without its original"]
    assert "reduced/gone/10" not in world.blobs.files
    world.blobs.mtime = NOW  # just published by an upload not yet committed
    world.blobs.files["reduced/coming/10"] = b"REDUCED:10:"
    assert world.problems(repair=True) == []
    assert "reduced/coming/10" in world.blobs.files


def test_a_copy_its_original_does_not_record_is_removed(world: World) -> None:
    world.upload("a")
    world.blobs.files["reduced/a/5"] = b"REDUCED:5:"  # left by an earlier upload of the id
    assert world.problems(repair=True) == ["reduced copy without its original"]
    assert "reduced/a/5" not in world.blobs.files
    assert world.blobs.has_reduced(ImageId("a"), 10)


def test_originals_stored_before_copies_are_not_yet_backfilled_which_is_no_damage(world: World) -> None:
    world.upload("a")
    world.upload("b")
    _forget_copies(world, "a")
    _forget_copies(world, "b")
    findings = world.repairer.run(repair=True)
    assert [(f.problem, f.subject, f.damage) for f in findings] == [
        ("not yet backfilled", "2 original(s)", False)
    ]
    assert not any(name.startswith("reduced/") for name in world.blobs.files)  # repair makes none
    assert _derived(world, "a-2x2.png").startswith(b"DERIVED:")  # read from the original meanwhile


def test_backfill_makes_the_copies_and_facts_reports_progress_and_resumes(world: World) -> None:
    world.upload("a")
    world.upload("b")
    world.upload("c")
    _forget_copies(world, "a", undescribed=True)
    _forget_copies(world, "b")
    calls: list[tuple[int, int]] = []
    report = world.service.backfill(lambda done, total: calls.append((done, total)))
    assert calls == [(0, 2), (1, 2), (2, 2)]
    assert (report.backfilled, report.gone, report.failed) == (2, 0, {})
    a = world.registry.tables.originals["a"].original
    assert a.reduced == (20, 10)
    assert a.described
    assert world.blobs.files["reduced/b/10"] == b"REDUCED:10:" + fake_image()
    assert world.problems() == []
    calls.clear()
    assert world.service.backfill(lambda done, total: calls.append((done, total))).backfilled == 0
    assert calls == [(0, 0)]


def test_backfill_goes_on_past_an_original_that_fails_to_decode(world: World) -> None:
    world.upload("a")
    world.upload("b")
    _forget_copies(world, "a")
    _forget_copies(world, "b")
    world.blobs.files["originals/a"] = b"CORRUPT"  # stored under looser limits, say
    report = world.service.backfill()
    assert list(report.failed) == ["a"]
    assert report.backfilled == 1
    assert world.registry.tables.originals["b"].original.reduced == (20, 10)
