"""The fakes keep the contracts the real adapters keep (the adapters are verified in integration/)."""

from __future__ import annotations

from pathlib import Path

from zope.interface.verify import verifyObject

from pymager.config import Settings
from pymager.domain import ImageId
from pymager.interfaces import (
    IBlobStore,
    IDerivedRepository,
    IImageProcessor,
    IImageService,
    IMetrics,
    IOriginalRepository,
    IRegistry,
    IStagedFile,
    IUnitOfWork,
)
from pymager.service import ImageService
from tests.unit.fakes import FakeBlobStore, FakeMetrics, FakeProcessor, FakeRegistry


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


def test_image_service_provides_its_interface() -> None:
    blobs = FakeBlobStore()
    service = ImageService(
        Settings.for_directory(Path("/x")), FakeRegistry(), blobs, FakeProcessor(blobs), FakeMetrics()
    )
    assert verifyObject(IImageService, service)
