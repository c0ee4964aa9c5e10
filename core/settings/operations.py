"""Running it: health endpoints, delivery replicas, and how long data lives."""

from __future__ import annotations

from pydantic import (
    Field,
    SecretStr,
    model_validator,
)

from core.settings.base import Group


class OpsSettings(Group):
    """The operations endpoints (/metrics, /healthz, /readyz) each process serves; None keeps them off."""

    health_port: int | None = Field(default=None, ge=0, lt=65536)  # 0: any free port
    health_host: str = "0.0.0.0"


class DeliverySettings(Group):
    """How a bot process reads its platform's result stream beside other replicas of the same bot."""

    consumer: str | None = None  # this replica's name in the consumer group; None: "<platform>-<hostname>"
    claim_idle_s: float = Field(default=15.0, gt=0)  # results a dead replica left are taken over after this
    lease_s: float = Field(
        default=30.0, gt=0
    )  # a result being sent is held this long, renewed while it lasts


class RetentionSettings(Group):
    """How long what users leave behind is kept (core.governance.retention; README "Retention").

    Requests (the prompt and its parameters, a user's request list, cancel markers) and results (what was made
    and where it was posted, the image references, the result cache) live in Redis with these TTLs; stored images
    are swept from a local folder, or expired by the bucket's lifecycle rules on S3, after `images_days`. Audit
    entries older than `audit_days` are trimmed from the audit streams; the daily numbers behind /admin stats
    live `stats_days`. A result never outlives the images it shows.
    """

    images_days: int = Field(default=30, ge=1, le=3650)
    requests_days: int = Field(default=30, ge=1, le=3650)
    results_days: int = Field(default=30, ge=1, le=3650)
    audit_days: int = Field(default=365, ge=1, le=3650)
    stats_days: int = Field(default=14, ge=2, le=400)
    sweep_interval_s: float = Field(default=3600.0, gt=0)  # local storage: how often old images are swept
    apply_s3_lifecycle: bool = True  # put the expiry rules on the bucket at a worker's start-up
    # The key of the keyed hash that replaces a forgotten user's id in the audit trail (/forget). Unset: a random
    # key per /forget, so a forgotten user's entries share one pseudonym that nothing can link back to them.
    pseudonym_key: SecretStr | None = None

    @model_validator(mode="after")
    def _results_within_images(self) -> RetentionSettings:
        if self.results_days > self.images_days:
            raise ValueError(
                f"results_days ({self.results_days}) is longer than images_days ({self.images_days}): a result "
                "would outlive its images; make images_days at least as long"
            )
        return self

    @property
    def requests_s(self) -> int:
        return self.requests_days * 86400

    @property
    def results_s(self) -> int:
        return self.results_days * 86400

    @property
    def images_s(self) -> int:
        return self.images_days * 86400

    @property
    def audit_s(self) -> int:
        return self.audit_days * 86400

    @property
    def stats_s(self) -> int:
        return self.stats_days * 86400
