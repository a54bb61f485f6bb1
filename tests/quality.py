"""Picture quality measures in Pillow alone, shared by the tests and the benchmarks.

SSIM is the mean over 8x8 windows at a stride of 4 of the luma (BT.601) SSIM, with the usual constants
(K1 0.01, K2 0.03): the windowed SSIM of libvpx and x264. PSNR is over every band of the pictures.
"""

from __future__ import annotations

import math

from PIL import Image, ImageChops, ImageMath, ImageStat

_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def ssim(reference: Image.Image, candidate: Image.Image) -> float:
    """Windowed luma SSIM of ``candidate`` against ``reference`` (1.0: the same pixels)."""
    x = reference.convert("L").convert("F")
    y = candidate.convert("L").convert("F")
    means = []
    for offset in (0, 4):
        box = (offset, offset, x.width - (x.width - offset) % 8, x.height - (x.height - offset) % 8)
        a, b = x.crop(box), y.crop(box)
        mean_a, mean_b = a.reduce(8), b.reduce(8)
        aa = ImageMath.lambda_eval(lambda v: v["a"] * v["a"], a=a).reduce(8)
        bb = ImageMath.lambda_eval(lambda v: v["b"] * v["b"], b=b).reduce(8)
        ab = ImageMath.lambda_eval(lambda v: v["a"] * v["b"], a=a, b=b).reduce(8)
        windows = ImageMath.lambda_eval(
            lambda v: (
                ((2 * v["ma"] * v["mb"] + _C1) * (2 * (v["ab"] - v["ma"] * v["mb"]) + _C2))
                / (
                    (v["ma"] * v["ma"] + v["mb"] * v["mb"] + _C1)
                    * (v["aa"] - v["ma"] * v["ma"] + v["bb"] - v["mb"] * v["mb"] + _C2)
                )
            ),
            ma=mean_a,
            mb=mean_b,
            aa=aa,
            bb=bb,
            ab=ab,
        )
        values = [float(value) for value in windows.get_flattened_data()]
        means.append(sum(values) / len(values))
    return sum(means) / len(means)


def psnr(reference: Image.Image, candidate: Image.Image) -> float:
    """PSNR in dB over every band (``inf``: the same pixels); both in the same mode and size."""
    squares = ImageStat.Stat(ImageChops.difference(reference, candidate)).sum2
    count = reference.width * reference.height * len(squares)
    mse = sum(squares) / count
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)
