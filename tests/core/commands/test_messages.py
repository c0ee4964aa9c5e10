"""The words users read: captions fit Telegram's 1024 UTF-16 units whatever the prompt holds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.commands.messages import (
    error_message,
    human_duration,
    queued_message,
    result_caption,
    text_length,
)
from core.errors import InvalidRequest
from core.jobs.queue import Submission
from core.models.request import GenerationRequest, Mode, Platform, Requester
from core.models.result import EventKind, ResultEvent, StoredImage

REQUESTER = Requester(platform=Platform.TELEGRAM, user_id="1", chat_id="1")


def request(prompt: str) -> GenerationRequest:
    return GenerationRequest(
        request_id="abcdefghijklmnop",
        prompt=prompt,
        width=64,
        height=64,
        steps=2,
        guidance=5,
        seeds=(7,),
        model="tiny",
        requester=REQUESTER,
    )


def done(message: str | None = None) -> ResultEvent:
    image = StoredImage(key="images/aa/a.png", url="file:///a.png", width=64, height=64, seed=7, index=0)
    return ResultEvent(
        kind=EventKind.DONE,
        request_id="abcdefghijklmnop",
        requester=REQUESTER,
        model="tiny",
        images=(image,),
        message=message,
    )


def test_a_short_caption_keeps_the_prompt_seed_and_model() -> None:
    assert result_caption(request("a lighthouse"), done()) == "a lighthouse\nseed 7 · tiny"


def test_an_emoji_prompt_is_cut_in_utf16_units() -> None:
    caption = result_caption(request("🦊" * 800), done())
    assert text_length(caption) <= 1024 and len(caption) < 520
    assert caption.endswith("…\nseed 7 · tiny")


@settings(max_examples=200, deadline=None)
@given(prompt=st.text(min_size=1, max_size=3000), note=st.one_of(st.none(), st.text(max_size=3000)))
def test_every_caption_fits(prompt: str, note: str | None) -> None:
    caption = result_caption(request(prompt), done(note))
    assert text_length(caption) <= 1024
    assert "seed 7 · tiny" in caption


def test_queue_and_error_messages() -> None:
    assert queued_message(Submission("r", "q", 3, 41.6)) == "Queued — position 3, about 40 s"
    assert queued_message(Submission("r", "q", 100, 170.0)) == "Queued — position 100, about 3 min"
    assert queued_message(Submission("r", "q", 1, 4.0)) == "Queued — position 1, a few seconds"
    assert queued_message(Submission("r", None, None, 0.0, cached=True)).startswith(
        "Found these in the cache"
    )
    assert error_message(InvalidRequest("steps", "Too many steps.")) == "Too many steps."
    assert error_message(RuntimeError("secret internals"), "abcd") == (
        "Sorry — something went wrong on our side (reference abcd). Please try again in a moment."
    )


def test_estimates_read_as_people_say_them() -> None:
    said = [human_duration(s) for s in (3, 38, 170, 2819, 4800)]
    assert said == ["a few seconds", "about 40 s", "about 3 min", "about 47 min", "about 1 h 20 min"]


def test_a_caption_says_what_a_result_was_made_from() -> None:
    parent = request("a lighthouse")
    variation = parent.model_copy(
        update={"mode": Mode.VARIATION, "parent_id": "p", "parent_index": 0, "source_image": "images/a.png"}
    )
    upscale = parent.model_copy(
        update={"mode": Mode.UPSCALE, "parent_id": "p", "parent_index": 1, "source_image": "images/a.png"}
    )
    reroll = parent.model_copy(update={"mode": Mode.REROLL, "parent_id": "p"})
    assert result_caption(variation, done()) == "a lighthouse\nVariation of image 1 · seed 7 · tiny"
    assert result_caption(upscale, done()) == "a lighthouse\nUpscale of image 2 · seed 7 · tiny"
    assert result_caption(reroll, done()) == "a lighthouse\nReroll · seed 7 · tiny"


def test_a_caption_keeps_the_notes_the_user_was_given_when_queued() -> None:
    noted = request("a harbour").model_copy(update={"notes": ("16:9 became 88x48 for tiny.",)})
    assert result_caption(noted, done()) == "a harbour\nseed 7 · tiny\nNote: 16:9 became 88x48 for tiny."
