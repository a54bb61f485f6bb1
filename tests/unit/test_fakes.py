"""The fakes keep the contracts the real adapters keep (the adapters are verified in integration/)."""

from __future__ import annotations

from pathlib import Path

from zope.interface.verify import verifyObject

from pymager.config import Settings
from pymager.domain import DerivedSpec, ImageId
from pymager.interfaces import (
    IBlobInventory,
    IBlobStore,
    IDerivedRepository,
    IGenerationLocks,
    IHeldLock,
    IImageProcessor,
    IImageService,
    IMetrics,
    IOriginalRepository,
    IPurgeOutbox,
    IRegistry,
    IRetiredFiles,
    IStagedFile,
    IUnitOfWork,
)
from pymager.service import ImageService
from tests.unit.fakes import (
    FakeBlobStore,
    FakeInventory,
    FakeLocks,
    FakeMetrics,
    FakeProcessor,
    FakeRegistry,
    fake_image,
)


def test_fakes_provide_their_interfaces() -> None:
    registry = FakeRegistry()
    blobs = FakeBlobStore()
    uow = registry.unit_of_work()
    assert verifyObject(IRegistry, registry)
    assert verifyObject(IUnitOfWork, uow)
    assert verifyObject(IOriginalRepository, uow.originals)
    assert verifyObject(IDerivedRepository, uow.derived)
    assert verifyObject(IPurgeOutbox, uow.outbox)
    assert verifyObject(IBlobStore, blobs)
    assert verifyObject(IBlobInventory, FakeInventory(blobs))
    staged = blobs.stage_derived(DerivedSpec.parse("x-1x1.png"))
    assert verifyObject(IStagedFile, staged)
    staged.file.write(fake_image())
    staged.publish()
    retired = blobs.retire_derived(ImageId("x"))
    assert retired is not None
    assert verifyObject(IRetiredFiles, retired)
    assert verifyObject(IImageProcessor, FakeProcessor())
    assert verifyObject(IMetrics, FakeMetrics())
    locks = FakeLocks()
    assert verifyObject(IGenerationLocks, locks)
    held = locks.try_acquire(DerivedSpec.parse("x-1x1.png"))
    assert held is not None
    assert verifyObject(IHeldLock, held)


def test_image_service_provides_its_interface() -> None:
    service = ImageService(
        Settings.for_directory(Path("/x")),
        FakeRegistry(),
        FakeBlobStore(),
        FakeProcessor(),
        FakeLocks(),
        FakeMetrics(),
    )
    assert verifyObject(IImageService, service)
