"""Image storage against real backends: a temporary folder (and its aiohttp server) and a moto S3 server."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from PIL import Image
from yarl import URL

from core.errors import ConfigError, StorageError
from core.settings import Settings, load_settings
from core.storage.factory import build_store
from core.storage.local import LocalFileServer, LocalImageStore
from core.storage.protocol import INPUT_PREFIX, QUARANTINE_PREFIX, content_key
from core.storage.s3 import S3ImageStore

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client


def png(colour: tuple[int, int, int] = (200, 40, 40), size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


async def fetch(url: str | URL) -> tuple[int, bytes, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.read(), dict(response.headers)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- local folder -----------------------------------------------------------------------------------------


async def test_local_put_get_round_trip_writes_the_file_under_its_content_key(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path / "images")
    data = png()

    key = await store.put(data, "image/png")

    assert key == content_key(data, "image/png")
    assert key.startswith("images/") and key.endswith(".png")
    assert (tmp_path / "images" / key).read_bytes() == data
    assert (tmp_path / "images" / key).stat().st_mode & 0o777 == 0o644  # readable by a separate web server
    assert await store.get(key) == data


async def test_local_same_bytes_give_one_file_even_when_stored_concurrently(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    data = png((1, 2, 3))

    keys = await asyncio.gather(*(store.put(data, "image/png") for _ in range(8)))

    assert len(set(keys)) == 1
    files = await asyncio.to_thread(lambda: [path for path in tmp_path.rglob("*") if path.is_file()])
    assert files == [tmp_path / keys[0]]  # one file, no temporary files left behind
    assert await store.put(png((9, 9, 9)), "image/png") != keys[0]


async def test_local_missing_key_raises_storage_error_naming_it(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    key = content_key(b"never stored", "image/png")

    with pytest.raises(StorageError, match=key):
        await store.get(key)
    await store.delete(key)  # deleting what is not there is not an error


async def test_local_delete_removes_the_file(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    key = await store.put(png(), "image/png")

    await store.delete(key)

    assert not (tmp_path / key).exists()
    with pytest.raises(StorageError):
        await store.get(key)


@pytest.mark.parametrize(
    "key", ["../outside.png", "images/../../outside.png", "/etc/passwd", "", "images//a.png", "images\\..\\x"]
)
async def test_local_keys_never_escape_the_root(tmp_path: Path, key: str) -> None:
    (tmp_path / "outside.png").write_bytes(b"secret")
    store = LocalImageStore(tmp_path / "root")

    with pytest.raises(StorageError, match="Invalid storage key"):
        await store.get(key)
    with pytest.raises(StorageError, match="Invalid storage key"):
        await store.delete(key)
    with pytest.raises(StorageError, match="Invalid storage key"):
        await store.url(key)
    assert (tmp_path / "outside.png").read_bytes() == b"secret"


async def test_local_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.png").write_bytes(b"secret")
    root = tmp_path / "root"
    (root / "images").mkdir(parents=True)
    (root / "images" / "ab").symlink_to(tmp_path / "elsewhere")
    store = LocalImageStore(root)

    with pytest.raises(StorageError, match="outside"):
        await store.get("images/ab/secret.png")


async def test_local_unsupported_content_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="image/gif"):
        await LocalImageStore(tmp_path).put(b"GIF89a", "image/gif")


async def test_local_urls_use_the_public_base_only_for_public_images(tmp_path: Path) -> None:
    with_base = LocalImageStore(tmp_path, public_base_url="http://img.example/")
    without_base = LocalImageStore(tmp_path)
    data = png()
    key = await with_base.put(data, "image/png")
    hidden = await with_base.put(data, "image/png", prefix=QUARANTINE_PREFIX)

    assert await with_base.url(key) == f"http://img.example/{key}"
    file_url = await without_base.url(key)
    assert file_url.startswith("file:///")

    def open_url() -> bytes:
        with urllib.request.urlopen(file_url) as response:
            return bytes(response.read())

    assert await asyncio.to_thread(open_url) == data  # a file:// URL opens the stored bytes
    assert (await with_base.url(hidden)).startswith("file:///")


async def test_local_relative_root_gives_absolute_file_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = LocalImageStore(Path("data/images"))
    key = await store.put(png(), "image/png")

    assert await store.url(key) == (tmp_path / "data/images" / key).as_uri()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[LocalImageStore, str]]:
    server = LocalFileServer(tmp_path / "images")
    base_url = await server.start()
    yield LocalImageStore(tmp_path / "images", public_base_url=base_url), base_url
    await server.close()


async def test_local_server_serves_public_images_at_the_store_url(
    served: tuple[LocalImageStore, str],
) -> None:
    store, base_url = served
    data = png((0, 128, 255))
    key = await store.put(data, "image/png")

    url = await store.url(key)
    status, body, headers = await fetch(url)

    assert url == f"{base_url}/{key}"
    assert (status, body) == (200, data)
    assert headers["Content-Type"] == "image/png"
    assert "immutable" in headers["Cache-Control"]


async def test_local_server_refuses_quarantine_inputs_and_traversal(
    served: tuple[LocalImageStore, str],
) -> None:
    store, base_url = served
    data = png((255, 0, 255))
    hidden = await store.put(data, "image/png", prefix=QUARANTINE_PREFIX)
    upload = await store.put(data, "image/png", prefix=INPUT_PREFIX)
    public = await store.put(data, "image/png")
    assert await store.get(hidden) == data  # stored, just not served

    for path in (
        f"/{hidden}",
        f"/{upload}",
        f"/images/..%2F{hidden}",
        f"/images/%2E%2E/{hidden}",
        f"/{public}.missing",
        "/images",
    ):
        status, body, _ = await fetch(URL(base_url + path, encoded=True))
        assert status == 404, path
        assert data not in body


async def test_local_server_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    first = LocalFileServer(tmp_path)
    await first.start()
    try:
        with pytest.raises(StorageError, match="choose another port"):
            await LocalFileServer(tmp_path, port=first.port).start()
    finally:
        await first.close()


# -- S3 (moto server) -------------------------------------------------------------------------------------


def s3_store(
    endpoint: str,
    bucket: str,
    *,
    prefix: str = "",
    public_base_url: str | None = None,
    presign_ttl_s: int = 3600,
    timeout_s: float = 5.0,
    max_attempts: int = 2,
) -> S3ImageStore:
    """A store on the moto server, path-style, as an operator would configure it for MinIO."""
    return S3ImageStore(
        bucket,
        prefix=prefix,
        endpoint_url=endpoint,
        region="us-east-1",
        addressing_style="path",
        public_base_url=public_base_url,
        presign_ttl_s=presign_ttl_s,
        timeout_s=timeout_s,
        max_attempts=max_attempts,
    )


@pytest.fixture
async def s3(s3_server: str, s3_bucket: str) -> AsyncIterator[S3ImageStore]:
    store = s3_store(s3_server, s3_bucket)
    yield store
    await store.close()


async def test_s3_put_get_round_trip_stores_type_and_cache_control(
    s3: S3ImageStore, s3_client: S3Client, s3_bucket: str
) -> None:
    data = png()

    key = await s3.put(data, "image/png")

    assert key == content_key(data, "image/png")
    assert await s3.get(key) == data
    head = s3_client.head_object(Bucket=s3_bucket, Key=key)
    assert head["ContentType"] == "image/png"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["ContentLength"] == len(data)


async def test_s3_same_bytes_are_one_object_and_not_uploaded_again(
    s3: S3ImageStore, s3_client: S3Client, s3_bucket: str
) -> None:
    data = png((3, 3, 3))
    key = content_key(data, "image/png")
    # An object already at the content key (marked) must be kept as is: put sees it and skips the upload.
    s3_client.put_object(
        Bucket=s3_bucket, Key=key, Body=data, ContentType="image/png", Metadata={"m": "first"}
    )

    keys = {await s3.put(data, "image/png") for _ in range(3)}

    assert keys == {key}
    listing = s3_client.list_objects_v2(Bucket=s3_bucket)
    assert [item["Key"] for item in listing["Contents"]] == [key]
    assert s3_client.head_object(Bucket=s3_bucket, Key=key)["Metadata"] == {"m": "first"}


async def test_s3_prefix_names_objects_and_cdn_urls(
    s3_server: str, s3_bucket: str, s3_client: S3Client
) -> None:
    # The bucket itself, with a policy that makes tenant-a/images/* public, stands in for a CDN here.
    public_read = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{s3_bucket}/tenant-a/images/*",
            }
        ],
    }
    s3_client.put_bucket_policy(Bucket=s3_bucket, Policy=json.dumps(public_read))
    cdn = f"{s3_server}/{s3_bucket}"
    store = s3_store(s3_server, s3_bucket, prefix="/tenant-a/", public_base_url=cdn + "/")
    data = png((10, 20, 30))

    key = await store.put(data, "image/png")
    url = await store.url(key)

    assert s3_client.get_object(Bucket=s3_bucket, Key=f"tenant-a/{key}")["Body"].read() == data
    assert url == f"{cdn}/tenant-a/{key}"
    status, body, _ = await fetch(url)
    assert (status, body) == (200, data)
    await store.close()


async def test_s3_without_cdn_hands_out_a_working_presigned_url(s3_server: str, s3_bucket: str) -> None:
    store = s3_store(s3_server, s3_bucket, presign_ttl_s=600)
    data = png((50, 60, 70))
    key = await store.put(data, "image/png")

    url = await store.url(key)

    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{s3_server}/{s3_bucket}/{key}?")
    assert query["X-Amz-Expires"] == ["600"]
    assert "X-Amz-Signature" in query
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in url
    status, body, headers = await fetch(url)
    assert (status, body) == (200, data)
    assert headers["Content-Type"] == "image/png"
    await store.close()


async def test_s3_quarantine_never_gets_the_cdn_url(
    s3_server: str, s3_bucket: str, s3_client: S3Client
) -> None:
    cdn = "https://cdn.example"
    store = s3_store(s3_server, s3_bucket, public_base_url=cdn)
    data = png((255, 255, 0))
    public = await store.put(data, "image/png")
    hidden = await store.put(data, "image/png", prefix=QUARANTINE_PREFIX)

    hidden_url = await store.url(hidden)

    assert await store.url(public) == f"{cdn}/{public}"
    assert not hidden_url.startswith(cdn)
    assert "X-Amz-Signature" in parse_qs(urlsplit(hidden_url).query)
    status, body, _ = await fetch(hidden_url)
    assert (status, body) == (200, data)  # moderators can open it
    assert s3_client.head_object(Bucket=s3_bucket, Key=hidden)["CacheControl"].startswith("private")
    await store.close()


async def test_s3_missing_key_and_bucket_raise_storage_error_without_credentials(
    s3: S3ImageStore, s3_server: str, s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="core")
    key = content_key(b"never stored", "image/png")
    await s3.put(png(), "image/png")

    with pytest.raises(StorageError) as missing:
        await s3.get(key)
    nowhere = s3_store(s3_server, "no-such-bucket-here")
    with pytest.raises(StorageError) as no_bucket:
        await nowhere.put(png(), "image/png")
    await nowhere.close()

    assert f"s3://{s3_bucket}/{key}" in missing.value.message
    assert "'no-such-bucket-here' does not exist" in no_bucket.value.message
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("core."))
    assert f"s3://{s3_bucket}/images/" in ours
    for text in (missing.value.message, no_bucket.value.message, ours):
        assert os.environ["AWS_SECRET_ACCESS_KEY"] not in text
        assert os.environ["AWS_ACCESS_KEY_ID"] not in text


async def test_s3_delete_removes_the_object(s3: S3ImageStore, s3_client: S3Client, s3_bucket: str) -> None:
    key = await s3.put(png(), "image/png")

    await s3.delete(key)
    await s3.delete(key)  # twice is fine

    assert s3_client.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0


@pytest.mark.parametrize("key", ["../x.png", "/images/x.png", "images/../quarantine/x.png", ""])
async def test_s3_rejects_traversal_keys(s3: S3ImageStore, key: str) -> None:
    with pytest.raises(StorageError, match="Invalid storage key"):
        await s3.get(key)
    with pytest.raises(StorageError, match="Invalid storage key"):
        await s3.url(key)


async def test_s3_unreachable_endpoint_is_a_storage_error_naming_it(aws_credentials: None) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = s3_store(endpoint, "some-bucket", timeout_s=2, max_attempts=1)

    with pytest.raises(StorageError, match=f"could not connect to {endpoint}"):
        await store.put(png(), "image/png")


async def test_s3_missing_credentials_say_what_to_set(
    s3_server: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = s3_store(s3_server, s3_bucket, max_attempts=1)

    with pytest.raises(StorageError, match="set AWS_ACCESS_KEY_ID"):
        await store.put(png(), "image/png")
    with pytest.raises(ConfigError, match="credentials"):
        await store.check()


async def test_s3_check_accepts_a_bucket_and_names_a_missing_one(s3: S3ImageStore, s3_server: str) -> None:
    await s3.check()

    with pytest.raises(ConfigError, match="IMAGEBOT_STORAGE__S3_BUCKET"):
        await s3_store(s3_server, "not-created-bucket").check()


async def test_s3_calls_leave_the_event_loop_free(
    s3_server: str, s3_bucket: str, s3_client: S3Client
) -> None:
    """The store's endpoint is a proxy served by this test's own event loop, in front of moto.

    Were any boto3 call made on the loop, the proxy could not answer it and the put would fail with a read
    timeout after 2 s; since every call runs in a thread, the loop relays each request.
    """
    relayed: list[str] = []
    hop_by_hop = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}
    async with aiohttp.ClientSession(auto_decompress=False) as upstream:

        async def relay(request: web.Request) -> web.Response:
            relayed.append(request.method)
            headers = {k: v for k, v in request.headers.items() if k.lower() not in hop_by_hop}
            target = URL(s3_server + request.raw_path, encoded=True)
            async with upstream.request(
                request.method, target, headers=headers, data=await request.read()
            ) as reply:
                body = await reply.read()
                out = {k: v for k, v in reply.headers.items() if k.lower() not in hop_by_hop}
                return web.Response(status=reply.status, body=body, headers=out)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", relay)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        proxy = f"http://127.0.0.1:{runner.addresses[0][1]}"
        store = s3_store(proxy, s3_bucket, timeout_s=2, max_attempts=1)
        data = png((7, 7, 7), size=64)
        try:
            key = await store.put(data, "image/png")
            assert await store.get(key) == data
        finally:
            await store.close()
            await runner.cleanup()

    assert relayed == ["HEAD", "PUT", "GET"]
    assert s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == data


# -- build_store ------------------------------------------------------------------------------------------


def test_build_store_local_creates_the_folder_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(storage={"local_dir": "data/img", "public_base_url": "http://h:1"})

    store = build_store(settings)

    assert isinstance(store, LocalImageStore)
    assert (tmp_path / "data" / "img").is_dir()
    assert store.public_base_url == "http://h:1"


def test_build_store_local_folder_that_cannot_be_created_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    settings = Settings(storage={"local_dir": tmp_path / "a-file" / "images"})

    with pytest.raises(ConfigError, match="IMAGEBOT_STORAGE__LOCAL_DIR"):
        build_store(settings)


async def test_build_store_s3_from_the_environment_works_against_the_server(
    s3_server: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    monkeypatch.setenv("IMAGEBOT_STORAGE__BACKEND", "s3")
    monkeypatch.setenv("IMAGEBOT_STORAGE__S3_BUCKET", s3_bucket)
    monkeypatch.setenv("IMAGEBOT_STORAGE__S3_ADDRESSING_STYLE", "path")
    monkeypatch.setenv("IMAGEBOT_STORAGE__PRESIGN_TTL_S", "3600")

    store = build_store(load_settings())

    assert isinstance(store, S3ImageStore)
    assert (store.bucket, store.endpoint_url, store.presign_ttl_s) == (s3_bucket, s3_server, 3600)
    key = await store.put(png(), "image/png")
    assert await store.get(key) == png()
    await store.close()


def test_s3_without_a_bucket_is_a_config_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEBOT_STORAGE__BACKEND", "s3")

    with pytest.raises(ConfigError, match="IMAGEBOT_STORAGE__S3_BUCKET"):
        load_settings()
