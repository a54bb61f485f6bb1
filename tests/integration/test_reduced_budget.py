"""The upload check's decode budget for reduced copies: a JPEG copy that would need more than
``MAX_DECODED_PIXELS`` decoded is not made, so the check's memory stays bounded."""

from __future__ import annotations

from pymager.adapters.imaging.reduction import MAX_DECODED_PIXELS, affordable_sides


def test_a_24_mp_jpeg_gets_every_copy() -> None:
    assert affordable_sides((6000, 4000), (3000, 800), jpeg=True) == (3000, 800)


def test_a_36_mp_jpeg_gets_only_the_copies_its_budget_decodes() -> None:
    # Its 3000 px copy needs the 1/2 DCT scale: 3600x2500, 9 MP.
    assert MAX_DECODED_PIXELS < 3600 * 2500
    assert affordable_sides((7200, 5000), (3000, 800), jpeg=True) == (800,)


def test_a_png_is_decoded_whole_anyway_so_its_copies_are_not_limited() -> None:
    assert affordable_sides((7200, 5000), (3000, 800), jpeg=False) == (3000, 800)
