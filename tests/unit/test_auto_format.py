"""``auto`` derived URLs: the format chosen per request from Accept, served as the concrete derived
image of that format, with the traits it is chosen from published for the front servers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pymager.domain import (
    AutoSpec,
    DerivedSpec,
    ImageFormat,
    ImageId,
    Mode,
    OriginalRecord,
    Size,
    choose_format,
    parse_derived,
)
from pymager.errors import ImageNotFound, SignatureRequired, UnknownFormat
from pymager.signing import SignedPath, UrlKey
from pymager.web.http import named_types
from tests.browsers import ALPHA, ANIMATED, BROWSERS, OPAQUE, Browser
from tests.unit.fakes import fake_image
from tests.unit.world import World

TRAITS = {"opaque": OPAQUE, "alpha": ALPHA, "animated": ANIMATED}


def test_auto_is_parsed_as_a_request_for_any_format_of_one_size_and_mode() -> None:
    assert parse_derived("a-b-200x0-fit.auto") == AutoSpec(ImageId("a-b"), Size(200, 0), Mode.FIT)
    auto = parse_derived("a-10x10.auto")
    assert isinstance(auto, AutoSpec)
    assert auto.resolve(ImageFormat.AVIF) == DerivedSpec.parse("a-10x10.avif")
    with pytest.raises(UnknownFormat):  # the concrete parser never mistakes it for a format
        DerivedSpec.parse("a-10x10.auto")


@pytest.mark.parametrize("traits", TRAITS)
@pytest.mark.parametrize("browser", BROWSERS)
def test_each_browser_gets_the_format_of_the_table(browser: str, traits: str) -> None:
    expected: Browser = BROWSERS[browser]
    assert choose_format(named_types(expected.accept), TRAITS[traits]) is expected.expected(TRAITS[traits])


@pytest.mark.parametrize(
    ("accept", "named"),
    [
        ("image/avif,image/webp,*/*;q=0.8", {"image/avif", "image/webp"}),
        ("image/*, */*", set()),
        ("image/avif;q=0.0", set()),
        ("image/avif;q=0.001", {"image/avif"}),
        ("image/avif;q=0.0001", {"image/avif"}),  # not a valid zero (four decimals): as Apache reads it
        ("image/avif;level=1;q=0, image/webp", {"image/webp"}),
        ("image/avif, image/avif;q=0", set()),  # refused anywhere: not named
        (" IMAGE/WebP ;Q=1 ", {"image/webp"}),
        ("garbage, ,;q=1", set()),
        ("", set()),
    ],
)
def test_named_types_are_the_explicit_ones_with_a_quality_above_zero(accept: str, named: set[str]) -> None:
    assert named_types(accept) == named


def test_auto_serves_the_very_file_of_the_concrete_url(world: World) -> None:
    world.upload("sample", fake_image())
    chosen = world.service.derived_file("sample-100x50-pad.auto", accepted=frozenset({"image/webp"}))
    assert chosen.negotiated == DerivedSpec.parse("sample-100x50-pad.webp")
    concrete = world.service.derived_file("sample-100x50-pad.webp")
    assert (chosen.file.read(), chosen.etag, chosen.content_type) == (
        concrete.file.read(),
        concrete.etag,
        "image/webp",
    )
    assert concrete.negotiated is None
    assert len(world.processor.derive_calls) == 1


def test_auto_makes_each_chosen_format_once(world: World) -> None:
    world.upload("sample", fake_image())
    for accepted in ({"image/avif"}, {"image/webp"}, set(), {"image/avif", "image/webp"}, set()):
        world.service.derived_file("sample-10x10.auto", accepted=frozenset(accepted))
    assert [call.format for call in world.processor.derive_calls] == [
        ImageFormat.AVIF,
        ImageFormat.WEBP,
        ImageFormat.JPEG,
    ]


@pytest.mark.parametrize("traits", TRAITS)
def test_the_traits_are_recorded_at_upload_and_published_on_the_first_auto_request(traits: str) -> None:
    world = World()
    world.upload("sample", fake_image(ImageFormat.GIF, traits=TRAITS[traits]))
    assert world.registry.tables.originals["sample"].original.traits == TRAITS[traits]
    assert world.blobs.published_traits(ImageId("sample")) is None
    world.service.derived_file("sample-10x10.auto")
    assert world.blobs.published_traits(ImageId("sample")) == TRAITS[traits]


def test_an_original_stored_before_traits_gets_them_on_its_first_auto_request(world: World) -> None:
    world.upload("old", fake_image(traits=ALPHA))
    world.registry.tables.originals["old"] = _without_traits(world, "old")
    served = world.service.derived_file("old-10x10.auto")
    assert served.negotiated == DerivedSpec.parse("old-10x10.png")
    assert world.registry.tables.originals["old"].original.traits == ALPHA
    assert world.blobs.published_traits(ImageId("old")) == ALPHA


def test_published_traits_go_with_a_delete_and_never_reach_the_replacement(world: World) -> None:
    world.upload("sample", fake_image(ImageFormat.GIF, traits=ANIMATED))
    assert world.service.derived_file("sample-10x10.auto").negotiated == DerivedSpec.parse("sample-10x10.gif")
    world.service.delete_original("sample")
    assert world.blobs.published_traits(ImageId("sample")) is None
    world.upload("sample", fake_image(ImageFormat.PNG, traits=ALPHA))
    assert world.service.derived_file("sample-10x10.auto").negotiated == DerivedSpec.parse("sample-10x10.png")


def test_auto_of_an_unknown_original_is_not_found_and_publishes_nothing(world: World) -> None:
    with pytest.raises(ImageNotFound):
        world.service.derived_file("missing-10x10.auto")
    assert world.blobs.traits == {}


def test_signed_auto_of_an_unknown_original_without_a_signature_is_forbidden_not_not_found() -> None:
    world = World(url_keys=(UrlKey("k", b"secret"),))
    with pytest.raises(SignatureRequired):
        world.service.derived_file(
            "missing-10x10.auto", SignedPath.from_target("/derived/missing-10x10.auto")
        )


def test_signed_auto_hit_is_served_without_a_signature() -> None:
    world = World(url_keys=(UrlKey("k", b"secret"),))
    world.upload("sample", fake_image())
    world.blobs.files["derived/sample/10x10.jpg"] = b"made earlier"
    unsigned = SignedPath.from_target("/derived/sample-10x10.auto")
    assert world.service.derived_file("sample-10x10.auto", unsigned).file.read() == b"made earlier"
    with pytest.raises(SignatureRequired):  # another format would be a generation
        world.service.derived_file("sample-10x10.auto", unsigned, frozenset({"image/webp"}))


def _without_traits(world: World, image_id: str) -> OriginalRecord:
    record = world.registry.tables.originals[image_id]
    return replace(record, original=replace(record.original, traits=None))


def test_facts_recorded_meanwhile_by_another_request_are_no_reason_for_a_404(world: World) -> None:
    """Two first requests for the facts of an original stored before them: the second finds the row
    already described by the first, and still gets the image."""
    world.upload("old", fake_image(traits=ALPHA))
    world.registry.tables.originals["old"] = _without_traits(world, "old")
    seen = world.registry.tables.originals["old"].original
    world.service.original_info("old")  # the first request records the facts
    assert world.service._described(seen, publish_traits=True).traits == ALPHA
