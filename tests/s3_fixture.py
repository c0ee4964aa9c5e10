"""A real S3-compatible server for tests: moto's ThreadedMotoServer over HTTP on a free loopback port.

    s3_server        (session) the endpoint URL, e.g. http://127.0.0.1:41234
    aws_credentials  dummy AWS credentials in the environment, nothing read from ~/.aws, no instance metadata
    s3_client        (session) a boto3 S3 client on that endpoint (path-style), to assert what a bucket holds
    s3_bucket        a fresh, uniquely named bucket per test (uses aws_credentials)

moto does not check signatures or presigned-URL expiry (see DESIGN.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

TEST_ACCESS_KEY = "AKIATESTONLY0000KEY"
TEST_SECRET_KEY = "test-secret-never-shown-0123456789"
TEST_REGION = "us-east-1"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials through boto3's normal chain; no profile, config file or endpoint from the host."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", TEST_REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def s3_client(s3_server: str) -> Iterator[S3Client]:
    """A boto3 client with explicit dummy credentials (so it can live for the session)."""
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=s3_server,
        region_name=TEST_REGION,
        aws_access_key_id=TEST_ACCESS_KEY,
        aws_secret_access_key=TEST_SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}),
    )
    yield client
    client.close()


@pytest.fixture
def s3_bucket(s3_client: S3Client, aws_credentials: None) -> str:
    """A new empty bucket on the moto server (names are unique, so tests never see each other's objects).

    It also puts the dummy credentials in the environment, so stores built in the test find them.
    """
    name = f"imagebot-test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name
