"""Signed links: bound to one user, expiring, refused when forged or altered, and only where the web is set up."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from core.commands.links import (
    LinkClaims,
    chat_reply_to,
    gallery_link,
    region_link,
    region_target,
    sign,
    verify_link,
)
from core.errors import NotAllowed
from core.models.privileges import Privilege
from core.models.request import Platform, Requester
from core.settings import Settings, WebSettings, load_settings

SECRET = "x" * 32
MONA = Requester(
    platform=Platform.DISCORD, user_id="42", chat_id="900", community_id="7", privilege=Privilege.MOD
)


def configured(**web: object) -> Settings:
    return Settings(web=WebSettings(secret=SecretStr(SECRET), public_url="https://img.example/", **web))  # type: ignore[arg-type]


def token_of(link: str | None) -> str:
    assert link is not None and link.startswith("https://img.example/link/")
    return link.rsplit("/", 1)[1]


def test_a_gallery_link_names_the_user_and_their_chat_but_no_privilege() -> None:
    claims = verify_link(token_of(gallery_link(configured(), MONA)), SECRET)
    assert claims.page == "gallery"
    assert claims.requester == MONA.model_copy(update={"privilege": Privilege.USER})
    assert claims.reply_to == chat_reply_to(MONA) == {"chat_id": "900", "channel_id": "900"}


def test_a_region_link_names_its_image() -> None:
    claims = verify_link(token_of(region_link(configured(), MONA, "abcdefghijklmnop", 2)), SECRET)
    assert region_target(claims.page) == ("abcdefghijklmnop", 2)
    assert region_target("gallery") is None and region_target("region:abc:9") is None


def test_links_expire() -> None:
    settings = configured(link_ttl_s=600)
    token = token_of(gallery_link(settings, MONA))
    assert verify_link(token, SECRET, now=time.time() + 590).requester.user_id == "42"
    with pytest.raises(NotAllowed, match="expired"):
        verify_link(token, SECRET, now=time.time() + 601)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # another signature
        lambda t: t[:5] + ("A" if t[5] != "A" else "B") + t[6:],  # another payload
        lambda t: t.split(".")[0],  # no signature
        lambda t: sign(LinkClaims(requester=MONA, expires_at=2**40), "y" * 32),  # someone else's secret
        lambda t: sign(LinkClaims(requester=MONA, expires_at=2**40), SECRET, purpose="session"),
    ],
)
def test_forged_or_altered_links_are_refused(tamper: object) -> None:
    token = token_of(gallery_link(configured(), MONA))
    with pytest.raises(NotAllowed, match="isn't valid"):
        verify_link(tamper(token), SECRET)  # type: ignore[operator]


def test_no_links_without_a_secret_and_an_address() -> None:
    assert gallery_link(Settings(), MONA) is None
    assert gallery_link(Settings(web=WebSettings(secret=SecretStr(SECRET))), MONA) is None
    assert region_link(Settings(web=WebSettings(public_url="https://img.example")), MONA, "a" * 16, 0) is None


def test_a_short_secret_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="at least 32 characters"):
        WebSettings(secret=SecretStr("short"))


def test_empty_variables_mean_no_web_links(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEBOT_WEB__SECRET", "")  # compose's ${WEB_SECRET:-} when .env has none
    monkeypatch.setenv("IMAGEBOT_WEB__PUBLIC_URL", "")
    settings = load_settings()
    assert settings.web.secret is None and settings.web.public_url is None
    assert gallery_link(settings, MONA) is None
