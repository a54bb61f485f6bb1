"""The fakes keep the contracts the real adapters keep (the adapters are verified in integration/)."""

from __future__ import annotations

from pathlib import Path

from zope.interface.verify import verifyObject

from pymager.config import Settings
from pymager.domain import DerivedSpec, ImageId
from pymager.interfaces import (
    IBlobStore,
    IDerivedRepository,
    IGenerationLocks,
    IHeldLock,
    IImageProcessor,
    IImageService,
    IMetrics,
    IOriginalRepository,
    IRegistry,
    IStagedFile,
    IUnitOfWork,
)
from pymager.service import ImageService
from tests.unit.fakes import FakeBlobStore, FakeLocks, FakeMetrics, FakeProcessor, FakeRegistry


def test_fakes_provide_their_interfaces() -> None:
    registry = FakeRegistry()
    blobs = FakeBlobStore()
    uow = registry.unit_of_work()
    assert verifyObject(IRegistry, registry)
    assert verifyObject(IUnitOfWork, uow)
    assert verifyObject(IOriginalRepository, uow.originals)
    assert verifyObject(IDerivedRepository, uow.derived)
    assert verifyObject(IBlobStore, blobs)
    assert verifyObject(IStagedFile, blobs.stage_original(ImageId("x")))
    assert verifyObject(IImageProcessor, FakeProcessor(blobs))
    assert verifyObject(IMetrics, FakeMetrics())
    locks = FakeLocks()
    assert verifyObject(IGenerationLocks, locks)
    held = locks.try_acquire(DerivedSpec.parse("x-1x1.png"))
    assert held is not None
    assert verifyObject(IHeldLock, held)


def test_image_service_provides_its_interface() -> None:
    blobs = FakeBlobStore()
    service = ImageService(
        Settings.for_directory(Path("/x")),
        FakeRegistry(),
        blobs,
        FakeProcessor(blobs),
        FakeLocks(),
        FakeMetrics(),
    )
    assert verifyObject(IImageService, service)
