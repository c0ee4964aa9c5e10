"""/describe's local captioner on a tiny random-weight BLIP, saved and loaded like real weights."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from core.errors import GenerationFailed
from core.settings import CaptionerSettings
from worker.captioner import TransformersCaptioner, _four, clean, distinct
from worker.tiny_captioner import WORDS, build_tiny_captioner


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (48, 40), colour).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_captioner(tmp_path_factory.mktemp("models") / "tiny-blip")


async def test_four_distinct_suggestions_from_the_tiny_model_the_same_for_the_same_image(
    tiny_blip: Path,
) -> None:
    captioner = TransformersCaptioner(CaptionerSettings(local_model=str(tiny_blip), max_new_tokens=8))
    first = await captioner.suggest(png((200, 30, 30)))
    assert len(first.prompts) == 4 and len({p.lower() for p in first.prompts}) == 4
    assert all(word in WORDS for prompt in first.prompts for word in prompt.replace(",", "").split()[:1])
    assert first.backend == f"transformers:{tiny_blip}"
    again = await captioner.suggest(png((200, 30, 30)))
    assert again == first  # beams are deterministic and the sampling seeds are fixed


def test_suggestions_are_cleaned_deduplicated_and_topped_up_honestly() -> None:
    assert clean('  2. "a fox --ar 16:9 at dusk"  ') == "a fox -ar 16:9 at dusk"
    assert distinct(["A fox", "a fox", "", "- a boat", "a boat"]) == ["A fox", "a boat"]
    topped = _four(["a fox", "a boat"], "test")
    assert topped.prompts == ("a fox", "a boat", "a fox, as a painting", "a fox, as a photograph")
    assert topped.note and "2 distinct" in topped.note
    assert _four(["a", "b", "c", "d", "e"], "test").note is None
    with pytest.raises(GenerationFailed):
        _four([], "test")
