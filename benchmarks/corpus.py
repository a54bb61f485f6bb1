"""A deterministic, camera-like photo corpus, generated with Pillow from a fixed seed.

Each image is a smooth scene (gradients, soft shapes) with sensor-like grain, so a JPEG of it compresses
like a photograph (24 MP: about 9.6 MB, 12 MP: about 9 MB) rather than like a flat test pattern. Generated
files are cached under ``benchmarks/.corpus`` keyed by ``VERSION``; delete the folder to rebuild.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

VERSION = 1
CACHE = Path(__file__).resolve().parent / ".corpus"


@dataclass(frozen=True)
class Sample:
    """One corpus image: ``name`` is also its file name and its pymager id."""

    name: str
    width: int
    height: int
    kind: str  # "jpeg", "png-alpha" or "jpeg-big" (the upload test's large file)
    quality: int = 85
    grain: float = 0.10

    @property
    def filename(self) -> str:
        return f"{self.name}.{'png' if self.kind == 'png-alpha' else 'jpg'}"


PHOTO_24MP = Sample("photo24mp", 6000, 4000, "jpeg", quality=93, grain=0.12)
PHOTO_12MP = Sample("photo12mp", 4032, 3024, "jpeg", quality=96, grain=0.22)
GRAPHIC_2MP = Sample("graphic2mp", 1920, 1080, "png-alpha")
PHOTO_SMALL = Sample("photo800", 800, 600, "jpeg")
# About 30 MB: the upload memory test. Heavy grain at quality 97 on 36 MP.
UPLOAD_30MB = Sample("upload30mb", 7200, 5000, "jpeg-big", quality=97, grain=0.28)

FULL = (PHOTO_24MP, PHOTO_12MP, GRAPHIC_2MP, PHOTO_SMALL)
QUICK = (PHOTO_24MP, GRAPHIC_2MP, PHOTO_SMALL)


def ensure(sample: Sample) -> Path:
    """The path of ``sample``, generating it on first use."""
    directory = CACHE / f"v{VERSION}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / sample.filename
    if not path.exists():
        partial = path.with_suffix(path.suffix + ".part")
        _write(sample, partial)
        partial.replace(path)
    return path


def _scene(rng: random.Random, width: int, height: int) -> Image.Image:
    """Gradients and blurred shapes, drawn at 1/4 scale and enlarged (smooth, like out-of-focus areas)."""
    small = (max(1, width // 4), max(1, height // 4))
    bands = [
        Image.linear_gradient("L").resize(small),
        Image.linear_gradient("L").rotate(90).resize(small),
        Image.radial_gradient("L").resize(small),
    ]
    rng.shuffle(bands)
    scene = Image.merge("RGB", bands)
    draw = ImageDraw.Draw(scene)
    for _ in range(160):
        x, y = rng.randrange(small[0]), rng.randrange(small[1])
        radius = rng.randrange(4, max(5, small[0] // 6))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        box = (x - radius, y - radius, x + radius, y + radius * rng.uniform(0.3, 1.5))
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    for _ in range(400):  # sharp lines: edges and fine detail
        points = [(rng.randrange(small[0]), rng.randrange(small[1])) for _ in range(2)]
        draw.line(points, fill=(rng.randrange(256),) * 3, width=rng.randrange(1, 3))
    scene = scene.filter(ImageFilter.GaussianBlur(1.2))
    return scene.resize((width, height), Image.Resampling.BICUBIC)


def _grain(rng: random.Random, width: int, height: int) -> Image.Image:
    return Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))


def _write(sample: Sample, path: Path) -> None:
    rng = random.Random(f"pymager-bench-{sample.name}-{VERSION}")  # noqa: S311 - reproducible, not secret
    image = _scene(rng, sample.width, sample.height)
    image = Image.blend(image, _grain(rng, sample.width, sample.height), sample.grain)
    if sample.kind == "png-alpha":
        alpha = Image.radial_gradient("L").resize(image.size).point(lambda value: 255 - value)
        image.putalpha(alpha)
        image.save(path, "PNG", compress_level=6)
        return
    exif = Image.Exif()
    exif[0x010F] = "pymager-bench"  # Make
    exif[0x0110] = "synthetic camera"  # Model
    exif[0x0112] = 1  # Orientation
    image.save(path, "JPEG", quality=sample.quality, subsampling="4:2:0", exif=exif.tobytes())
