"""What each derived format costs and keeps at pymager's defaults, and what animations cost.

- Quality: the corpus photos resized by pymager's own pipeline (a PNG derivation: the un-encoded
  picture), then encoded as JPEG, WebP and AVIF with the default settings (``Settings``): bytes,
  SSIM against the un-encoded picture, and encode time (median of interleaved runs).
- ``rss``: peak RSS above idle of one process deriving a 300-frame 500x500 GIF as a 200x200 WebP.
- ``longest``: the longest animation an upload may be (``max_frames`` frames within
  ``max_animation_pixels``: 1000 x 500x500) derived as 200x200 GIF, WebP and AVIF, in seconds.

SSIM here is ``tests.quality.ssim`` (windowed luma SSIM, in Pillow alone), which the reduced copies'
quality guard uses too.

    python -m benchmarks.formats rss GIF_PATH OUT_FORMAT OUT_SIDE   # peak RSS, one JSON line
"""

from __future__ import annotations

import io
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image

from benchmarks import corpus
from pymager.adapters.imaging import output
from pymager.adapters.pillow import PillowProcessor
from pymager.config import Settings
from pymager.domain import DecodeLimits, ImageFormat, Mode, Rendition, Size
from tests.quality import ssim

REPO = Path(__file__).resolve().parents[1]
SIZES = {"1024": Size(1024, 768), "200": Size(200, 200)}
LOSSY = (ImageFormat.JPEG, ImageFormat.WEBP, ImageFormat.AVIF)


def defaults() -> output.Encoding:
    """The encoder settings a server runs with when pymager.ini sets none."""
    settings = Settings.for_directory(Path("."))
    return output.Encoding(
        settings.jpeg_quality, settings.webp_quality, settings.avif_quality, settings.avif_speed
    )


def _reference(sample: corpus.Sample, size: Size) -> Image.Image:
    out = io.BytesIO()
    with corpus.ensure(sample).open("rb") as source:
        PillowProcessor().derive(source, Rendition(size, Mode.FILL, ImageFormat.PNG), out)
    with Image.open(io.BytesIO(out.getvalue())) as picture:
        return picture.convert("RGB")


def _encode(
    picture: Image.Image, image_format: ImageFormat, encoding: output.Encoding
) -> tuple[bytes, float]:
    out = io.BytesIO()
    copy = picture.copy()  # encode clears .info
    started = time.perf_counter()
    output.encode(copy, image_format, encoding, out)
    return out.getvalue(), time.perf_counter() - started


def quality(samples: tuple[corpus.Sample, ...], runs: int) -> dict[str, Any]:
    """Bytes, SSIM and encode ms of each lossy format at the defaults, per picture and size."""
    encoding = defaults()
    figures: dict[str, Any] = {"defaults": encoding.__dict__, "runs": runs, "pictures": {}}
    for sample in samples:
        for label, size in SIZES.items():
            if size.width > sample.width:
                continue  # fill would enlarge it
            picture = _reference(sample, size)
            times: dict[ImageFormat, list[float]] = {image_format: [] for image_format in LOSSY}
            row: dict[str, Any] = {}
            for run in range(runs + 1):  # the first round warms up
                for image_format in LOSSY:
                    data, seconds = _encode(picture, image_format, encoding)
                    if run:
                        times[image_format].append(seconds)
                    row[image_format.value] = {"bytes": len(data), "data": data}
            for image_format in LOSSY:
                cell = row[image_format.value]
                with Image.open(io.BytesIO(cell.pop("data"))) as decoded:
                    cell["ssim"] = round(ssim(picture, decoded.convert("RGB")), 4)
                cell["encode_ms"] = round(statistics.median(times[image_format]) * 1000, 1)
            figures["pictures"][f"{sample.name}-{label}"] = row
    return figures


def ratios(figures: dict[str, Any]) -> dict[str, float | None]:
    """The AVIF and WebP targets: the worst picture of the corpus for each."""
    pictures = figures.get("pictures") or {}
    if not pictures:
        return dict.fromkeys(_RATIO_KEYS)

    def worst(numerator: str, denominator: str, field: str, highest: bool, only: str = "") -> float:
        values = [
            row[numerator][field] / row[denominator][field] for key, row in pictures.items() if only in key
        ]
        return float(round(max(values) if highest else min(values), 3))

    times = [
        row["AVIF"]["encode_ms"] / row["JPEG"]["encode_ms"] for key, row in pictures.items() if "1024" in key
    ]
    return {
        "avif_1024_encode_over_jpeg": round(statistics.median(times), 2) if times else None,
        "avif_bytes_over_jpeg_at_defaults": worst("AVIF", "JPEG", "bytes", highest=True),
        "avif_ssim_over_jpeg_at_defaults": worst("AVIF", "JPEG", "ssim", highest=False),
        "webp_ssim_over_jpeg_at_defaults": worst("WEBP", "JPEG", "ssim", highest=False),
    }


_RATIO_KEYS = (
    "avif_1024_encode_over_jpeg",
    "avif_bytes_over_jpeg_at_defaults",
    "avif_ssim_over_jpeg_at_defaults",
    "webp_ssim_over_jpeg_at_defaults",
)


# --- animations --------------------------------------------------------------------------------


def animated_gif(side: int, frames: int) -> Path:
    """A ``frames``-frame ``side`` x ``side`` GIF (a moving gradient, 100 ms each, looping), cached
    beside the corpus."""
    path = corpus.CACHE / f"v{corpus.VERSION}" / f"animation-{frames}x{side}.gif"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    base = Image.radial_gradient("L").resize((side * 2, side * 2))
    palette = [channel for index in range(256) for channel in (index, 255 - index, (index * 3) % 256)]

    def frame(index: int) -> Image.Image:
        shift = (index * 7) % side
        picture = base.crop((shift, shift // 2, shift + side, shift // 2 + side)).convert("P")
        picture.putpalette(palette)
        return picture

    pictures = (frame(index) for index in range(1, frames))
    partial = path.with_suffix(".part")
    frame(0).save(partial, "GIF", save_all=True, append_images=pictures, duration=100, loop=0)
    partial.replace(path)
    return path


def _derive_once(path: Path, image_format: ImageFormat, side: int) -> float:
    processor = PillowProcessor(limits=DecodeLimits())
    rendition = Rendition(Size(side, side), Mode.FILL, image_format)
    started = time.perf_counter()
    with path.open("rb") as source:
        processor.derive(source, rendition, io.BytesIO())
    return time.perf_counter() - started


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _rss_main(argv: list[str]) -> int:
    """In a fresh interpreter: idle RSS (imports done, the file read once), then the derivation's
    peak (VmHWM reset to the idle RSS first, else ru_maxrss)."""
    path, format_name, side = Path(argv[0]), argv[1], int(argv[2])
    # Imports and codecs initialised on a tiny animation (the file itself would leave its own frames'
    # memory in the heap and hide the peak).
    _derive_once(animated_gif(16, 2), ImageFormat(format_name), 8)
    idle = _status_kib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    seconds = _derive_once(path, ImageFormat(format_name), side)
    peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"idle_mb": idle / 1024, "peak_mb": peak / 1024, "seconds": seconds, "reset": reset}))
    return 0


def animation_rss(frames: int = 300, side: int = 500, out_side: int = 200) -> dict[str, Any]:
    """Peak RSS above idle of a ``frames`` x ``side``² GIF → ``out_side``² WebP, in its own process."""
    path = animated_gif(side, frames)
    answer = subprocess.run(
        [sys.executable, "-m", "benchmarks.formats", "rss", str(path), "WEBP", str(out_side)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    result = json.loads(answer.stdout)
    return {
        "frames": frames,
        "side": side,
        "out_side": out_side,
        "idle_rss_mb": round(result["idle_mb"], 1),
        "peak_rss_mb": round(result["peak_mb"], 1),
        "rss_above_idle_mb": round(result["peak_mb"] - result["idle_mb"], 1),
        "seconds": round(result["seconds"], 2),
        "peak_reset": result["reset"],
    }


def longest_animation(frames: int = 1000, side: int = 500, out_side: int = 200) -> dict[str, Any]:
    """Seconds to derive the longest animation an upload may be as each animated format."""
    path = animated_gif(side, frames)
    figures: dict[str, Any] = {"frames": frames, "side": side, "out_side": out_side}
    for image_format in (ImageFormat.GIF, ImageFormat.WEBP, ImageFormat.AVIF):
        figures[f"{image_format.value.lower()}_seconds"] = round(
            _derive_once(path, image_format, out_side), 2
        )
    figures["wait_timeout_seconds"] = Settings.for_directory(Path(".")).wait_timeout
    figures["generation_timeout_seconds"] = Settings.for_directory(Path(".")).generation_timeout
    return figures


def measure(samples: tuple[corpus.Sample, ...], runs: int, longest: bool) -> dict[str, Any]:
    photos = tuple(sample for sample in samples if sample.kind == "jpeg")
    figures: dict[str, Any] = {"quality": quality(photos, runs), "animation_rss": animation_rss()}
    if longest:
        figures["longest_animation"] = longest_animation()
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["rss"]:
        sys.exit(_rss_main(sys.argv[2:]))
    print(json.dumps(measure(corpus.QUICK, 3, "--longest" in sys.argv), indent=1))
