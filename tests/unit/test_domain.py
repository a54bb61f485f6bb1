"""The value objects: image ids, sizes, formats and derived-image specs."""

from __future__ import annotations

import pytest

from pymager.domain import DerivedSpec, ImageFormat, ImageId, Size, SizePolicy
from pymager.errors import InvalidDerivedSpec, InvalidImageId, UnknownFormat

# ImageId


@pytest.mark.parametrize(
    "value",
    ["a", "Z", "0", "_", "-", "cat", "Cat_Photo-2024", "a-b-c", "x" * 128, "0123456789", "--__--"],
)
def test_image_id_accepts_allowed_characters(value: str) -> None:
    image_id = ImageId(value)

    assert image_id == value
    assert isinstance(image_id, str)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("x" * 129, id="129-chars"),
        pytest.param("a/b", id="slash"),
        pytest.param("/", id="only-slash"),
        pytest.param(".", id="dot"),
        pytest.param("..", id="dot-dot"),
        pytest.param("cat.png", id="dot-inside"),
        pytest.param("a b", id="space"),
        pytest.param(" cat", id="leading-space"),
        pytest.param("café", id="non-ascii-letter"),
        pytest.param("٣", id="non-ascii-digit"),
        pytest.param("abc\n", id="newline-at-end"),
        pytest.param("\nabc", id="newline-at-start"),
        pytest.param("abc\x00", id="nul"),
        pytest.param("a\\b", id="backslash"),
        pytest.param("a%2Fb", id="percent"),
    ],
)
def test_image_id_rejects_invalid(value: str) -> None:
    with pytest.raises(InvalidImageId):
        ImageId(value)


def test_image_id_rejects_non_string() -> None:
    with pytest.raises(InvalidImageId):
        ImageId(42)  # type: ignore[arg-type]


def test_image_id_error_detail_shows_the_value() -> None:
    with pytest.raises(InvalidImageId) as caught:
        ImageId("../etc")

    assert "'../etc'" in caught.value.detail


# Size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10x20", Size(10, 20)),
        ("  10x20", Size(10, 20)),
        ("10x20  ", Size(10, 20)),
        ("\t800x600\n", Size(800, 600)),
        ("1x1", Size(1, 1)),
        ("999999999x1", Size(999999999, 1)),
    ],
)
def test_size_parse_accepts_surrounding_whitespace(text: str, expected: Size) -> None:
    assert Size.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "10",
        "10x",
        "x10",
        "10by10",
        "10X10",
        "10 x 10",
        "10x10x10",
        "-1x10",
        "10x-1",
        "0x10",
        "10x0",
        "1.5x2",
        "1000000000x1",
        "ax b",
    ],
)
def test_size_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="x"):
        Size.parse(text)


def test_size_rejects_zero_dimension() -> None:
    with pytest.raises(ValueError, match="at least 1x1"):
        Size(0, 5)


def test_size_str_is_width_x_height() -> None:
    assert str(Size(800, 600)) == "800x600"


def test_size_is_hashable_value() -> None:
    assert {Size(1, 2), Size(1, 2)} == {Size(1, 2)}


# ImageFormat


@pytest.mark.parametrize(
    ("image_format", "mime_type", "extension"),
    [
        (ImageFormat.JPEG, "image/jpeg", "jpg"),
        (ImageFormat.PNG, "image/png", "png"),
        (ImageFormat.GIF, "image/gif", "gif"),
        (ImageFormat.WEBP, "image/webp", "webp"),
    ],
)
def test_image_format_mime_type_and_canonical_extension(
    image_format: ImageFormat, mime_type: str, extension: str
) -> None:
    assert image_format.mime_type == mime_type
    assert image_format.extension == extension
    assert ImageFormat.from_extension(extension) is image_format


def test_image_format_from_extension_maps_jpeg_to_jpeg() -> None:
    assert ImageFormat.from_extension("jpeg") is ImageFormat.JPEG


@pytest.mark.parametrize("extension", ["bmp", "tiff", "PNG", "Jpg", "", "svg"])
def test_image_format_from_extension_rejects_unknown(extension: str) -> None:
    with pytest.raises(UnknownFormat):
        ImageFormat.from_extension(extension)


# DerivedSpec


def test_derived_spec_parse_simple() -> None:
    spec = DerivedSpec.parse("cat-100x200.png")

    assert spec == DerivedSpec(ImageId("cat"), Size(100, 200), ImageFormat.PNG)
    assert spec.key == "cat-100x200.png"


def test_derived_spec_parse_id_containing_dashes() -> None:
    spec = DerivedSpec.parse("a-b-c-10x20.png")

    assert spec.image_id == "a-b-c"
    assert spec.size == Size(10, 20)
    assert spec.format is ImageFormat.PNG


def test_derived_spec_parse_id_that_looks_like_a_size() -> None:
    spec = DerivedSpec.parse("10x10-20x30.gif")

    assert spec.image_id == "10x10"
    assert spec.size == Size(20, 30)


def test_derived_spec_parse_id_may_end_with_dash() -> None:
    spec = DerivedSpec.parse("a--10x20.png")

    assert spec.image_id == "a-"
    assert spec.size == Size(10, 20)


def test_derived_spec_parse_longest_id() -> None:
    spec = DerivedSpec.parse("x" * 128 + "-1x1.webp")

    assert spec.image_id == "x" * 128


@pytest.mark.parametrize("extension", ["jpg", "jpeg"])
def test_derived_spec_parse_jpg_and_jpeg_are_jpeg_with_jpg_key(extension: str) -> None:
    spec = DerivedSpec.parse(f"cat-10x20.{extension}")

    assert spec.format is ImageFormat.JPEG
    assert spec.key == "cat-10x20.jpg"


def test_derived_spec_parse_jpg_and_jpeg_are_equal() -> None:
    assert DerivedSpec.parse("cat-10x20.jpeg") == DerivedSpec.parse("cat-10x20.jpg")


@pytest.mark.parametrize("segment", ["cat-10x20.bmp", "cat-10x20.tiff", "cat-10x20.x"])
def test_derived_spec_parse_unknown_extension_is_unknown_format(segment: str) -> None:
    with pytest.raises(UnknownFormat):
        DerivedSpec.parse(segment)


@pytest.mark.parametrize("segment", ["cat-10x20.PNG", "cat-10x20.JPG", "cat-10x20.Jpeg"])
def test_derived_spec_parse_upper_case_extension_is_unknown_format(segment: str) -> None:
    with pytest.raises(UnknownFormat):
        DerivedSpec.parse(segment)


@pytest.mark.parametrize(
    "segment",
    [
        pytest.param("", id="empty"),
        pytest.param("cat.png", id="no-size"),
        pytest.param("cat-10x20", id="no-extension"),
        pytest.param("cat-10x20.", id="empty-extension"),
        pytest.param("-10x20.png", id="no-id"),
        pytest.param("cat-0x20.png", id="zero-width"),
        pytest.param("cat-20x0.png", id="zero-height"),
        pytest.param("cat-00x20.png", id="zero-width-two-digits"),
        pytest.param("cat-10x-20.png", id="negative-height"),
        pytest.param("cat-10x20.png.png", id="extra-dot-after"),
        pytest.param("ca.t-10x20.png", id="dot-in-id"),
        pytest.param("cat-10.5x20.png", id="fractional"),
        pytest.param("cat-1234567890x20.png", id="10-digit-width"),
        pytest.param("cat-20x1234567890.png", id="10-digit-height"),
        pytest.param("cat-10x20.png/", id="trailing-slash"),
        pytest.param("dir/cat-10x20.png", id="slash-in-id"),
        pytest.param("cat-10X20.png", id="upper-x"),
        pytest.param("cat-10x20.png\n", id="newline-at-end"),
        pytest.param("cat_10x20.png", id="underscore-separator"),
        pytest.param("x" * 129 + "-1x1.png", id="129-char-id"),
        pytest.param("cat-10x20.abcdefghi", id="9-char-extension"),
        pytest.param("café-10x20.png", id="non-ascii-id"),
    ],
)
def test_derived_spec_parse_grammar_miss_is_invalid_derived_spec(segment: str) -> None:
    with pytest.raises(InvalidDerivedSpec):
        DerivedSpec.parse(segment)


def test_derived_spec_key_uses_canonical_form() -> None:
    spec = DerivedSpec(ImageId("a-b"), Size(640, 480), ImageFormat.WEBP)

    assert spec.key == "a-b-640x480.webp"
    assert DerivedSpec.parse(spec.key) == spec


@pytest.mark.parametrize("segment", ["cat-010x20.png", "cat-10x020.png", "cat-0010x1.jpg"])
def test_derived_spec_sizes_with_leading_zeros_are_not_derived_urls(segment: str) -> None:
    # One image, one URL, one path on disk: "010x20" would alias "10x20".
    with pytest.raises(InvalidDerivedSpec):
        DerivedSpec.parse(segment)


# SizePolicy


def test_size_policy_without_allowed_sizes_admits_any_size_up_to_max_dimension() -> None:
    policy = SizePolicy(1000)

    assert policy.allows(Size(1, 1))
    assert policy.allows(Size(1000, 1000))
    assert policy.allows(Size(17, 999))
    assert not policy.allows(Size(1001, 10))
    assert not policy.allows(Size(10, 1001))


def test_size_policy_with_allowed_sizes_admits_only_them() -> None:
    policy = SizePolicy(4096, frozenset({Size(100, 100), Size(800, 600)}))

    assert policy.allows(Size(100, 100))
    assert policy.allows(Size(800, 600))
    assert not policy.allows(Size(600, 800))
    assert not policy.allows(Size(100, 101))


def test_size_policy_rejects_an_allowed_size_beyond_max_dimension() -> None:
    assert not SizePolicy(4096, frozenset({Size(100, 100), Size(5000, 10)})).allows(Size(5000, 10))
