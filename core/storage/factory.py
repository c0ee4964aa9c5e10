"""Build the configured ImageStore from Settings: a local folder (the default) or an S3-compatible bucket."""

from __future__ import annotations

import logging

from core.errors import ConfigError
from core.settings import Settings
from core.storage.protocol import ImageStore

log = logging.getLogger(__name__)


def build_store(settings: Settings) -> ImageStore:
    """The store `settings.storage` asks for. Raises ConfigError naming the variable to fix.

    Settings have checked the values (a bucket for s3, its name, the URLs); what is left to fail here is the
    machine: a folder that can't be made, boto3 not installed.

    The local folder is taken relative to the current directory as given and created here.
    The S3 client is created lazily on first use; call `S3ImageStore.check()` at start-up to
    verify the bucket and credentials.
    """
    storage = settings.storage
    if storage.backend == "local":
        from core.storage.local import LocalImageStore

        try:
            storage.local_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"IMAGEBOT_STORAGE__LOCAL_DIR: cannot create the image folder {storage.local_dir} "
                f"({exc.strerror or exc}); choose a writable folder."
            ) from None
        log.info("storing images in %s", storage.local_dir.resolve())
        return LocalImageStore(storage.local_dir, storage.public_base_url)

    bucket = storage.s3_bucket or ""  # never empty: StorageSettings requires a bucket for s3
    try:
        import boto3  # noqa: F401
    except ImportError:
        raise ConfigError(
            "Storage backend 's3' needs boto3: install it with `pip install 'imagebot[s3]'`."
        ) from None
    from core.storage.s3 import S3ImageStore

    store = S3ImageStore(
        bucket=bucket,
        prefix=storage.s3_prefix,
        endpoint_url=storage.s3_endpoint_url,
        region=storage.s3_region,
        addressing_style=storage.s3_addressing_style,
        public_base_url=storage.public_base_url,
        presign_ttl_s=storage.presign_ttl_s,
    )
    log.info("storing images in s3://%s/%s", bucket, store.prefix)
    return store
