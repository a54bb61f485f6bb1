"""Find a picture's focal point from its own pixels, so a fill crop keeps a subject that is off the centre.

The idea is libvips' ``attention`` smartcrop (what imgproxy's ``smart`` gravity uses): an edge map,
shrunk to a coarse grid, smoothed, and its peak taken as the place to keep. libvips also scores skin
tones and saturated colour; we do not, so a bright or vivid but flat patch never wins on colour alone.
Two changes make it steadier on pictures without a clear subject:

- the edges are a Laplacian, which is zero on any linear gradient however steep, so flat colour and
  smooth shading have no saliency at all and give the centre exactly;
- the grid's median (the picture's background level of detail) is subtracted, and a peak that does not
  stand clearly above it is no subject: the centre is kept, as pymager has always cropped.

Rather than the peak cell itself (libvips), the point is the saliency-weighted centre of the connected
region around the peak, so the crop centres on the whole subject, not on its busiest corner. That is
thumbor's centre of mass of its feature points, but of one subject only: a centroid of everything would
fall between two subjects and could keep neither.
"""

from __future__ import annotations

import functools
from array import array
from collections.abc import Sequence

from PIL import Image, ImageChops, ImageFilter, ImageOps

from pymager.domain import CENTRE, Focus

# The edge map is made at this size at most: halving a 256-px copy halves the cost and averages away
# pixel noise, while any structure a crop could keep or cut is still several pixels wide.
_WORK_SIDE = 128
# Cells of the coarse grid along the long side (libvips shrinks to 32 too): ~3 % of the picture each.
_GRID_SIDE = 32
# |Laplacian| below this is 8-bit quantisation of a gradient or gentle shading, not detail.
_NOISE_FLOOR = 12
# A peak is a subject only if it stands this much (relative) above the median cell.
_PEAK_OVER_BACKGROUND = 0.5
# The subject is the connected region around the peak down to this fraction of the peak's height.
_REGION_LEVEL = 0.5
# ...and holds at least this much of the picture's mean saliency: a speck of dust or the tip of a radial
# gradient (a cone's kink) is no subject, a textured patch of ~0.1 % of the picture still is.
_MIN_MASS = 0.1
# Mild centre prior: a corner's saliency counts this much less when choosing the peak.
_CENTRE_PRIOR = 0.25

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
# A signed Laplacian halved around 128 (Pillow clips filter output to 0..255, so one pass keeps both
# signs), then a table takes its magnitude above the noise floor.
_LAPLACIAN = ImageFilter.Kernel((3, 3), (-1, -1, -1, -1, 8, -1, -1, -1, -1), scale=2, offset=128)
_NEIGHBOURHOOD = ImageFilter.BoxBlur(1)
_MAGNITUDE = [min(255, max(0, abs(value - 128) * 2 - _NOISE_FLOOR)) for value in range(256)]


def detect_focus(image: Image.Image) -> Focus:
    """The focal point of ``image`` (a small upright copy, any mode): the centre of its most detailed
    region, or exactly the centre when nothing stands out (flat colour, smooth gradients, even texture).
    Fully transparent pixels never count. Deterministic."""
    grey, alpha = _grey_and_alpha(image)
    factor = -(-max(grey.size) // _WORK_SIDE)
    if factor > 1:
        grey = grey.reduce(factor)
        alpha = alpha.reduce(factor) if alpha is not None else None
    width, height = grey.size
    if width < 3 or height < 3:
        return CENTRE
    saliency = _edges(grey)
    if alpha is not None:
        # Transparent pixels may hold any colour: premultiply it away, count the silhouette instead.
        saliency = ImageChops.lighter(_edges(ImageChops.multiply(grey, alpha)), _edges(alpha))
        saliency = ImageChops.multiply(saliency, alpha.crop((1, 1, width - 1, height - 1)))
    if saliency.getbbox() is None:
        return CENTRE
    inner_width, inner_height = saliency.size
    longest = max(inner_width, inner_height)
    columns = max(1, round(inner_width * _GRID_SIDE / longest))
    rows = max(1, round(inner_height * _GRID_SIDE / longest))
    cells = saliency.convert("F").resize((columns, rows), Image.Resampling.BOX)
    # Each cell's 3×3 neighbourhood, in 8 bits: it only chooses the peak and the region's extent.
    # Zero cells around the grid, so the blur does not count a border cell twice (favouring borders).
    smooth = ImageOps.expand(saliency.resize((columns, rows), Image.Resampling.BOX), 1)
    smooth = smooth.filter(_NEIGHBOURHOOD).crop((1, 1, columns + 1, rows + 1))
    found = _subject_centre(array("f", cells.tobytes()), smooth.tobytes(), columns, rows)
    if found is None:
        return CENTRE
    # Grid coordinates -> pixels of the working copy (the edge map lost a 1-pixel border) -> fractions.
    x = (1 + found[0] * inner_width / columns) / width
    y = (1 + found[1] * inner_height / rows) / height
    # Four decimals is under a pixel of a 24 MP picture, and what the registry and logs show stays short.
    return Focus(round(min(1.0, max(0.0, x)), 4), round(min(1.0, max(0.0, y)), 4))


def _grey_and_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """An 8-bit grey copy of ``image`` and its alpha (``None`` when every pixel is opaque)."""
    mode = image.mode
    if mode == "PA" or (mode == "P" and "transparency" in image.info):
        image, mode = image.convert("RGBA"), "RGBA"
    alpha = None
    if mode in _ALPHA_MODES:
        alpha = image.getchannel(len(image.getbands()) - 1)
        if alpha.getextrema()[0] == 255:
            alpha = None
    if mode in _WIDE_MODES:
        # Pillow's own conversion to L clips at 255 instead of scaling 16-bit samples down; a wide
        # picture with nothing above 255 holds 8-bit values (Pillow's own L-to-I conversion makes those).
        wide = image.convert("I")
        brightest = wide.getextrema()[1]  # one band: a number
        scale = 1 / 257 if isinstance(brightest, int | float) and brightest > 255 else 1
        grey = wide.point(lambda value: value * scale).convert("L")
    elif mode in {"La", "LAB"}:
        grey = image.getchannel(0)  # neither converts to L; band 0 is the lightness
    else:
        grey = image.convert("L")
    return grey, alpha


def _edges(grey: Image.Image) -> Image.Image:
    """|Laplacian| of ``grey`` above the noise floor, without the 1-pixel border that Pillow's filters
    copy unfiltered from the source."""
    width, height = grey.size
    return grey.filter(_LAPLACIAN).crop((1, 1, width - 1, height - 1)).point(_MAGNITUDE)


def _subject_centre(
    cells: Sequence[float], smooth: Sequence[int], columns: int, rows: int
) -> tuple[float, float] | None:
    """The saliency-weighted centre, in grid units, of the region around the peak of the ``smooth``
    grid, or ``None`` when no peak stands out from the background."""
    background = sorted(cells)[len(cells) // 2]
    prior = _prior(columns, rows)
    peak = max(range(len(cells)), key=lambda index: (smooth[index] - background) * prior[index])
    height = smooth[peak] - background
    if height <= 0 or height <= _PEAK_OVER_BACKGROUND * background:
        return None
    level = background + _REGION_LEVEL * height
    region, pending = {peak}, [peak]
    while pending:
        index = pending.pop()
        row, column = divmod(index, columns)
        for neighbour, inside in (
            (index - 1, column > 0),
            (index + 1, column < columns - 1),
            (index - columns, row > 0),
            (index + columns, row < rows - 1),
        ):
            if inside and neighbour not in region and smooth[neighbour] >= level:
                region.add(neighbour)
                pending.append(neighbour)
    total = sum_x = sum_y = 0.0
    for index in region:
        weight = max(0.0, cells[index] - background)
        row, column = divmod(index, columns)
        total += weight
        sum_x += weight * (column + 0.5)
        sum_y += weight * (row + 0.5)
    if total < _MIN_MASS * len(cells):
        return None
    return sum_x / total, sum_y / total


@functools.lru_cache(maxsize=64)
def _prior(columns: int, rows: int) -> tuple[float, ...]:
    """Per cell, 1 at the centre falling to ``1 - _CENTRE_PRIOR`` in the corners."""
    return tuple(
        1.0
        - _CENTRE_PRIOR * (((2 * (column + 0.5) / columns - 1) ** 2 + (2 * (row + 0.5) / rows - 1) ** 2) / 2)
        for row in range(rows)
        for column in range(columns)
    )
