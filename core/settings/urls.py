"""URL settings that validate themselves: each takes only its own schemes; Redis may be reached through Sentinels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    AnyUrl,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

_ANY_URL: TypeAdapter[AnyUrl] = TypeAdapter(AnyUrl)


def redacted_url(url: str) -> str:
    """The URL without any user:password part, for messages."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        hosts = parts.netloc.rpartition("@")[2]  # host:port, or a Sentinel URL's list of them
    except ValueError:
        return "<a URL that could not be read>"
    return urlunsplit((parts.scheme, hosts, parts.path, parts.query, parts.fragment))


def _url_checker(schemes: tuple[str, ...], example: str) -> Callable[[str], str]:
    """A validator for a URL kept as text: it must parse, use one of `schemes` and name a host (a path for unix).

    The message quotes the value without any password and says how to write it (`schemes[0]` when the scheme
    is missing: "minio:9000" → "https://minio:9000" for ("https", "http")).
    """
    allowed = " or ".join(f"{scheme}://" for scheme in schemes)

    def check(value: str) -> str:
        value = value.strip()
        shown = redacted_url(value)
        hint = f"{schemes[0]}://{shown}" if "://" not in value else example
        problem = None
        try:
            url = _ANY_URL.validate_python(value)
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"].removeprefix("Input should be a valid URL, ")
            if "://" not in value:
                problem = f"it must start with {allowed}"
        else:
            if url.scheme not in schemes:
                problem = f"it must start with {allowed}"
            elif not (url.path if url.scheme == "unix" else url.host):
                problem = "it names no socket path" if url.scheme == "unix" else "it names no host"
        if problem is not None:
            raise PydanticCustomError(
                "url",
                "'{shown}' is not a URL I can use ({problem}); write it like {hint}",
                {"shown": shown, "problem": problem, "hint": hint},
            )
        return value

    return check


# URLs, checked and kept as written (pydantic's URL types would add a trailing slash to a bare host).
HttpUrlText = Annotated[str, AfterValidator(_url_checker(("https", "http"), "https://host.example/path"))]
WebSocketUrlText = Annotated[str, AfterValidator(_url_checker(("wss", "ws"), "wss://gateway.example/"))]
SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
SENTINEL_EXAMPLE = "redis+sentinel://:PASSWORD@sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/mymaster/0"


@dataclass(frozen=True)
class SentinelAddress:
    """Redis found through Sentinels: `redis+sentinel://[[user]:password@]host[:port],host[:port]…/master[/db]`.

    The password (and user) are the primary's and its replicas'; the Sentinels themselves are asked without one.
    A port left out is Sentinel's 26379.
    """

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def sentinel_address(url: str) -> SentinelAddress | None:
    """The Sentinels and master a redis+sentinel:// URL names; None for any other URL.

    Raises ValueError saying what to change when the URL is a Sentinel one that cannot be used.
    """
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme.lower() != SENTINEL_SCHEME:
        return None
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if at else ("", "", "")
    sentinels = tuple(_sentinel_host(host) for host in hosts.split(","))
    master, _, db = path.strip("/").partition("/")
    if not master:
        raise ValueError("it names no master after the hosts (…:26379/mymaster/0)")
    if db and not db.isdigit():
        raise ValueError(f"the database after the master must be a number, not {db!r}")
    return SentinelAddress(
        sentinels,
        unquote(master),
        int(db or 0),
        unquote(username) or None,
        unquote(password) or None,
    )


def _sentinel_host(text: str) -> tuple[str, int]:
    host, colon, port = text.strip().rpartition(":") if ":" in text else (text.strip(), "", "")
    if not host:
        raise ValueError("it names an empty Sentinel host (hosts go comma-separated, host:port)")
    if colon and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{port!r} is not a port for Sentinel {host}")
    return host, int(port) if colon else SENTINEL_PORT


_plain_redis_url = _url_checker(("redis", "rediss", "unix"), "redis://localhost:6379/0")


def _redis_url(value: str) -> str:
    """A plain Redis URL (redis://, rediss://, unix://) or a Sentinel one (redis+sentinel://…)."""
    try:
        if sentinel_address(value) is not None:
            return value.strip()
    except ValueError as exc:
        raise PydanticCustomError(
            "url",
            "'{shown}' is not a Sentinel URL I can use ({problem}); write it like {hint}",
            {"shown": redacted_url(value), "problem": str(exc), "hint": SENTINEL_EXAMPLE},
        ) from None
    return _plain_redis_url(value)


RedisUrlText = Annotated[str, AfterValidator(_redis_url)]
