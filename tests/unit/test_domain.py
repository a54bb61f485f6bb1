"""The value objects: image ids, sizes, formats and derived-image specs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymager.domain import CENTRE, DerivedSpec, Focus, ImageFormat, ImageId, Mode, Size, SizePolicy
from pymager.errors import InvalidDerivedSpec, InvalidFocus, InvalidImageId, UnknownFormat

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
        "1.5x2",
        "1000000000x1",
        "ax b",
    ],
)
def test_size_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="x"):
        Size.parse(text)


def test_size_may_leave_one_side_unbounded_but_not_both() -> None:
    assert not Size(0, 5).bounded
    assert Size(3, 5).bounded
    with pytest.raises(ValueError, match="0x0"):
        Size(0, 0)
    with pytest.raises(ValueError, match="negative"):
        Size(-1, 5)


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
    policy = SizePolicy(4096, frozenset({(Size(100, 100), Mode.FILL), (Size(800, 600), Mode.FILL)}))

    assert policy.allows(Size(100, 100))
    assert policy.allows(Size(800, 600))
    assert not policy.allows(Size(600, 800))
    assert not policy.allows(Size(100, 101))


def test_size_policy_rejects_an_allowed_size_beyond_max_dimension() -> None:
    assert not SizePolicy(4096, frozenset({Size(100, 100), Size(5000, 10)})).allows(Size(5000, 10))


# The derived grammar, version 2: <id>-<W>x<H>[-<mode>].<ext>

ids = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=128)
sides = st.integers(0, 999_999_999)
modes = st.sampled_from(list(Mode))
extensions = st.sampled_from(["jpg", "jpeg", "png", "gif", "webp"])


@st.composite
def valid_segments(draw: st.DrawFn) -> tuple[str, str, Size, Mode, str]:
    mode = draw(modes)
    width, height = draw(sides), draw(sides)
    if mode is not Mode.FIT:  # only fit takes a 0 side
        width, height = max(width, 1), max(height, 1)
    elif not (width or height):
        width = 1
    image_id, ext = draw(ids), draw(extensions)
    return f"{image_id}-{width}x{height}{mode.suffix}.{ext}", image_id, Size(width, height), mode, ext


@given(valid_segments())
def test_every_valid_segment_round_trips_through_the_parser(case: tuple[str, str, Size, Mode, str]) -> None:
    segment, image_id, size, mode, ext = case
    spec = DerivedSpec.parse(segment)
    assert (spec.image_id, spec.size, spec.mode, spec.format) == (
        image_id,
        size,
        mode,
        ImageFormat.from_extension(ext),
    )
    canonical = segment.removesuffix(".jpeg") + ".jpg" if ext == "jpeg" else segment
    assert spec.key == canonical
    assert DerivedSpec.parse(spec.key) == spec


mutations = st.sampled_from(
    [
        lambda s: s.replace(".", "-fill.", 1),  # fill is never spelled out
        lambda s: s.replace(".", "-crop.", 1),  # no such mode
        lambda s: s.replace("-fit.", "-pad.").replace("x0-pad", "x0-pad").replace("-0x", "-0x"),
        lambda s: s.replace("x", "x0", 1) if "x0" not in s else s + "~",  # a leading zero
        lambda s: s.rsplit(".", 1)[0] + ".bmp",  # unknown extension: 400
        lambda s: s.rsplit(".", 1)[0],  # no extension
        lambda s: s.replace("-", "_"),
        lambda s: "-" + s.split("-", 1)[-1] if "-" in s else s + "!",
        lambda s: s + "/",
        lambda s: s.upper(),
    ]
)


@given(valid_segments(), mutations)
def test_a_mutated_segment_is_a_404_or_a_400_never_another_failure(
    case: tuple[str, str, Size, Mode, str], mutate: Callable[[str], str]
) -> None:
    segment = mutate(case[0])
    try:
        DerivedSpec.parse(segment)
    except (InvalidDerivedSpec, UnknownFormat):
        return  # 404, or 400 for an unknown extension
    # What still parses is a valid segment of its own: it names exactly one image, canonically.
    assert DerivedSpec.parse(segment).key in (segment, segment.removesuffix(".jpeg") + ".jpg")


@pytest.mark.parametrize(
    "segment",
    [
        "a-0x0-fit.jpg",
        "a-0x10.jpg",
        "a-10x0-pad.jpg",
        "a-10x10-fill.jpg",
        "a-10x10-Fit.jpg",
        "a-00x10-fit.jpg",
    ],
)
def test_segments_outside_the_v2_grammar_name_nothing(segment: str) -> None:
    with pytest.raises(InvalidDerivedSpec):
        DerivedSpec.parse(segment)


def test_the_id_is_everything_before_the_last_size_and_mode() -> None:
    spec = DerivedSpec.parse("a-10x10-fit-20x30-pad.png")
    assert (spec.image_id, spec.size, spec.mode) == ("a-10x10-fit", Size(20, 30), Mode.PAD)
    assert DerivedSpec.parse("a-10x10-fit.png").image_id == "a"
    assert DerivedSpec.parse("pad-800x0-fit.webp").name == "800x0-fit.webp"


def test_size_policy_caps_an_unbounded_side_at_max_dimension() -> None:
    policy = SizePolicy(1000)
    assert policy.box(Size(800, 0)) == Size(800, 1000)
    assert policy.box(Size(0, 50)) == Size(1000, 50)
    assert not policy.allows(Size(1001, 0), Mode.FIT)


@pytest.mark.parametrize(
    ("text", "focus"),
    [("0.25,0.4", Focus(0.25, 0.4)), ("0,1", Focus(0, 1)), (" 1 , .5 ", Focus(1, 0.5)), ("0.5,0.5", CENTRE)],
)
def test_focus_parses_two_fractions(text: str, focus: Focus) -> None:
    assert Focus.parse(text) == focus


@pytest.mark.parametrize(
    "text", ["", "0.5", "1.01,0", "-0,5", "0.5,0.5,0.5", "inf,0", "nan,nan", "1e-3,0", "½,0"]
)
def test_focus_outside_the_grammar_is_invalid(text: str) -> None:
    with pytest.raises(InvalidFocus):
        Focus.parse(text)
