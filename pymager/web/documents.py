"""The JSON documents of the API: an original as an upload answers it, as ``/original/<id>/info``
describes it, and the listing's pages with their opaque cursors."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

from pymager.domain import DerivedRecord, ImageId, Original, OriginalDescription, OriginalsPage
from pymager.errors import InvalidImageId, InvalidListing

# Parameters of the listing's query string, each at most once.
_LISTING_PARAMETERS = frozenset({"after", "limit"})


def original_document(original: Original) -> dict[str, Any]:
    """An original as the upload answers it (the 2011 fields, then the focal point)."""
    return {
        "id": original.image_id,
        "format": original.format.value,
        "width": original.width,
        "height": original.height,
        "bytes": original.bytes,
        "created": original.created.isoformat(),
        "focus": [original.focus.x, original.focus.y],
    }


def listed_document(original: Original) -> dict[str, Any]:
    """An original as the listing names it: the size upright (after EXIF orientation)."""
    upright = original.upright
    return {
        "id": original.image_id,
        "format": original.format.value,
        "width": original.width if upright is None else upright.width,
        "height": original.height if upright is None else upright.height,
        "bytes": original.bytes,
        "sha256": original.checksum,
        "created": original.created.isoformat(),
    }


def info_document(description: OriginalDescription, derived_url: Callable[[str], str]) -> dict[str, Any]:
    """``/original/<id>/info``: what the registry knows of an original and every ready derived image
    of it (``derived_url`` makes the URL of a derived path: signed, for a key holder). Never EXIF."""
    original = description.original
    placeholder = original.placeholder
    traits = original.traits
    return {
        **listed_document(original),
        "focus": [original.focus.x, original.focus.y],
        "animated": None if traits is None else traits.animated,
        "alpha": None if traits is None else traits.alpha,
        "thumbhash": None if placeholder is None else placeholder.thumbhash,
        "colour": None if placeholder is None else placeholder.colour,
        "derived": [_derived_document(record, derived_url) for record in description.derived],
    }


def _derived_document(record: DerivedRecord, derived_url: Callable[[str], str]) -> dict[str, Any]:
    spec, produced = record.spec, record.produced
    return {
        "url": derived_url(f"/derived/{spec.key}"),
        "format": spec.format.value,
        "mode": spec.mode.value,
        "width": None if produced is None else produced.width,
        "height": None if produced is None else produced.height,
        "bytes": record.bytes,
        "created": None if record.created is None else record.created.isoformat(),
    }


def listing_document(page: OriginalsPage) -> dict[str, Any]:
    return {
        "items": [listed_document(original) for original in page.originals],
        "next": None if page.after is None else cursor(page.after),
    }


def cursor(after: ImageId) -> str:
    """The cursor of the page after ``after``: opaque to clients, which pass it back as given. It is
    the last id of the page, so that any id is a cursor (the listing resumes after it) and a listing
    cannot break on one removed meanwhile."""
    return str(after)


def listing_query(query_string: str, default_limit: int) -> tuple[str | None, int]:
    """``after`` (an id, from its cursor) and ``limit`` from the listing's query string, or
    ``InvalidListing``: an unknown or repeated parameter, a cursor pymager did not make, a limit that is
    not a whole number (the service checks its range)."""
    try:
        pairs = urllib.parse.parse_qsl(
            query_string, keep_blank_values=True, strict_parsing=bool(query_string)
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidListing(f"the query string cannot be parsed: {exc}") from None
    names = [name for name, _ in pairs]
    unknown = sorted(set(names) - _LISTING_PARAMETERS)
    if unknown:
        raise InvalidListing(f"unknown parameter {unknown[0][:40]!r}; the listing takes after and limit")
    if len(names) != len(set(names)):
        raise InvalidListing("each of after and limit is given at most once")
    values = dict(pairs)
    limit_text = values.get("limit")
    if limit_text is not None and not (
        limit_text.isascii() and limit_text.isdigit() and len(limit_text) <= 9
    ):
        raise InvalidListing(f"limit is a whole number, got {(limit_text or '')[:20]!r}")
    limit = default_limit if limit_text is None else int(limit_text)
    after = values.get("after")
    return (None if after is None else _cursor_id(after)), limit


def _cursor_id(value: str) -> str:
    try:
        return ImageId(value)
    except InvalidImageId:
        raise InvalidListing(f"after is not a cursor of this listing: {value[:40]!r}") from None
