"""Animated results: every frame of an animated original through the same steps, fed to the encoder
one at a time.

Pillow's GIF, WebP and AVIF savers take the frames after the first as ``append_images`` and walk
each with ``seek``: ``Frames`` is such an image, whose ``seek(n)`` decodes the original's next frame
and makes the derived frame from it there and then. No list of decoded frames is ever built, so a
derivation holds one decoded frame of the original (and the decoder's own canvas) at a time, whatever
the frame count. The GIF saver keeps its output frames to compare each with the last (at output size,
small); the WebP and AVIF savers hand each frame to libwebp or libavif at once.

A frame's duration is known once the original's decoder reached it, so the savers get ``Durations``,
a list whose ``[n]`` is read after they produced frame ``n`` (each of them reads it then).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import SupportsIndex, overload

from PIL import Image, ImageFile

from pymager.adapters.imaging.decoding import decoding
from pymager.domain import ImageFormat

MakeFrame = Callable[[Image.Image], Image.Image]


def frame_count(image: ImageFile.ImageFile) -> int:
    """How many frames ``image`` animates (1 for a still; a HEIF collection is a still)."""
    return 1 if image.format == "HEIF" else int(getattr(image, "n_frames", 1))


def loop_count(image: ImageFile.ImageFile) -> int | None:
    """The original's loop count as Pillow reads it (0: forever); ``None`` for a GIF without a
    NETSCAPE block (it plays once). Pillow reads no loop count from an AVIF: libavif writes AVIF
    sequences as repeating forever, so one is taken to loop forever."""
    loop = image.info.get("loop")
    if isinstance(loop, int):
        return loop
    return 0 if image.format == "AVIF" else None


class Frames(Image.Image):
    """Frames 1 … ``count`` - 1 of ``source`` as one multi-frame image, each made by ``make`` when
    ``seek`` reaches it. Frames must be asked in order (as the savers do); each is valid until the
    next ``seek``. ``durations`` records each frame's duration as it is made."""

    def __init__(
        self, source: ImageFile.ImageFile, count: int, make: MakeFrame, durations: Durations
    ) -> None:
        super().__init__()
        self._source = source
        self._make = make
        self._durations = durations
        self._format = ImageFormat(source.format)
        self.n_frames = count - 1
        self.is_animated = self.n_frames > 1
        self._position = -1
        self.seek(0)

    def seek(self, frame: int) -> None:
        if frame == self._position:
            return
        if not 0 <= frame < self.n_frames:
            raise EOFError("no more frames")
        if frame != self._position + 1:
            raise ValueError(f"frames are made in order: asked for {frame} after {self._position}")
        index = frame + 1
        with decoding(self._format):
            self._source.seek(index)
            self._source.load()
            derived = self._make(self._source)
        self._durations.record(index, self._source.info.get("duration", 0))
        self.im = derived.im
        self._mode = derived.mode
        self._size = derived.size
        self.palette = derived.palette
        self.info = dict(derived.info)
        self._position = frame

    def tell(self) -> int:
        return self._position


class Durations(list[int]):
    """Each frame's duration in milliseconds, recorded as the frames are made: ``[n]`` of a frame not
    made yet is an error, never a guess. A ``list`` because that is what the savers test for."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self._count = count
        self._values: dict[int, int] = {}

    def record(self, index: int, duration: object) -> None:
        self._values[index] = round(duration) if isinstance(duration, (int, float)) else 0

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: SupportsIndex, /) -> int: ...
    @overload
    def __getitem__(self, index: slice, /) -> list[int]: ...
    def __getitem__(self, index: SupportsIndex | slice, /) -> int | list[int]:
        if isinstance(index, slice):
            return [self._values[position] for position in range(*index.indices(self._count))]
        return self._values[operator.index(index)]

    def __iter__(self) -> Iterator[int]:
        return (self._values[index] for index in range(self._count))
