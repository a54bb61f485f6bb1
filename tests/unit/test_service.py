"""ImageService against in-memory fakes: the rules of pymager, without a database or Pillow."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import BinaryIO

import pytest

from pymager.domain import (
    CENTRE,
    DerivedSpec,
    DerivedStatus,
    Focus,
    ImageFormat,
    ImageId,
    Mode,
    OriginalStatus,
    Rendition,
    Size,
    Upload,
)
from pymager.errors import (
    BadUpload,
    CorruptImage,
    ImageAlreadyExists,
    ImageNotFound,
    InvalidDerivedSpec,
    InvalidFocus,
    InvalidImageId,
    ServiceUnavailable,
    SizeNotAllowed,
    StorageFailed,
    UnknownFormat,
    UnsupportedImage,
    UploadTooLarge,
)
from tests.unit.fakes import FakeRetiredFiles, fake_image
from tests.unit.world import NOW, World


def _never_called() -> Upload:
    raise AssertionError("the upload body was read")


def test_upload_stores_original_and_describes_it(world: World) -> None:
    data = fake_image(ImageFormat.PNG, 640, 480)
    original = world.service.save_original("sample", lambda: Upload(io.BytesIO(data)))
    assert (original.image_id, original.format, original.width, original.height) == (
        "sample",
        ImageFormat.PNG,
        640,
        480,
    )
    assert original.bytes == len(data)
    assert original.checksum == hashlib.sha256(data).hexdigest()
    assert original.created == NOW
    assert world.blobs.files["originals/sample"] == data
    assert world.registry.tables.originals["sample"].status is OriginalStatus.READY
    assert not world.blobs.temporary


def test_upload_rejects_duplicate_id_without_reading_the_body(world: World) -> None:
    world.upload("sample", fake_image())
    with pytest.raises(ImageAlreadyExists):
        world.service.save_original("sample", _never_called)
    assert world.blobs.files["originals/sample"] == fake_image()


@pytest.mark.parametrize("bad_id", ["", "a/b", "../etc", "x" * 129, "sp ace", "dot.jpg", "é"])
def test_upload_rejects_invalid_id_without_reading_the_body(world: World, bad_id: str) -> None:
    with pytest.raises(InvalidImageId):
        world.service.save_original(bad_id, _never_called)
    assert not world.blobs.files
    assert not world.blobs.temporary


@pytest.mark.parametrize(
    ("data", "error"),
    [(b"<html>not an image</html>", UnsupportedImage), (b"CORRUPT", CorruptImage)],
)
def test_upload_of_bad_image_is_rejected_and_leaves_nothing(
    world: World, data: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        world.upload("bad", data)
    assert world.leaves_nothing("bad")


def test_upload_over_the_limit_is_rejected_and_leaves_nothing() -> None:
    world = World(max_upload_bytes=100)
    with pytest.raises(UploadTooLarge):
        world.upload("big", fake_image() + b"x" * 200)
    assert world.leaves_nothing("big")


def test_upload_with_malformed_request_leaves_nothing(world: World) -> None:
    def malformed() -> Upload:
        raise BadUpload("the multipart body has no field named 'file'")

    with pytest.raises(BadUpload):
        world.service.save_original("sample", malformed)
    assert world.leaves_nothing("sample")


def test_concurrent_uploads_of_one_id_store_exactly_one(world: World) -> None:
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def upload(n: int) -> None:
        barrier.wait()
        try:
            world.upload("race", fake_image(width=10 + n))
            outcomes.append("created")
        except ImageAlreadyExists:
            outcomes.append("conflict")

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 19 + ["created"]
    stored = world.registry.tables.originals["race"].original
    assert world.blobs.files["originals/race"] == fake_image(width=stored.width)
    assert not world.blobs.temporary


def test_original_file_serves_exact_bytes_with_checksum_etag(world: World) -> None:
    world.upload("sample", fake_image(ImageFormat.GIF))
    stored = world.service.original_file("sample")
    assert stored.file.read() == fake_image(ImageFormat.GIF)
    assert stored.content_type == "image/gif"
    assert stored.etag == f'"{world.registry.tables.originals["sample"].original.checksum}"'


def test_original_file_of_unknown_id_is_not_found(world: World) -> None:
    with pytest.raises(ImageNotFound):
        world.service.original_file("missing")


def test_delete_removes_original_and_every_derived_image(world: World) -> None:
    world.upload("sample", fake_image())
    world.service.derived_file("sample-10x10.png")
    world.service.derived_file("sample-20x20.jpg")
    world.service.delete_original("sample")
    assert world.blobs.files == {}
    assert world.registry.tables.originals == {}
    assert world.registry.tables.derived == {}
    with pytest.raises(ImageNotFound):
        world.service.original_file("sample")


def test_delete_of_unknown_id_is_not_found(world: World) -> None:
    with pytest.raises(ImageNotFound):
        world.service.delete_original("missing")


def test_a_half_done_delete_hides_the_image_blocks_reupload_and_is_completed_by_a_retry(world: World) -> None:
    world.upload("sample", fake_image())
    world.service.derived_file("sample-10x10.png")
    # As if a DELETE crashed after marking the row, before removing the files.
    with world.registry.unit_of_work(write=True) as uow:
        uow.originals.set_status(ImageId("sample"), OriginalStatus.DELETING, NOW)
        uow.commit()
    with pytest.raises(ImageNotFound):
        world.service.original_file("sample")
    with pytest.raises(ImageAlreadyExists):
        world.upload("sample", fake_image(ImageFormat.PNG))
    world.service.delete_original("sample")
    assert world.blobs.files == {}
    assert world.registry.tables.originals == {}


def test_derived_is_generated_once_then_served_from_disk(world: World) -> None:
    world.upload("sample", fake_image())
    first = world.service.derived_file("sample-100x50.webp").file.read()
    second = world.service.derived_file("sample-100x50.webp").file.read()
    assert first == second == b"DERIVED:100x50:WEBP:0.5,0.5:" + fake_image()
    assert len(world.processor.derive_calls) == 1
    assert world.metrics.served == ["generated", "disk"]
    assert len(world.metrics.generated) == 1
    assert world.metrics.coalesced == 0
    record = world.registry.tables.derived[("sample", 100, 50, "WEBP", "fill")]
    assert record.status is DerivedStatus.READY
    assert record.bytes == len(first)
    assert record.checksum == hashlib.sha256(first).hexdigest()


def test_derived_jpeg_and_jpg_are_the_same_image(world: World) -> None:
    world.upload("sample", fake_image())
    jpg = world.service.derived_file("sample-10x10.jpg")
    jpeg = world.service.derived_file("sample-10x10.jpeg")
    assert jpg.file.read() == jpeg.file.read()
    assert jpg.content_type == "image/jpeg"
    assert len(world.processor.derive_calls) == 1


def test_derived_size_outside_allowed_sizes_is_forbidden_before_existence_is_checked() -> None:
    world = World(allowed_sizes=frozenset({(Size(100, 100), Mode.FILL)}))
    with pytest.raises(SizeNotAllowed):
        world.service.derived_file("missing-200x200.jpg")
    world.upload("sample", fake_image())
    assert world.service.derived_file("sample-100x100.jpg").size > 0


def test_derived_size_over_max_dimension_is_forbidden(world: World) -> None:
    world.upload("sample", fake_image())
    with pytest.raises(SizeNotAllowed):
        world.service.derived_file("sample-4097x10.jpg")
    assert world.processor.derive_calls == []


@pytest.mark.parametrize(
    ("segment", "error"),
    [
        ("sample-10x10.bmp", UnknownFormat),
        ("sample-10x10.JPG", UnknownFormat),
        ("sample.jpg", InvalidDerivedSpec),
        ("sample-10x.jpg", InvalidDerivedSpec),
        ("sample-0x10.jpg", InvalidDerivedSpec),
        ("sample-10x10", InvalidDerivedSpec),
        ("../sample-10x10.jpg", InvalidDerivedSpec),
        ("missing-10x10.jpg", ImageNotFound),
    ],
)
def test_derived_segment_errors(world: World, segment: str, error: type[Exception]) -> None:
    world.upload("sample", fake_image())
    with pytest.raises(error):
        world.service.derived_file(segment)
    assert world.processor.derive_calls == []


def race_behind_the_gate(
    world: World, fetch: Callable[[], None], count: int, meanwhile: Callable[[], object] = lambda: None
) -> None:
    """Run ``fetch`` in ``count`` threads while the processor's gate holds the first generation, call
    ``meanwhile`` once it has started, then open the gate and wait for every thread."""
    assert world.processor.gate is not None
    threads = [threading.Thread(target=fetch) for _ in range(count)]
    for thread in threads:
        thread.start()
    assert world.processor.started.wait(5)
    meanwhile()
    world.processor.gate.set()
    for thread in threads:
        thread.join()


def test_concurrent_requests_for_a_cold_derived_image_generate_it_once(world: World) -> None:
    world.upload("sample", fake_image())
    world.processor.gate = threading.Event()
    bodies: list[bytes] = []
    lock = threading.Lock()

    def fetch() -> None:
        body = world.service.derived_file("sample-30x30.png").file.read()
        with lock:
            bodies.append(body)

    race_behind_the_gate(world, fetch, 30)
    assert len(world.processor.derive_calls) == 1
    assert len(world.metrics.generated) == 1
    assert sorted(world.metrics.served) == ["disk"] * 29 + ["generated"]
    assert world.metrics.coalesced == 29
    assert len(bodies) == 30
    assert len(set(bodies)) == 1


def test_requests_sharing_a_failed_generation_each_raise_their_own_error(world: World) -> None:
    """Raising the leader's one exception object in every waiting thread would chain every thread's
    frames onto its single traceback, and each logged traceback would repeat all the others."""
    world.upload("sample", fake_image())
    world.processor.gate = threading.Event()
    derive = world.processor.derive

    def derive_then_fail(*args: BinaryIO) -> None:
        derive(*args)  # type: ignore[arg-type]  # records the call, then waits for the gate
        raise CorruptImage("the JPEG data is corrupt or truncated: boom")

    world.processor.derive = derive_then_fail  # type: ignore[method-assign]
    errors: list[BaseException] = []
    lock = threading.Lock()

    def fetch() -> None:
        try:
            world.service.derived_file("sample-30x30.png")
        except CorruptImage as error:
            with lock:
                errors.append(error)

    race_behind_the_gate(world, fetch, 30)
    assert len(errors) == 30
    assert {str(error) for error in errors} == {"the JPEG data is corrupt or truncated: boom"}
    # Followers raise a copy caused by the leader's error. (A thread that arrives after the failure
    # leads a generation of its own, so how many joined is left to the scheduler; most do.)
    assert [error for error in errors if error.__cause__ is not None]
    for error in errors:
        frames = [frame.name for frame in traceback.extract_tb(error.__traceback__)]
        assert frames.count("fetch") == 1, frames


def test_a_generation_in_another_process_makes_the_request_wait_then_answer_503() -> None:
    world = World(wait_timeout=0.05)
    world.upload("sample", fake_image())
    elsewhere = world.locks.try_acquire(DerivedSpec.parse("sample-10x10.png"))
    assert elsewhere is not None
    with pytest.raises(ServiceUnavailable) as raised:
        world.service.derived_file("sample-10x10.png")
    assert raised.value.retry_after >= 1
    assert world.processor.derive_calls == []
    assert world.metrics.coalesced == 1


def test_a_request_waits_for_another_process_and_serves_its_image(world: World) -> None:
    world.upload("sample", fake_image())
    spec = DerivedSpec.parse("sample-10x10.png")
    elsewhere = world.locks.try_acquire(spec)
    assert elsewhere is not None
    bodies: list[bytes] = []
    request = threading.Thread(target=lambda: bodies.append(world.service.derived_file(spec.key).file.read()))
    request.start()
    world.blobs.files["derived/sample/10x10.png"] = b"made by the other process"
    elsewhere.release()
    request.join()
    assert bodies == [b"made by the other process"]
    assert world.processor.derive_calls == []
    assert world.metrics.served == ["disk"]


def test_a_claim_left_by_a_dead_process_is_taken_over_at_once(world: World) -> None:
    # The lock is free (its holder died with it), so the pending claim is taken over whatever its age.
    world.upload("sample", fake_image())
    spec = DerivedSpec.parse("sample-10x10.png")
    with world.registry.unit_of_work(write=True) as uow:
        assert uow.derived.claim(spec, "dead-host:1:abc", NOW)
        uow.commit()
    assert world.service.derived_file("sample-10x10.png").size > 0
    assert len(world.processor.derive_calls) == 1
    record = world.registry.tables.derived[("sample", 10, 10, "PNG", "fill")]
    assert record.status is DerivedStatus.READY
    assert record.owner != "dead-host:1:abc"


def test_generations_beyond_the_slots_wait_then_answer_503() -> None:
    world = World(max_concurrent_generations=1, wait_timeout=0.05)
    world.upload("sample", fake_image())
    world.processor.gate = threading.Event()
    first = threading.Thread(target=world.service.derived_file, args=("sample-10x10.png",))
    first.start()
    assert world.processor.started.wait(5)
    with pytest.raises(ServiceUnavailable, match="generation slots"):
        world.service.derived_file("sample-20x20.png")
    world.processor.gate.set()
    first.join()
    assert world.service.derived_file("sample-20x20.png").size > 0
    assert len(world.processor.derive_calls) == 2


def test_a_generation_holds_its_slot_only_while_it_renders() -> None:
    world = World(max_concurrent_generations=1, wait_timeout=2)
    world.upload("sample", fake_image())
    world.blobs.digest_gate = threading.Event()
    requests = [
        threading.Thread(target=world.service.derived_file, args=(f"sample-{size}.png",))
        for size in ("10x10", "20x20")
    ]
    requests[0].start()
    deadline = time.monotonic() + 5
    while not world.blobs.digesting and time.monotonic() < deadline:
        time.sleep(0.01)
    # The first generation rendered and is being published: the only slot is free for the second.
    requests[1].start()
    while len(world.blobs.digesting) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(world.processor.derive_calls) == 2
    world.blobs.digest_gate.set()
    for request in requests:
        request.join()
    assert world.service.derived_file("sample-20x20.png").size > 0
    assert len(world.processor.derive_calls) == 2


def test_the_lock_is_released_after_a_failed_generation(world: World) -> None:
    world.upload("sample", fake_image())
    world.blobs.files["originals/sample"] = b""  # the processor will still derive; fail it instead

    def explode(*_args: object) -> None:
        raise CorruptImage("the JPEG data is corrupt or truncated: boom")

    world.processor.derive = explode  # type: ignore[method-assign]
    with pytest.raises(CorruptImage):
        world.service.derived_file("sample-10x10.png")
    assert world.locks.try_acquire(DerivedSpec.parse("sample-10x10.png")) is not None


def test_a_ready_row_whose_file_vanished_is_regenerated(world: World) -> None:
    world.upload("sample", fake_image())
    world.service.derived_file("sample-10x10.png")
    del world.blobs.files["derived/sample/10x10.png"]
    assert world.service.derived_file("sample-10x10.png").size > 0
    assert len(world.processor.derive_calls) == 2


def test_a_failed_generation_releases_its_claim(world: World) -> None:
    world.upload("sample", fake_image())

    def explode(*_args: object) -> None:
        raise CorruptImage("the JPEG data is corrupt or truncated: boom")

    world.processor.derive = explode  # type: ignore[method-assign]
    with pytest.raises(CorruptImage):
        world.service.derived_file("sample-10x10.png")
    assert world.registry.tables.derived == {}
    assert not world.blobs.temporary


def test_a_delete_during_generation_leaves_no_derived_file_or_row(world: World) -> None:
    world.upload("sample", fake_image())
    world.processor.gate = threading.Event()
    errors: list[Exception] = []

    def fetch() -> None:
        try:
            world.service.derived_file("sample-10x10.png")
        except ImageNotFound as exc:
            errors.append(exc)

    race_behind_the_gate(world, fetch, 1, meanwhile=lambda: world.service.delete_original("sample"))
    assert len(errors) == 1
    assert world.blobs.files == {}
    assert world.registry.tables.derived == {}
    assert not world.blobs.temporary


def test_reupload_after_delete_never_serves_the_old_derived_image(world: World) -> None:
    world.upload("sample", fake_image(ImageFormat.JPEG, 10, 10))
    old = world.service.derived_file("sample-5x5.png").file.read()
    world.service.delete_original("sample")
    world.upload("sample", fake_image(ImageFormat.PNG, 20, 20))
    new = world.service.derived_file("sample-5x5.png").file.read()
    assert new != old
    assert new.endswith(fake_image(ImageFormat.PNG, 20, 20))


def test_registry_outage_is_service_unavailable_and_recovers(world: World) -> None:
    world.upload("sample", fake_image())
    world.registry.down = True
    calls: list[Callable[[], object]] = [
        lambda: world.service.original_file("sample"),
        lambda: world.service.derived_file("sample-10x10.png"),
        lambda: world.upload("other", fake_image()),
        world.service.health,
    ]
    for call in calls:
        with pytest.raises(ServiceUnavailable):
            call()
    world.registry.down = False
    assert world.service.original_file("sample").size > 0
    assert world.service.health() == {"registry": "ok", "storage": "ok"}


def test_health_reports_an_unwritable_data_directory(world: World) -> None:
    world.blobs.writable = False
    with pytest.raises(ServiceUnavailable, match="not writable"):
        world.service.health()


def test_an_original_replaced_during_generation_asks_to_retry_and_publishes_nothing(world: World) -> None:
    world.upload("sample", fake_image(ImageFormat.JPEG, 10, 10))
    world.processor.gate = threading.Event()
    errors: list[Exception] = []

    def fetch() -> None:
        try:
            world.service.derived_file("sample-5x5.png")
        except ServiceUnavailable as exc:
            errors.append(exc)

    def replace_the_original() -> None:
        world.service.delete_original("sample")
        world.upload("sample", fake_image(ImageFormat.PNG, 20, 20))

    race_behind_the_gate(world, fetch, 1, meanwhile=replace_the_original)
    assert len(errors) == 1
    assert errors[0].retry_after == 1
    assert "derived/sample/5x5.png" not in world.blobs.files
    assert not world.blobs.temporary
    world.processor.gate = None
    assert (
        world.service.derived_file("sample-5x5.png").file.read().endswith(fake_image(ImageFormat.PNG, 20, 20))
    )


def test_a_crash_mid_delete_leaves_no_derived_image_to_serve(world: World) -> None:
    world.upload("sample", fake_image())
    world.service.derived_file("sample-10x10.png")

    def crash(_image_id: str) -> None:
        raise RuntimeError("killed after the first transaction")

    world.blobs.delete_image = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        world.service.delete_original("sample")
    assert "derived/sample/10x10.png" not in world.blobs.files  # retired before the commit
    with pytest.raises(ImageNotFound):
        world.service.derived_file("sample-10x10.png")
    with pytest.raises(ImageNotFound):
        world.service.original_file("sample")


def test_a_second_delete_never_removes_an_original_uploaded_again_meanwhile(world: World) -> None:
    world.upload("x", fake_image(width=10))
    world.service.derived_file("x-5x5.png")  # so this DELETE has derived files to retire
    retire = world.blobs.retire_derived
    raced = False

    class RemovedThenRaced:
        """The derived files this DELETE retired; once they are removed, another DELETE of x finishes
        first and x is uploaded again."""

        def __init__(self, retired: FakeRetiredFiles) -> None:
            self._retired = retired

        def remove(self) -> None:
            nonlocal raced
            self._retired.remove()
            if not raced:
                raced = True
                world.service.delete_original("x")
                world.upload("x", fake_image(width=20))

    def retire_then_race(image_id: ImageId) -> RemovedThenRaced | None:
        retired = retire(image_id)
        return None if retired is None else RemovedThenRaced(retired)

    world.blobs.retire_derived = retire_then_race  # type: ignore[assignment,method-assign]
    world.service.delete_original("x")
    assert raced
    assert world.registry.tables.originals["x"].original.width == 20
    assert world.blobs.files["originals/x"] == fake_image(width=20)


# -- modes and the focal point -------------------------------------------------------------------


def test_upload_keeps_the_focus_it_was_sent(world: World) -> None:
    world.processor.detected = Focus(0.1, 0.1)  # a sent focus wins over detection
    world.upload("sample", focus="0.25,0.4")
    assert world.registry.tables.originals["sample"].original.focus == Focus(0.25, 0.4)


def test_upload_without_focus_keeps_the_detected_one_or_the_centre(world: World) -> None:
    world.processor.detected = Focus(0.8, 0.3)
    world.upload("detected")
    world.processor.detected = None  # detection off
    world.upload("plain")
    assert world.registry.tables.originals["detected"].original.focus == Focus(0.8, 0.3)
    assert world.registry.tables.originals["plain"].original.focus == CENTRE


@pytest.mark.parametrize(
    "focus", ["", "0.5", "0.5,", "1.5,0.5", "-0.1,0.5", "0.5;0.5", "nan,0.5", "1e-1,0.5"]
)
def test_upload_with_a_bad_focus_is_refused_and_leaves_nothing(world: World, focus: str) -> None:
    with pytest.raises(InvalidFocus):
        world.upload("sample", focus=focus)
    assert world.leaves_nothing("sample")


def test_derive_hands_the_processor_the_mode_the_bounded_box_and_the_focus() -> None:
    world = World(max_dimension=1000)
    world.upload("sample", focus="0.2,0.7")
    world.service.derived_file("sample-800x0-fit.webp").file.close()
    world.service.derived_file("sample-30x20-pad.png").file.close()
    world.service.derived_file("sample-30x20.jpg").file.close()
    assert world.processor.derive_calls == [
        Rendition(Size(800, 1000), Mode.FIT, ImageFormat.WEBP, Focus(0.2, 0.7)),
        Rendition(Size(30, 20), Mode.PAD, ImageFormat.PNG, Focus(0.2, 0.7)),
        Rendition(Size(30, 20), Mode.FILL, ImageFormat.JPEG, Focus(0.2, 0.7)),
    ]
    assert set(world.blobs.files) >= {
        "derived/sample/800x0-fit.webp",
        "derived/sample/30x20-pad.png",
        "derived/sample/30x20.jpg",
    }


def test_allowed_sizes_carry_their_mode() -> None:
    world = World(allowed_sizes=frozenset({(Size(100, 100), Mode.FILL), (Size(800, 0), Mode.FIT)}))
    world.upload("sample")
    world.service.derived_file("sample-100x100.jpg").file.close()
    world.service.derived_file("sample-800x0-fit.jpg").file.close()
    # An entry without a mode allows fill only; one with a mode, that mode only.
    for segment in ("sample-100x100-fit.jpg", "sample-100x100-pad.jpg", "sample-800x600-fit.jpg"):
        with pytest.raises(SizeNotAllowed):
            world.service.derived_file(segment)


# -- CDN purge notices ------------------------------------------------------------------------------


def test_a_delete_queues_one_purge_notice_delivered_afterwards() -> None:
    world = World(purge_url="https://cdn.example/purge")
    world.upload("sample", fake_image())
    world.service.derived_file("sample-10x10.png")
    world.service.delete_original("sample")

    (notice,) = [entry for entry, _ in world.registry.tables.notices.values()]
    assert json.loads(notice.body)["urls"] == [
        "/original/sample",
        "/original/sample/info",
        "/derived/sample-10x10.png",
        "/derived/sample-10x10.auto",
    ]
    assert world.sender.sent == []  # sent by the deliverer, never inside the request's transaction
    assert world.notices is not None
    assert world.notices.deliver_due() == 0  # not before every host has stopped serving the image
    world.now += timedelta(seconds=1)
    assert world.notices.deliver_due() == 1
    assert world.sender.sent == [(notice.number, notice.body.encode())]
    assert world.registry.tables.notices == {}
    assert world.metrics.purge_notices == [True]


def test_a_delete_that_fails_before_its_commit_queues_no_notice() -> None:
    world = World(purge_url="https://cdn.example/purge")
    world.upload("sample", fake_image())

    def fail(_image_id: str) -> None:
        raise StorageFailed("the storage failed while deleting the image: fake")

    world.blobs.retire_derived = fail  # type: ignore[assignment,method-assign]
    with pytest.raises(StorageFailed):
        world.service.delete_original("sample")
    assert world.registry.tables.notices == {}
    assert world.registry.tables.originals["sample"].status is OriginalStatus.READY


def test_an_undelivered_notice_stays_queued() -> None:
    world = World(purge_url="https://cdn.example/purge")
    world.upload("sample", fake_image())
    world.service.delete_original("sample")
    world.sender.failing = True
    assert world.notices is not None
    world.now += timedelta(seconds=1)
    assert world.notices.deliver_due() == 0
    assert len(world.registry.tables.notices) == 1
    assert world.metrics.purge_notices == [False]
    # a webhook down for weeks: the delay stays at its cap (2 ** attempts would overflow a float)
    (number,) = world.registry.tables.notices
    notice, _ = world.registry.tables.notices[number]
    world.registry.tables.notices[number] = (replace(notice, attempts=5000), world.now)
    assert world.notices.deliver_due() == 0
    _, due = world.registry.tables.notices[number]
    assert due == world.now + timedelta(seconds=600)


def test_a_generation_during_a_purge_of_its_originals_images_is_not_published() -> None:
    world = World(purge_url="https://cdn.example/purge")
    world.upload("sample", fake_image())
    world.service.derived_file("sample-10x10.png")
    world.processor.started.clear()  # set by that generation: wait for the next one's
    world.processor.gate = threading.Event()
    errors: list[Exception] = []

    def fetch() -> None:
        try:
            world.service.derived_file("sample-20x20.png")
        except ServiceUnavailable as exc:
            errors.append(exc)

    race_behind_the_gate(world, fetch, 1, meanwhile=world.repairer.purge_derived)
    assert len(errors) == 1  # 503: made for the original's derived images before the purge
    assert world.registry.tables.derived == {}
    assert world.service.derived_file("sample-20x20.png").file.read()  # made again after it


def test_purging_derived_images_renews_them_and_queues_a_notice() -> None:
    world = World(purge_url="https://cdn.example/purge")
    world.upload("sample", fake_image())
    world.service.derived_file("sample-10x10.png")

    assert [spec.key for spec in world.repairer.purge_derived()] == ["sample-10x10.png"]

    assert world.registry.tables.originals["sample"].original.derived_epoch == 1
    (notice,) = [json.loads(entry.body) for entry, _ in world.registry.tables.notices.values()]
    assert (notice["reason"], notice["urls"]) == (
        "purged",
        ["/derived/sample-10x10.png", "/derived/sample-10x10.auto"],
    )
