"""The numbers operators watch, as Prometheus metrics; every process serves them on /metrics (cli/health.py).

One registry per process (prometheus_client's default). Label values are small closed sets (outcomes, reason
codes, stages, queue and platform names), never user ids or prompts.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)

JOBS = Counter(
    "imagebot_jobs_total", "Jobs ended, by outcome and reason code", ["queue", "outcome", "reason"]
)
STAGE_SECONDS = Histogram(
    "imagebot_stage_seconds",
    "Time per stage of a job: queue_wait, model, store, delivery",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
DEVICE_BUSY_SECONDS = Counter(
    "imagebot_device_busy_seconds_total",
    "Seconds the worker's device spent in model calls (rate = busy share)",
)
QUEUE_DEPTH = Gauge(
    "imagebot_queue_depth", "Jobs on the queue (waiting or running), by queue, read at each scrape", ["queue"]
)
WARM_MODELS = Gauge("imagebot_warm_models", "Models loaded and kept warm by this worker", ["model"])
MODEL_MEMORY_BYTES = Gauge(
    "imagebot_model_memory_bytes",
    "Bytes a warm model's weights take, by device (0 once evicted)",
    ["model", "device"],
)
MODEL_LOADS = Counter(
    "imagebot_model_loads_total", "Models loaded by this worker (start-up and reloads)", ["model"]
)
MODEL_EVICTIONS = Counter(
    "imagebot_model_evictions_total", "Warm models evicted to stay within the memory budget", ["model"]
)
REFUSALS = Counter("imagebot_refusals_total", "Requests refused before queueing, by kind", ["kind"])
PLATFORM_ERRORS = Counter(
    "imagebot_platform_api_errors_total", "Errors from a chat platform's API", ["platform", "kind"]
)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "imagebot_rate_limit_wait_seconds_total", "Seconds spent waiting on platform rate limits", ["platform"]
)
PAID_FALLBACK_USD = Counter("imagebot_paid_fallback_usd_total", "Spend on the paid image API standing in")
