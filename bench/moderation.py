"""Moderation latency: the prompt check (default list + 200 community terms on a real Redis) and the image check.

Run as a module from the repository root (as a script, this file would shadow the moderation package):
`python -m bench.moderation [--prompts 4000] [--images 30]`. Prints plain lines.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import statistics
import time

import numpy as np
import redis.asyncio as aioredis
from PIL import Image, ImageDraw, ImageFilter

from cli.redis_server import EmbeddedRedis
from moderation.community_terms import CommunityBlocklist
from moderation.default_terms import default_blocklist
from moderation.image_check import NudeNetImageCheck
from moderation.prompt_check import PromptCheck

SUBJECTS = [
    "a lighthouse",
    "a cat",
    "an old sailor",
    "a cocktail bar",
    "a city street",
    "a dragon",
    "a teapot",
]
STYLES = ["oil painting", "watercolor", "35mm photo", "pixel art", "studio lighting", "4k, highly detailed"]
PLACES = ["in Scunthorpe", "at dusk", "on the moon", "in a therapist's office", "in Sussex", "under the sea"]
BYPASSES = ["n.s.f.w", "p0rn", "nu\u200bde", "рогn", "s e x", "d1smembered", "a l.o.l.i"]


def make_prompts(count: int, rng: random.Random) -> list[str]:
    prompts = []
    for index in range(count):
        words = [rng.choice(SUBJECTS), rng.choice(PLACES), rng.choice(STYLES), rng.choice(STYLES)]
        if index % 10 == 0:
            words.insert(1, rng.choice(BYPASSES))
        prompts.append(", ".join(words) + f", seed {rng.randint(0, 99999)}")
    return prompts


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def bench_prompts(count: int) -> None:
    rng = random.Random(1)
    prompts = make_prompts(count, rng)
    with EmbeddedRedis() as server:
        client = aioredis.Redis.from_url(server.url)
        community = CommunityBlocklist(client)
        for index in range(200):
            await community.add("bench-guild", f"blocked{chr(97 + index // 26)}{chr(97 + index % 26)} term")
        setups = {
            "default list only": PromptCheck(default_blocklist()),
            "default list + 200 community terms (real redis)": PromptCheck(default_blocklist(), community),
        }
        for name, check in setups.items():
            await check.check_prompt("warm up", "", "bench-guild")
            timings, refused = [], 0
            for prompt in prompts:
                started = time.perf_counter()
                verdict = await check.check_prompt(prompt, "blurry, low quality", "bench-guild")
                timings.append((time.perf_counter() - started) * 1000)
                refused += not verdict.allowed
            print(
                f"prompt check, {name}: n={count} p50={percentile(timings, 0.5):.3f} ms "
                f"p99={percentile(timings, 0.99):.3f} ms max={max(timings):.3f} ms refused={refused}"
            )
        await client.aclose()


def figure(dressed: bool) -> Image.Image:
    image = Image.new("RGB", (512, 512), (90, 120, 160))
    draw = ImageDraw.Draw(image)
    draw.ellipse((180, 40, 330, 200), fill=(224, 172, 140))
    draw.rectangle((150, 200, 360, 512), fill=(224, 172, 140))
    for cx in (205, 305):
        draw.ellipse((cx - 55, 250, cx + 55, 360), fill=(230, 180, 150))
        draw.ellipse((cx - 10, 300, cx + 10, 320), fill=(170, 100, 90))
    if dressed:
        draw.rectangle((140, 215, 370, 512), fill=(40, 90, 60))
    return image.filter(ImageFilter.GaussianBlur(3))


async def bench_images(count: int) -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8))
    images = []
    for image in (figure(False), figure(True), noise):
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        images.append(buffer.getvalue())
    check = NudeNetImageCheck(threshold=0.5)
    started = time.perf_counter()
    check.warm_up()
    print(f"image check: detector load {(time.perf_counter() - started) * 1000:.0f} ms (once per process)")
    await check.check_image(images[0])
    timings, outcomes = [], []
    for index in range(count):
        started = time.perf_counter()
        verdict = await check.check_image(images[index % len(images)])
        timings.append((time.perf_counter() - started) * 1000)
        outcomes.append(verdict.outcome.value)
    print(
        f"image check 512x512 PNG: n={count} mean={statistics.fmean(timings):.1f} ms "
        f"p50={percentile(timings, 0.5):.1f} ms p99={percentile(timings, 0.99):.1f} ms "
        f"(decode + detect, in a thread; outcomes {sorted(set(outcomes))})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=4000)
    parser.add_argument("--images", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(bench_prompts(args.prompts))
    asyncio.run(bench_images(args.images))


if __name__ == "__main__":
    main()
