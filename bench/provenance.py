"""What provenance costs per image: watermarking and C2PA signing, next to the PNG encode they sit beside.

    .venv/bin/python -m bench.provenance [--side 512] [--rounds 10]

One run, side by side on the same images: encode_png alone, the watermark, signing the encoded PNG, and
signing a chat preview (JPEG). Prints median milliseconds and the ratio of each to the encode.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from core.settings import ProvenanceSettings
from worker.postprocess import encode_png, make_preview
from worker.provenance import Claim, Provenance


def picture(seed: int, side: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    planes = [128 + 60 * np.sin(x * rng.uniform(1, 8)) * np.cos(y * rng.uniform(1, 8)) for _ in range(3)]
    grain = rng.normal(0, 6, (side, side, 3))
    return Image.fromarray(np.clip(np.stack(planes, axis=-1) + grain, 0, 255).astype(np.uint8))


def median_ms(work: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        provenance = Provenance(ProvenanceSettings(), Path(folder))
        image = picture(0, args.side)
        parameters = {"prompt": "a lighthouse at dusk", "seed": "7", "model": "sd15"}
        png = encode_png(image, parameters)
        preview = make_preview(image, 1024)
        claim = Claim("sd15")
        figures = {
            "encode PNG": median_ms(lambda: encode_png(image, parameters), args.rounds),
            "watermark": median_ms(lambda: provenance.watermark(image), args.rounds),
            "sign PNG (C2PA)": median_ms(lambda: provenance.sign(png, "image/png", claim), args.rounds),
            "sign JPEG preview": median_ms(
                lambda: provenance.sign(preview, "image/jpeg", claim), args.rounds
            ),
        }
    encode = figures["encode PNG"]
    print(f"{args.side}×{args.side} image, median of {args.rounds} rounds")
    for name, ms in figures.items():
        print(f"  {name:<20} {ms:8.1f} ms   {ms / encode:5.2f}× the encode")
    added = figures["watermark"] + figures["sign PNG (C2PA)"]
    print(f"  provenance adds {added:.1f} ms per full-size image ({added / encode:.2f}× its encode)")


if __name__ == "__main__":
    main()
