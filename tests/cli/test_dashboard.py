"""deploy/grafana/imagebot.json asks only for metrics the code registers, by labels they have, and shows them all."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from core import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "imagebot.json"
SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}
PROMETHEUS_LABELS = {"le", "instance", "job"}  # added by histograms and by the scrape


def registered() -> dict[str, MetricWrapperBase]:
    """Every sample name the processes export (imagebot_jobs_total, imagebot_stage_seconds_bucket…)."""
    names = {}
    for collector in vars(metrics).values():
        if isinstance(collector, MetricWrapperBase):
            family = collector.describe()[0]
            for suffix in SUFFIXES[family.type]:
                names[family.name + suffix] = collector
    return names


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_metric_the_dashboard_queries_is_registered_with_those_labels() -> None:
    names = registered()
    queried = set()
    for expr in expressions():
        used = set(re.findall(r"\bimagebot_\w+", expr))
        assert used, f"a panel queries no imagebot metric: {expr}"
        unknown = used - set(names)
        assert not unknown, f"{expr} asks for metrics nobody registers: {sorted(unknown)}"
        labels = set(re.findall(r"\b(\w+)\s*(?:=|!=|=~|!~)\s*\"", expr))
        for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
            labels |= {label.strip() for label in group.split(",") if label.strip()}
        known = PROMETHEUS_LABELS.union(*(names[name]._labelnames for name in used))
        assert labels <= known, f"{expr} uses labels {sorted(labels - known)} its metrics don't have"
        queried |= {names[name] for name in used}
    shown = {collector.describe()[0].name for collector in queried}
    every = {collector.describe()[0].name for collector in set(names.values())}
    assert shown == every, f"metrics on no panel: {sorted(every - shown)}"
