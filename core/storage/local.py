"""Images in a local folder: the embedded default, with a small HTTP server for the public prefix.

Every object lives at root/<key>. Writes go to a temporary file in the same folder and are renamed into
place, so a reader never sees half an image; a key that already exists is not written again (keys are
content-addressed). All file I/O runs in a thread. `LocalFileServer` serves only keys under
PUBLIC_PREFIX ("images/…"): quarantined outputs and user uploads are never reachable over HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path, PurePosixPath

from aiohttp import web

from core.errors import StorageError
from core.storage.protocol import EXTENSIONS, PUBLIC_PREFIX, content_key

log = logging.getLogger(__name__)

CONTENT_TYPES = {extension: content_type for content_type, extension in EXTENSIONS.items()}
CACHE_CONTROL_PUBLIC = "public, max-age=31536000, immutable"
_TEMP_PREFIX = ".tmp-"


def key_parts(key: str) -> tuple[str, ...]:
    """The path segments of a storage key; StorageError for anything that could leave the store's root."""
    if not key or "\\" in key or "\x00" in key:
        raise StorageError(f"Invalid storage key {key!r}: use a relative key such as 'images/ab/….png'.")
    path = PurePosixPath(key)
    if path.is_absolute():
        raise StorageError(f"Invalid storage key {key!r}: keys are relative, remove the leading '/'.")
    parts = tuple(key.split("/"))
    if any(part in ("", ".", "..") for part in parts):
        raise StorageError(f"Invalid storage key {key!r}: '..', '.' and empty path segments are not allowed.")
    return parts


def key_path(root: Path, key: str) -> Path:
    """The absolute file for `key` under `root`, refusing keys (and symlinks) that resolve outside it."""
    parts = key_parts(key)
    resolved_root = root.resolve()
    path = resolved_root.joinpath(*parts)
    if not path.resolve().is_relative_to(resolved_root):
        raise StorageError(f"Invalid storage key {key!r}: it points outside the image folder.")
    return path


def _write_once(path: Path, data: bytes) -> bool:
    """Write `data` to `path` atomically unless the file exists; True when it was written."""
    if path.is_file():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)  # mkstemp makes 0600; a separate web server must read it
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return True


class LocalImageStore:
    """An ImageStore over a folder; `public_base_url` is where LocalFileServer (or a web server) serves it."""

    def __init__(self, root: Path, public_base_url: str | None = None) -> None:
        self.root = root
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None

    def path(self, key: str) -> Path:
        """The file that holds `key` (it may not exist). It touches the disk: call it from a thread."""
        return key_path(self.root, key)

    def _write_once(self, key: str, data: bytes) -> bool:
        return _write_once(self.path(key), data)

    def _read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def _delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    async def put(
        self, data: bytes, content_type: str, prefix: str = PUBLIC_PREFIX, *, key_basis: bytes | None = None
    ) -> str:
        try:
            key = content_key(data if key_basis is None else key_basis, content_type, prefix)
        except ValueError as exc:
            raise StorageError(f"Cannot store the image: {exc}; use one of {sorted(EXTENSIONS)}.") from None
        key_parts(key)
        try:
            written = await asyncio.to_thread(self._write_once, key, data)
        except OSError as exc:
            raise StorageError(f"Could not write {key} under {self.root}: {exc.strerror or exc}") from exc
        log.debug("stored %s (%d bytes, %s)", key, len(data), "new" if written else "already there")
        return key

    async def get(self, key: str) -> bytes:
        key_parts(key)
        try:
            return await asyncio.to_thread(self._read, key)
        except FileNotFoundError:
            raise StorageError(f"No image is stored under key {key} in {self.root}.") from None
        except OSError as exc:
            raise StorageError(f"Could not read {key} under {self.root}: {exc.strerror or exc}") from exc

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a key that is not there does nothing."""
        key_parts(key)
        try:
            await asyncio.to_thread(self._delete, key)
        except OSError as exc:
            raise StorageError(f"Could not delete {key} under {self.root}: {exc.strerror or exc}") from exc

    async def url(self, key: str) -> str:
        """public_base_url/key for public images; otherwise (or with no base URL) a file:// URI.

        Keys outside PUBLIC_PREFIX (quarantine, inputs) always get a file:// URI: the server refuses them.
        """
        parts = key_parts(key)
        if self.public_base_url and parts[0] == PUBLIC_PREFIX:
            return f"{self.public_base_url}/{key}"
        return (await asyncio.to_thread(self.path, key)).as_uri()

    async def close(self) -> None:
        return None


class LocalFileServer:
    """Serves the public prefix of a local image folder over HTTP (aiohttp) for the embedded setup.

    `await server.start()` returns the base URL to give LocalImageStore as public_base_url; port 0 picks a
    free port. Only existing files under PUBLIC_PREFIX are served; everything else is 404.
    """

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = root
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("LocalFileServer is not started")
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{key:.+}", self._serve)  # also answers HEAD
        return app

    async def start(self) -> str:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise StorageError(
                f"Could not serve images on {self.host}:{self.port}: {exc.strerror or exc}; "
                "choose another port or stop the process using it."
            ) from exc
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("serving images from %s at %s", self.root, self.base_url)
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _existing_file(self, key: str) -> Path | None:
        try:
            path = key_path(self.root, key)
        except StorageError:
            return None
        return path if path.is_file() else None

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        try:
            parts = key_parts(key)
        except StorageError:
            raise web.HTTPNotFound() from None
        if parts[0] != PUBLIC_PREFIX or len(parts) < 2 or any(part.startswith(".") for part in parts):
            raise web.HTTPNotFound()
        path = await asyncio.to_thread(self._existing_file, key)
        if path is None:
            raise web.HTTPNotFound()
        content_type = CONTENT_TYPES.get(path.suffix.lstrip("."), "application/octet-stream")
        headers = {"Content-Type": content_type, "Cache-Control": CACHE_CONTROL_PUBLIC}
        return web.FileResponse(path, headers=headers)
