"""Images in an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO, moto) through boto3.

Every boto3 call runs in a thread (`asyncio.to_thread`), never on the event loop; the client is created
once, lazily, in that thread. Objects are named `<prefix>/<key>`. Keys are content-addressed, so `put`
skips objects that already exist and uploads with a year-long immutable Cache-Control.

URLs: keys under PUBLIC_PREFIX get `public_base_url/<object name>` when a CDN is configured (the CDN mirrors
the bucket's paths); everything else — and every key when no CDN is configured — gets a presigned GET URL
valid `presign_ttl_s` seconds. Quarantined outputs and user uploads therefore never get a public URL.

Credentials come from boto3's own chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, instance roles)
and never appear in an error message or a log record.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from core.errors import ConfigError, StorageError
from core.settings import redacted_url
from core.storage.protocol import EXTENSIONS, PUBLIC_PREFIX, content_key

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

log = logging.getLogger(__name__)

CACHE_CONTROL_PUBLIC = "public, max-age=31536000, immutable"
CACHE_CONTROL_PRIVATE = "private, max-age=31536000, immutable"
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})

T = TypeVar("T")


def _check_key(key: str) -> None:
    if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in key.split("/")):
        raise StorageError(f"Invalid storage key {key!r}: use a relative key such as 'images/ab/….png'.")


class S3ImageStore:
    """An ImageStore over one bucket of an S3-compatible service."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        addressing_style: Literal["auto", "virtual", "path"] = "auto",
        public_base_url: str | None = None,
        presign_ttl_s: int = 7 * 24 * 3600,
        timeout_s: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        if not bucket:
            raise ConfigError("The S3 store needs a bucket name: set IMAGEBOT_STORAGE__S3_BUCKET.")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.region = region
        self.addressing_style = addressing_style
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.presign_ttl_s = presign_ttl_s
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._client_lock = threading.Lock()
        self._s3: S3Client | None = None

    def object_name(self, key: str) -> str:
        """The object's name in the bucket: `<prefix>/<key>`, or the key itself with no prefix."""
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    # -- the ImageStore protocol ------------------------------------------------------------------------

    async def put(
        self, data: bytes, content_type: str, prefix: str = PUBLIC_PREFIX, *, key_basis: bytes | None = None
    ) -> str:
        try:
            key = content_key(data if key_basis is None else key_basis, content_type, prefix)
        except ValueError as exc:
            raise StorageError(f"Cannot store the image: {exc}; use one of {sorted(EXTENSIONS)}.") from None
        name = self.object_name(key)
        public = key.split("/", 1)[0] == PUBLIC_PREFIX
        cache_control = CACHE_CONTROL_PUBLIC if public else CACHE_CONTROL_PRIVATE
        uploaded = await self._call("upload", name, self._put_once, name, data, content_type, cache_control)
        log.debug(
            "stored s3://%s/%s (%d bytes, %s)", self.bucket, name, len(data), "new" if uploaded else "kept"
        )
        return key

    async def get(self, key: str) -> bytes:
        name = self.object_name(key)
        return await self._call("download", name, self._get, name)

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a key that is not there does nothing (as in S3)."""
        name = self.object_name(key)
        await self._call("delete", name, lambda: self._client().delete_object(Bucket=self.bucket, Key=name))

    async def url(self, key: str) -> str:
        name = self.object_name(key)
        if self.public_base_url and key.split("/", 1)[0] == PUBLIC_PREFIX:
            return f"{self.public_base_url}/{name}"
        return await self._call("presign", name, self._presign, name)

    async def close(self) -> None:
        client, self._s3 = self._s3, None
        if client is not None:
            await asyncio.to_thread(client.close)

    # -- operator checks --------------------------------------------------------------------------------

    async def check(self) -> None:
        """Start-up check that the bucket is reachable with these credentials; ConfigError if not."""
        try:
            await self._call("check", "", lambda: self._client().head_bucket(Bucket=self.bucket))
        except StorageError as exc:
            raise ConfigError(
                f"{exc.message} Check IMAGEBOT_STORAGE__S3_BUCKET, IMAGEBOT_STORAGE__S3_ENDPOINT_URL "
                "and the AWS credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or a profile)."
            ) from exc

    async def apply_lifecycle(self, rules: list[dict[str, Any]], owned_prefix: str) -> list[dict[str, Any]]:
        """Put `rules` on the bucket in place of its rules whose ID starts with `owned_prefix` (ours, from an
        earlier start), keeping everyone else's; returns the bucket's rules as they now are."""
        return await self._call("lifecycle", "", self._put_lifecycle, rules, owned_prefix)

    def _put_lifecycle(self, rules: list[dict[str, Any]], owned_prefix: str) -> list[dict[str, Any]]:
        from botocore.exceptions import ClientError

        client = self._client()
        try:
            current = client.get_bucket_lifecycle_configuration(Bucket=self.bucket)["Rules"]
        except ClientError as exc:
            if _error_code(exc) != "NoSuchLifecycleConfiguration":
                raise
            current = []
        kept = [rule for rule in current if not str(rule.get("ID", "")).startswith(owned_prefix)]
        wanted: list[Any] = [*kept, *rules]
        client.put_bucket_lifecycle_configuration(
            Bucket=self.bucket, LifecycleConfiguration={"Rules": wanted}
        )
        return list(client.get_bucket_lifecycle_configuration(Bucket=self.bucket)["Rules"])  # type: ignore[arg-type]

    # -- boto3, always in a thread ----------------------------------------------------------------------

    def _client(self) -> S3Client:
        """The one boto3 client, created on first use. Call from a worker thread only."""
        with self._client_lock:
            if self._s3 is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    signature_version="s3v4",
                    s3={"addressing_style": self.addressing_style},
                    connect_timeout=self._timeout_s,
                    read_timeout=self._timeout_s,
                    retries={"max_attempts": self._max_attempts, "mode": "standard"},
                    # Checksums only where S3 requires them: several S3-compatible services reject the
                    # CRC32 trailers that boto3 sends by default since 1.36.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                session = boto3.session.Session()
                self._s3 = session.client(
                    "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=config
                )
            return self._s3

    def _exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client().head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return False
            raise
        return True

    def _put_once(self, name: str, data: bytes, content_type: str, cache_control: str) -> bool:
        if self._exists(name):
            return False
        self._client().put_object(
            Bucket=self.bucket, Key=name, Body=data, ContentType=content_type, CacheControl=cache_control
        )
        return True

    def _get(self, name: str) -> bytes:
        response = self._client().get_object(Bucket=self.bucket, Key=name)
        with response["Body"] as body:
            return body.read()

    def _presign(self, name: str) -> str:
        return self._client().generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": name}, ExpiresIn=self.presign_ttl_s
        )

    async def _call(self, action: str, name: str, function: Callable[..., T], *args: Any) -> T:
        """Run a boto3 call in a thread and turn botocore's errors into StorageError naming bucket and key."""
        from botocore import exceptions as boto_errors

        where = f"s3://{self.bucket}/{name}"
        try:
            return await asyncio.to_thread(function, *args)
        except boto_errors.ClientError as exc:
            code = _error_code(exc)
            if code in _MISSING_CODES:
                raise StorageError(f"No image is stored at {where} ({action} found nothing).") from exc
            if code == "NoSuchBucket":
                raise StorageError(
                    f"The bucket {self.bucket!r} does not exist ({action} of {where}): create it or fix "
                    "IMAGEBOT_STORAGE__S3_BUCKET."
                ) from exc
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            raise StorageError(f"S3 {action} of {where} failed: {code} (HTTP {status}).") from exc
        except boto_errors.NoCredentialsError as exc:
            raise StorageError(
                f"S3 {action} of {where} failed: no AWS credentials were found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)."
            ) from exc
        except boto_errors.EndpointConnectionError as exc:
            endpoint = redacted_url(self.endpoint_url) if self.endpoint_url else "AWS S3"
            raise StorageError(
                f"S3 {action} of {where} failed: could not connect to {endpoint}; check "
                "IMAGEBOT_STORAGE__S3_ENDPOINT_URL and that the service is running."
            ) from exc
        except boto_errors.ReadTimeoutError as exc:
            raise StorageError(
                f"S3 {action} of {where} timed out after {self._timeout_s:g} s; the service is slow or "
                "overloaded, try again later."
            ) from exc
        except boto_errors.BotoCoreError as exc:
            raise StorageError(f"S3 {action} of {where} failed: {type(exc).__name__}.") from exc


def _error_code(exc: Exception) -> str:
    response: dict[str, Any] = getattr(exc, "response", {}) or {}
    return str(response.get("Error", {}).get("Code", "Unknown"))
