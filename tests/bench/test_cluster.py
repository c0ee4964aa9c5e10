"""bench/cluster.py as a test: 3 worker and 2 bot processes, one of each SIGKILLed mid-burst, lose nothing.

The processes are real `imagebot worker` and `imagebot telegram` (webhook) commands on one Redis; the test
plays Telegram and the load balancer (see the bench's docstring). It prints the bench's figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cluster import run


@pytest.mark.timeout(280)
async def test_killing_a_worker_and_a_bot_mid_burst_loses_and_repeats_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = await run(requests=30, kill_after=12, spacing_s=0.05, workdir=tmp_path)
    with capsys.disabled():
        print("\n" + "\n".join(figures.lines()))
    assert figures.delivered == figures.requests
    assert figures.lost == 0
    assert figures.duplicated == 0
    assert figures.in_flight_at_kill > 0  # the kill hit requests on their way
