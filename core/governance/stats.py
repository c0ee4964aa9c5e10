"""`/admin stats`: a UTC day's jobs by outcome, p50/p95 per stage, refusals by kind, paid spend and the busiest
users, read from the daily numbers core.delivery.tally writes beside the Prometheus metrics.

Moderators see their own community; owners see the whole bot (or, with `here`, the community they are in).
Percentiles are nearest-rank over the day's uniform sample of each stage (at most STATS_SAMPLE_KEPT values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from core.delivery.tally import (
    ALL,
    CACHED_FIELD,
    IMAGES_FIELD,
    JOB_FIELD,
    REFUSAL_FIELD,
    SAMPLED_FIELD,
    SPEND_FIELD,
    STAGES,
    utc_day,
)
from core.governance.admin_reply import Part, UserRef
from core.keys import STATS_KEY, STATS_STAGE_KEY, STATS_USERS_KEY

BUSIEST_SHOWN = 5
OUTCOMES = ("done", "failed", "refused", "cancelled")


@dataclass(frozen=True)
class StageFigures:
    seen: int  # durations the stage saw that day
    p50: float
    p95: float


@dataclass(frozen=True)
class DayStats:
    scope: str
    day: str  # YYYYMMDD, UTC
    jobs: dict[str, int]  # outcome → count
    images: int
    cached: int
    refusals: dict[str, int]  # kind → count
    spend_usd: float
    stages: dict[str, StageFigures | None]
    busiest: list[tuple[str, int]]  # (owner "platform:id", jobs), busiest first

    @property
    def total_jobs(self) -> int:
        return sum(self.jobs.values())


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def day_of(now: float, days_back: int = 0) -> str:
    return (datetime.fromtimestamp(now, tz=UTC) - timedelta(days=days_back)).strftime("%Y%m%d")


class StatsReader:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def day(self, scope: str, day: str) -> DayStats:
        raw = await self.redis.hgetall(STATS_KEY.format(scope=scope, day=day))  # type: ignore[misc]
        counts = {key.decode(): int(value) for key, value in raw.items()}
        stages: dict[str, StageFigures | None] = {}
        for stage in STAGES:
            sample = await self.redis.lrange(STATS_STAGE_KEY.format(scope=scope, day=day, stage=stage), 0, -1)  # type: ignore[misc]
            values = [float(value) for value in sample]
            stages[stage] = (
                StageFigures(
                    counts.get(SAMPLED_FIELD + stage, len(values)),
                    percentile(values, 0.5),
                    percentile(values, 0.95),
                )
                if values
                else None
            )
        top = await self.redis.zrevrange(
            STATS_USERS_KEY.format(scope=scope, day=day), 0, BUSIEST_SHOWN - 1, withscores=True
        )
        return DayStats(
            scope=scope,
            day=day,
            jobs={
                name.removeprefix(JOB_FIELD): n for name, n in counts.items() if name.startswith(JOB_FIELD)
            },
            images=counts.get(IMAGES_FIELD, 0),
            cached=counts.get(CACHED_FIELD, 0),
            refusals={
                name.removeprefix(REFUSAL_FIELD): n
                for name, n in counts.items()
                if name.startswith(REFUSAL_FIELD)
            },
            spend_usd=counts.get(SPEND_FIELD, 0) / 10_000,
            stages=stages,
            busiest=[(owner.decode(), int(score)) for owner, score in top],
        )


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def describe(stats: DayStats) -> list[list[Part]]:
    """The report as lines of text and users (front ends render users their own way)."""
    where = "the whole bot" if stats.scope == ALL else "this community"
    day = f"{stats.day[:4]}-{stats.day[4:6]}-{stats.day[6:]}"
    lines: list[list[Part]] = [[f"Stats for {where}, {day} (UTC):"]]
    outcomes = [f"{stats.jobs.get(name, 0)} {name}" for name in OUTCOMES]
    outcomes += [f"{n} {name}" for name, n in sorted(stats.jobs.items()) if name not in OUTCOMES]
    cached = f", {stats.cached} from the cache" if stats.cached else ""
    lines.append([f"Jobs: {stats.total_jobs} ({', '.join(outcomes)}); {stats.images} images{cached}"])
    for stage in STAGES:
        figures = stats.stages[stage]
        label = stage.replace("_", " ")
        if figures is None:
            lines.append([f"{label}: no data yet"])
        else:
            lines.append(
                [f"{label}: p50 {_seconds(figures.p50)}, p95 {_seconds(figures.p95)} ({figures.seen} jobs)"]
            )
    refusals = ", ".join(f"{kind} {n}" for kind, n in sorted(stats.refusals.items(), key=lambda kv: -kv[1]))
    lines.append([f"Refused: {refusals or 'none'}"])
    if stats.spend_usd:
        lines.append([f"Paid image service: ${stats.spend_usd:.2f}"])
    if stats.busiest:
        busiest: list[Part] = ["Busiest: "]
        for number, (owner, jobs) in enumerate(stats.busiest):
            busiest += ([", "] if number else []) + [UserRef.parse(owner), f" {jobs}"]
        lines.append(busiest)
    return lines


__all__ = ["ALL", "DayStats", "StageFigures", "StatsReader", "day_of", "describe", "percentile", "utc_day"]
