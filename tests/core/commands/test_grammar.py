"""The /imagine grammar: each flag and refusal, phone dashes, sizes per model, properties over random text."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.commands.grammar import (
    FLAG_ALIASES,
    MAX_SEED,
    ImagineOptions,
    UserDefaults,
    parse_imagine,
    size_for_aspect,
    split_flags,
)
from core.errors import InvalidRequest
from core.models.catalog import get_model, model_names
from core.settings import LimitsSettings

LIMITS = LimitsSettings()


def parse(
    text: str,
    server_model: str = "tiny",
    limits: LimitsSettings = LIMITS,
    defaults: UserDefaults | None = None,
) -> ImagineOptions:
    return parse_imagine(text, default_model=server_model, limits=limits, defaults=defaults)


def refused(
    text: str,
    server_model: str = "tiny",
    limits: LimitsSettings = LIMITS,
    defaults: UserDefaults | None = None,
) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse(text, server_model, limits, defaults)
    return caught.value


# --- every flag -----------------------------------------------------------------------------------


def test_the_full_example_command() -> None:
    options = parse(
        "a lighthouse at dusk --ar 16:9 --seed 7 --no people, boats --steps 30 --cfg 6.5 --n 2 --model sdxl"
    )
    assert options == ImagineOptions(
        prompt="a lighthouse at dusk",
        negative_prompt="people, boats",
        model="sdxl",
        width=1344,
        height=768,
        steps=30,
        guidance=6.5,
        seed=7,
        n=2,
        strength=None,
        prefer_cloud=False,
        notes=("16:9 became 1344x768 for sdxl (about 1.75:1, as its sides are multiples of 64).",),
    )


def test_no_flags_gives_the_model_defaults() -> None:
    options = parse("a lighthouse at dusk", server_model="sd15")
    assert (options.model, options.width, options.height) == ("sd15", 512, 512)
    assert (options.steps, options.guidance, options.n) == (30, 7.5, LIMITS.default_images)
    assert options.seed is None and options.strength is None and not options.prefer_cloud
    assert options.negative_prompt == "" and options.notes == ()


@pytest.mark.parametrize("flag", ["--ar", "--aspect", "--AR", "--Aspect"])
def test_aspect_flag_and_alias(flag: str) -> None:
    options = parse(f"a cat {flag} 4:1")
    assert (options.prompt, options.width, options.height) == ("a cat", 128, 32)


@pytest.mark.parametrize("value", ["768x512", "768X512", "768×512", "768*512", "768 x 512", "768 ×512"])
def test_size_spellings(value: str) -> None:
    options = parse(f"a cat --size {value} --model sd15")
    assert (options.width, options.height, options.prompt, options.notes) == (768, 512, "a cat", ())


@pytest.mark.parametrize(("value", "seed"), [("0", 0), ("7", 7), ("+12", 12), (str(MAX_SEED), MAX_SEED)])
def test_seed(value: str, seed: int) -> None:
    assert parse(f"a cat --seed {value}").seed == seed


def test_negative_terms_run_to_the_next_flag_and_are_tidied() -> None:
    options = parse("a harbour --no  people ,  small\n boats,, --seed 3", server_model="sd15")
    assert options.negative_prompt == "people, small boats"
    assert (options.prompt, options.seed) == ("a harbour", 3)


def test_negative_without_a_following_flag_takes_the_rest() -> None:
    assert parse("a harbour --no people at night", server_model="sd15").negative_prompt == "people at night"


@pytest.mark.parametrize("flag", ["--steps", "--STEPS"])
def test_steps(flag: str) -> None:
    assert parse(f"a cat {flag} 50").steps == 50


@pytest.mark.parametrize(
    ("text", "guidance"), [("--cfg 6.5", 6.5), ("--guidance 0", 0.0), ("--CFG 30", 30.0)]
)
def test_guidance_and_alias(text: str, guidance: float) -> None:
    assert parse(f"a cat {text}").guidance == guidance


@pytest.mark.parametrize("flag", ["--n", "--count", "--N"])
def test_image_count_and_alias(flag: str) -> None:
    assert parse(f"a cat {flag} 1").n == 1


@pytest.mark.parametrize(("name", "canonical"), [("sdxl", "sdxl"), ("SD1.5", "sd15"), ("dalle", "dall-e-3")])
def test_model_names_and_aliases(name: str, canonical: str) -> None:
    assert parse(f"a cat --model {name}").model == canonical


def test_model_defaults_come_from_the_chosen_model() -> None:
    options = parse("a cat --model sdxl-turbo")
    assert (options.steps, options.guidance, options.width, options.height) == (2, 0.0, 512, 512)


@pytest.mark.parametrize(("value", "strength"), [("0.05", 0.05), ("0.6", 0.6), ("1", 1.0), (".5", 0.5)])
def test_strength(value: str, strength: float) -> None:
    assert parse(f"a cat --strength {value}").strength == strength


def test_cloud_takes_no_value_and_leaves_words_to_the_prompt() -> None:
    options = parse("--cloud a red fox")
    assert options.prefer_cloud and options.prompt == "a red fox"


def test_equals_sign_values() -> None:
    options = parse("a cat --seed=9 --ar=2:1 --n=3")
    assert (options.seed, options.n, options.width, options.height) == (9, 3, 88, 48)


def test_words_after_a_flag_value_go_back_to_the_prompt() -> None:
    options = parse("--seed 5 a cat --ar 1:1 on a mat")
    assert (options.prompt, options.seed) == ("a cat on a mat", 5)


def test_prompt_whitespace_is_normalised() -> None:
    assert parse("  a\n\tlighthouse   at\u00a0 dusk  --seed 1 ").prompt == "a lighthouse at dusk"


# --- phones' dashes -------------------------------------------------------------------------------


@pytest.mark.parametrize("dash", ["—", "–", "―", "−−", "——", "––"])
def test_dash_substitutes_before_a_flag_word(dash: str) -> None:
    options = parse(
        f"a lighthouse {dash}ar 16:9 {dash}seed 7 {dash}no boats {dash}cloud", server_model="sd15"
    )
    assert (options.prompt, options.width, options.height) == ("a lighthouse", 704, 384)
    assert (options.seed, options.negative_prompt, options.prefer_cloud) == (7, "boats", True)


def test_dash_substitute_flag_names_are_case_insensitive() -> None:
    assert parse("a cat —SEED 4").seed == 4


@pytest.mark.parametrize(
    "text",
    [
        "a lighthouse — at dusk",
        "state—of—the—art lighthouse",
        "a well--lit room",
        "a cat -- and a dog",
        "a storm —atmospheric",
        "a fox—no, a wolf",
        "a fox —no, a wolf",
        "pages 3–5 of a book",
        "a cat-ar",
    ],
)
def test_dashes_that_are_prose_stay_in_the_prompt(text: str) -> None:
    options = parse(text)
    assert options.prompt == text and options.negative_prompt == "" and options.seed is None


def test_ascii_flag_glued_to_text_asks_for_a_space() -> None:
    error = refused("a lighthouse at dusk--ar 16:9")
    assert error.field == "ar"
    assert "dusk--ar" in error.message and "space before --ar" in error.message


def test_unknown_ascii_flag_glued_to_text_is_prose() -> None:
    assert parse("a state--of-the-art robot").prompt == "a state--of-the-art robot"


def test_minus_signs_make_a_strong_flag() -> None:
    error = refused("a cat −−colour red")
    assert error.field == "colour" and "--colour" in error.message


# --- refusals -------------------------------------------------------------------------------------


def test_unknown_flag_lists_the_known_ones() -> None:
    error = refused("a cat --quality high")
    assert error.field == "quality"
    assert "--quality" in error.message
    for flag in (
        "--ar",
        "--size",
        "--seed",
        "--no",
        "--steps",
        "--cfg",
        "--n",
        "--model",
        "--strength",
        "--cloud",
    ):
        assert flag in error.message


def test_flag_glued_to_its_value_gets_a_hint() -> None:
    error = refused("a cat --ar16:9")
    assert error.field == "ar16"
    assert "put a space before its value, like --ar 16:9" in error.message


@pytest.mark.parametrize(
    ("text", "field", "example"),
    [
        ("a cat --seed", "seed", "--seed 1234"),
        ("a cat --seed --n 2", "seed", "--seed 1234"),
        ("a cat --ar", "ar", "--ar 16:9"),
        ("a cat --aspect --seed 3", "ar", "--ar 16:9"),
        ("a cat --size", "size", "--size 768x512"),
        ("a cat --steps", "steps", "--steps 30"),
        ("a cat --cfg", "cfg", "--cfg 6.5"),
        ("a cat --count", "n", "--n 4"),
        ("a cat --model", "model", "--model sdxl"),
        ("a cat --strength", "strength", "--strength 0.6"),
        ("a cat --no", "no", "--no people, boats"),
        ("a cat --no , , --seed 1", "no", "--no people, boats"),
    ],
)
def test_missing_value(text: str, field: str, example: str) -> None:
    error = refused(text)
    assert error.field == field
    assert "needs a value" in error.message and example in error.message


@pytest.mark.parametrize(
    ("text", "field", "named"),
    [
        ("a cat --seed 1 --seed 2", "seed", "--seed was given twice"),
        ("a cat --ar 1:1 --aspect 2:1", "ar", "(as --ar and --aspect)"),
        ("a cat --no dogs --no birds", "no", "--no was given twice"),
        ("a cat --cloud —cloud", "cloud", "--cloud was given twice"),
        ("a cat --n 1 --COUNT 2", "n", "(as --n and --count)"),
    ],
)
def test_duplicate_flags(text: str, field: str, named: str) -> None:
    error = refused(text, server_model="sd15")
    assert error.field == field and named in error.message and "keep only one" in error.message


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("--seed abc", "seed", "--seed must be a whole number from 0 to 4294967295 (you wrote abc)."),
        ("--seed -1", "seed", "--seed must be a whole number from 0 to 4294967295 (you wrote -1)."),
        (
            "--seed 4294967296",
            "seed",
            "--seed must be a whole number from 0 to 4294967295 (you wrote 4294967296).",
        ),
        ("--seed 1.5", "seed", "--seed must be a whole number from 0 to 4294967295 (you wrote 1.5)."),
        ("--steps 500", "steps", "--steps must be a whole number from 1 to 50 for tiny (you wrote 500)."),
        ("--steps 0", "steps", "--steps must be a whole number from 1 to 50 for tiny (you wrote 0)."),
        ("--steps 2.5", "steps", "--steps must be a whole number from 1 to 50 for tiny (you wrote 2.5)."),
        ("--cfg 31", "cfg", "--cfg must be a number from 0 to 30 (you wrote 31)."),
        ("--guidance -1", "cfg", "--guidance must be a number from 0 to 30 (you wrote -1)."),
        ("--cfg nan", "cfg", "--cfg must be a number from 0 to 30 (you wrote nan)."),
        ("--cfg 1e1", "cfg", "--cfg must be a number from 0 to 30 (you wrote 1e1)."),
        ("--n 5", "n", "--n must be a whole number from 1 to 4 (you wrote 5)."),
        ("--count 0", "n", "--count must be a whole number from 1 to 4 (you wrote 0)."),
        ("--n two", "n", "--n must be a whole number from 1 to 4 (you wrote two)."),
        ("--strength 0.01", "strength", "--strength must be a number from 0.05 to 1 (you wrote 0.01)."),
        ("--strength 1.5", "strength", "--strength must be a number from 0.05 to 1 (you wrote 1.5)."),
        ("--strength 1,5", "strength", "--strength must be a number from 0.05 to 1 (you wrote 1,5)."),
    ],
)
def test_bad_numbers_name_the_flag_the_value_and_the_range(text: str, field: str, message: str) -> None:
    error = refused(f"a cat {text}")
    assert (error.field, error.message) == (field, message)


def test_steps_range_follows_the_model() -> None:
    error = refused("a cat --model sdxl-turbo --steps 30")
    assert error.message == "--steps must be a whole number from 1 to 10 for sdxl-turbo (you wrote 30)."
    assert parse("a cat --model sdxl --steps 150").steps == 150


def test_image_count_range_follows_the_limits() -> None:
    error = refused("a cat --n 3", limits=LimitsSettings(max_images=2, default_images=2))
    assert error.field == "n" and "from 1 to 2" in error.message and "you wrote 3" in error.message


def test_long_values_are_shortened_when_quoted() -> None:
    error = refused("a cat --seed " + "9" * 5000)
    assert error.field == "seed" and len(error.message) < 150 and "…" in error.message


def test_unknown_model_lists_the_models() -> None:
    error = refused("a cat --model midjourney")
    assert error.field == "model" and "--model" in error.message and "midjourney" in error.message
    for name in model_names():
        assert name in error.message


def test_aspect_and_size_together_contradict() -> None:
    error = refused("a cat --aspect 16:9 --size 512x512")
    assert error.field == "size" and "--aspect" in error.message and "--size" in error.message
    assert "only one" in error.message


@pytest.mark.parametrize("text", ["--ar 16:9", "   ", "", "--seed 3 --cloud", "—ar 1:1 \n"])
def test_empty_prompt(text: str) -> None:
    error = refused(text)
    assert error.field == "prompt" and "describe the image" in error.message


def test_prompt_over_the_limit_says_length_and_limit() -> None:
    limits = LimitsSettings(max_prompt_chars=20)
    assert parse("a" * 20, limits=limits).prompt == "a" * 20
    error = refused("a" * 21 + " --seed 1", limits=limits)
    assert error.field == "prompt"
    assert "21 characters" in error.message and "limit is 20" in error.message


def test_negative_over_the_limit() -> None:
    limits = LimitsSettings(max_negative_chars=10)
    assert parse("a cat --no dogs, owls", limits=limits).negative_prompt == "dogs, owls"
    error = refused("a cat --no dogs, birds", limits=limits)
    assert error.field == "no" and "--no is 11 characters" in error.message and "limit is 10" in error.message


@pytest.mark.parametrize("model", ["sdxl-turbo", "sd-turbo", "flux-schnell"])
def test_negative_refused_for_models_that_ignore_it(model: str) -> None:
    error = refused(f"a cat --model {model} --no dogs")
    assert error.field == "no" and model in error.message and "--no" in error.message
    assert "sd15" in error.message  # a model that does take them


@pytest.mark.parametrize("model", ["dall-e-3", "gpt-image-1"])
def test_negative_allowed_for_openai_models(model: str) -> None:
    assert parse(f"a cat --model {model} --no dogs").negative_prompt == "dogs"


@pytest.mark.parametrize(
    ("flag", "field"), [("--steps 10", "steps"), ("--cfg 5", "cfg"), ("--guidance 5", "cfg")]
)
def test_openai_models_take_no_steps_or_guidance(flag: str, field: str) -> None:
    error = refused(f"a cat --model dall-e-3 {flag}")
    assert error.field == field and "dall-e-3" in error.message and flag.split(maxsplit=1)[0] in error.message


def test_strength_refused_for_models_without_img2img() -> None:
    error = refused("a cat --model gpt-image-1 --strength 0.5")
    assert error.field == "strength" and "gpt-image-1" in error.message and "--strength" in error.message


def test_cloud_with_a_value_is_refused() -> None:
    error = refused("a cat --cloud=yes")
    assert error.field == "cloud" and "--cloud takes no value" in error.message


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("5:1", "between 1:4 and 4:1"),
        ("1:5", "between 1:4 and 4:1"),
        ("100:24", "between 1:4 and 4:1"),
        ("0:1", "above zero"),
        ("16:0", "above zero"),
        ("wide", "two whole numbers with a colon, like 16:9"),
        ("16x9", "two whole numbers with a colon, like 16:9"),
        ("1.5:1", "two whole numbers with a colon, like 16:9"),
        ("1234567:1", "two whole numbers with a colon, like 16:9"),
    ],
)
def test_bad_aspect_ratios(value: str, why: str) -> None:
    error = refused(f"a cat --ar {value}")
    assert error.field == "ar" and error.message.startswith("--ar ") and why in error.message
    assert f"(you wrote {value})" in error.message


@pytest.mark.parametrize(
    ("value", "why"),
    [("big", "like 768x512"), ("512", "like 768x512"), ("0x512", "above zero"), ("512x", "like 768x512")],
)
def test_bad_sizes(value: str, why: str) -> None:
    error = refused(f"a cat --size {value}")
    assert error.field == "size" and "--size" in error.message and why in error.message


# --- sizes per model ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "aspect", "size", "noted"),
    [
        ("tiny", "1:1", (64, 64), False),
        ("tiny", "16:9", (88, 48), True),
        ("tiny", "4:1", (128, 32), False),
        ("tiny", "1:4", (32, 128), False),
        ("sd15", "1:1", (512, 512), False),
        ("sd15", "16:9", (704, 384), True),
        ("sd15", "1:4", (256, 1024), False),
        ("sd21", "4:1", (1536, 384), False),
        ("sdxl", "16:9", (1344, 768), True),
        ("sdxl", "4:1", (2048, 512), False),
        ("sdxl", "7:4", (1344, 768), False),
        ("flux-schnell", "16:9", (1344, 768), True),
        ("flux-schnell", "1:1", (1024, 1024), False),
    ],
)
def test_aspect_keeps_the_native_area(model: str, aspect: str, size: tuple[int, int], noted: bool) -> None:
    spec = get_model(model)
    width, height, note = size_for_aspect(spec, aspect)
    assert (width, height) == size
    assert (note is not None) == noted
    if note:
        assert aspect in note and f"{width}x{height}" in note
        assert "multiples of 64" in note if spec.native_width >= 512 else "multiples of 8" in note
    assert 0.8 < width * height / spec.native_area < 1.2


@pytest.mark.parametrize(
    ("model", "size", "used", "note"),
    [
        ("tiny", "100x60", (96, 56), "100x60 was snapped to 96x56 (multiples of 8)."),
        ("tiny", "64x64", (64, 64), None),
        ("tiny", "30x512", (32, 512), "30x512 was snapped to 32x512 (multiples of 8)."),
        ("sd15", "768x500", (768, 496), "768x500 was snapped to 768x496 (multiples of 8)."),
        ("sdxl", "1020x1030", (1016, 1032), "1020x1030 was snapped to 1016x1032 (multiples of 8)."),
        ("flux-schnell", "1000x1000", (992, 992), "1000x1000 was snapped to 992x992 (multiples of 16)."),
        ("flux-schnell", "1024x768", (1024, 768), None),
    ],
)
def test_explicit_size_snaps_with_a_note(
    model: str, size: str, used: tuple[int, int], note: str | None
) -> None:
    options = parse(f"a cat --size {size} --model {model}")
    assert (options.width, options.height) == used
    assert options.notes == ((note,) if note else ())


@pytest.mark.parametrize(
    ("model", "size", "bounds"),
    [
        ("tiny", "1024x64", "from 32 to 512 pixels for tiny"),
        ("tiny", "20x64", "from 32 to 512 pixels for tiny"),
        ("sd15", "2048x512", "from 256 to 1024 pixels for sd15"),
        ("sdxl", "256x1024", "from 512 to 2048 pixels for sdxl"),
    ],
)
def test_explicit_size_out_of_bounds(model: str, size: str, bounds: str) -> None:
    error = refused(f"a cat --size {size} --model {model}")
    assert error.field == "size" and "--size" in error.message and bounds in error.message
    assert f"you wrote {size}" in error.message


@pytest.mark.parametrize(
    ("flags", "used", "noted"),
    [
        ("", (1024, 1024), False),
        ("--ar 1:1", (1024, 1024), False),
        ("--ar 16:9", (1792, 1024), True),
        ("--ar 9:16", (1024, 1792), True),
        ("--ar 7:4", (1792, 1024), False),
        ("--ar 4:1", (1792, 1024), True),
        ("--size 800x600", (1024, 1024), True),
        ("--size 1600x900", (1792, 1024), True),
        ("--size 1024x1792", (1024, 1792), False),
    ],
)
def test_openai_sizes_map_to_the_fixed_ones(flags: str, used: tuple[int, int], noted: bool) -> None:
    options = parse(f"a cat --model dall-e-3 {flags}")
    assert (options.width, options.height) == used
    assert len(options.notes) == int(noted)
    if noted:
        assert f"so {used[0]}x{used[1]} was used" in options.notes[0]
        assert "1024x1024, 1792x1024 or 1024x1792" in options.notes[0]


def test_size_for_aspect_refuses_bad_ratios() -> None:
    with pytest.raises(InvalidRequest) as caught:
        size_for_aspect(get_model("sdxl"), "9:1")
    assert caught.value.field == "ar" and "between 1:4 and 4:1" in caught.value.message


# --- user defaults --------------------------------------------------------------------------------


def test_user_defaults_apply_without_flags() -> None:
    options = parse("a cat", defaults=UserDefaults(aspect="16:9", model="sdxl", n=2))
    assert (options.model, options.width, options.height, options.n) == ("sdxl", 1344, 768, 2)


def test_flags_override_user_defaults() -> None:
    options = parse(
        "a cat --model sd15 --n 1 --ar 1:1", defaults=UserDefaults(aspect="16:9", model="sdxl", n=2)
    )
    assert (options.model, options.width, options.height, options.n) == ("sd15", 512, 512, 1)


def test_size_flag_overrides_the_default_aspect() -> None:
    options = parse("a cat --size 640x512 --model sd15", defaults=UserDefaults(aspect="16:9"))
    assert (options.width, options.height, options.notes) == (640, 512, ())


def test_saved_model_beats_the_server_default_and_may_be_an_alias() -> None:
    assert parse("a cat", server_model="sdxl").model == "sdxl"
    assert parse("a cat", server_model="sdxl", defaults=UserDefaults(model="dalle")).model == "dall-e-3"
    assert parse("a cat --model flux", defaults=UserDefaults(model="dalle")).model == "flux-schnell"


def test_server_default_image_count() -> None:
    assert parse("a cat", limits=LimitsSettings(default_images=2)).n == 2


def test_default_count_above_the_limit_is_reduced_with_a_note() -> None:
    options = parse(
        "a cat", limits=LimitsSettings(max_images=2, default_images=1), defaults=UserDefaults(n=4)
    )
    assert options.n == 2
    assert options.notes == ("Your default is 4 images, but this server makes at most 2, so 2 were made.",)


def test_broken_saved_defaults_are_explained() -> None:
    error = refused("a cat", defaults=UserDefaults(model="gone-model"))
    assert error.field == "model" and "gone-model" in error.message and "/settings" in error.message
    error = refused("a cat", defaults=UserDefaults(aspect="9:1"))
    assert error.field == "ar" and "saved default aspect" in error.message and "1:4 and 4:1" in error.message


# --- split_flags ----------------------------------------------------------------------------------


def test_split_flags_returns_canonical_names_and_raw_values() -> None:
    prompt, flags = split_flags(
        "a cat —aspect 16 : 9 --GUIDANCE=5 --no dogs, owls --seed --seed 3 --cloud on a mat"
    )
    assert prompt == "a cat on a mat"
    assert flags == [
        ("ar", "16:9"),
        ("cfg", "5"),
        ("no", "dogs, owls"),
        ("seed", ""),
        ("seed", "3"),
        ("cloud", ""),
    ]


def test_split_flags_keeps_leftover_words_in_order() -> None:
    assert split_flags("a --seed 1 b --cloud c") == ("a b c", [("seed", "1"), ("cloud", "")])


def test_split_flags_refuses_unknown_flags() -> None:
    with pytest.raises(InvalidRequest) as caught:
        split_flags("a cat --stylize 100")
    assert caught.value.field == "stylize"


# --- properties -----------------------------------------------------------------------------------

DASHES = ["--", "—", "–", "―", "−−", "——", "-", "", "---"]
NAMES = [*FLAG_ALIASES, "AR", "Seed", "NO", "foo", "x", "ar16", "no_"]
VALUES = st.one_of(
    st.integers(-5, 5000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.tuples(st.integers(0, 20), st.integers(0, 20)).map(lambda p: f"{p[0]}:{p[1]}"),
    st.tuples(st.integers(0, 2100), st.integers(0, 2100), st.sampled_from("xX×* ")).map(
        lambda p: f"{p[0]}{p[2]}{p[1]}"
    ),
    st.sampled_from([*model_names(), "dalle", "SD1.5", "nope", "", ",", "=", "people, boats"]),
)
TOKENS = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="ab —–-−=:x,0123456789", max_size=8),
    st.tuples(st.sampled_from(DASHES), st.sampled_from(NAMES)).map("".join),
    VALUES,
)
SEPARATORS = st.sampled_from([" ", " ", " ", "", "\n", "=", "\u00a0", "  "])
COMMANDS = st.lists(st.tuples(TOKENS, SEPARATORS), max_size=14).map(
    lambda parts: "".join(token + sep for token, sep in parts)
)
LIMIT_CHOICES = st.sampled_from(
    [LIMITS, LimitsSettings(max_prompt_chars=30, max_negative_chars=12, max_images=3, default_images=2)]
)
DEFAULT_CHOICES = st.one_of(
    st.none(),
    st.builds(
        UserDefaults,
        aspect=st.sampled_from([None, "16:9", "1:3", "9:1", "x"]),
        model=st.sampled_from([None, "sdxl", "dalle", "flux", "gone"]),
        n=st.sampled_from([None, 1, 2, 4, 0]),
    ),
)


def check_invariants(options: ImagineOptions, limits: LimitsSettings) -> None:
    spec = get_model(options.model)
    assert spec.name == options.model
    if spec.fixed_sizes:
        assert (options.width, options.height) in spec.fixed_sizes
    else:
        for side in (options.width, options.height):
            assert side % spec.size_multiple == 0
            assert spec.min_side <= side <= spec.max_side
    assert 1 <= options.n <= limits.max_images
    assert options.prompt and len(options.prompt) <= limits.max_prompt_chars
    assert options.prompt == " ".join(options.prompt.split())
    assert len(options.negative_prompt) <= limits.max_negative_chars
    assert 1 <= options.steps <= spec.max_steps
    assert 0 <= options.guidance <= 30
    assert options.seed is None or 0 <= options.seed <= MAX_SEED
    assert options.strength is None or 0.05 <= options.strength <= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(COMMANDS, st.text(max_size=80)),
    model=st.sampled_from(model_names()),
    limits=LIMIT_CHOICES,
    defaults=DEFAULT_CHOICES,
)
def test_any_text_parses_or_is_refused_politely(
    text: str, model: str, limits: LimitsSettings, defaults: UserDefaults | None
) -> None:
    try:
        options = parse_imagine(text, default_model=model, limits=limits, defaults=defaults)
    except InvalidRequest as error:
        assert error.field and error.message.strip()
        assert error.field == "prompt" or error.field.isascii()
        return
    check_invariants(options, limits)


PROMPT_WORDS = st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=6), min_size=1, max_size=5)
VALID_FLAGS = st.lists(
    st.sampled_from(
        ["ar 3:2", "seed 42", "no dogs, cats", "steps 20", "cfg 4.5", "n 2", "strength 0.4", "cloud"]
    ),
    unique=True,
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(words=PROMPT_WORDS, flags=VALID_FLAGS, dash=st.sampled_from(["—", "–", "―", "−−", "——"]))
def test_dash_substitutes_mean_the_same_as_double_hyphens(
    words: list[str], flags: list[str], dash: str
) -> None:
    plain = " ".join(words) + "".join(f" --{flag}" for flag in flags)
    phone = " ".join(words) + "".join(f" {dash}{flag}" for flag in flags)
    expected = parse(plain, server_model="sd15")
    assert parse(phone, server_model="sd15") == expected
    assert expected.prompt == " ".join(words)


# --- characters a command may not hold (defects 16 and 36) ----------------------------------------

FORBIDDEN = ["\0", "\x07", "\x1b", "\x7f", "\x85", "\u202a", "\u202e", "\u2066", "\u2069", "\ud800", "\udfff"]
INVISIBLE = [
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u00ad",
    "\u3164",
    "\u2800",
    "\u0301",
    "\ufe0f",
]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("a cat\0 in a hat", "NUL character (U+0000)"),
        ("a cat \x1b[31min red", "control character (U+001B)"),
        ("a cat\x85", "control character (U+0085)"),
        ("a cat \u202egnirts", "text-direction control (U+202E, right-to-left override)"),
        ("a cat \u2066isolated\u2069", "text-direction control (U+2066, left-to-right isolate)"),
        ("a cat \ud83d at dusk", "broken character (U+D83D"),  # half of an emoji's surrogate pair
        ("a cat --no dogs\0", "NUL character (U+0000)"),  # in a flag's value too
    ],
)
def test_control_direction_and_broken_characters_are_refused_by_name(text: str, named: str) -> None:
    error = refused(text)
    assert error.field == "prompt"
    assert named in error.message and "Please remove it" in error.message


@pytest.mark.parametrize(
    ("text", "prompt"),
    [
        ("a cat\twith a\r\nhat", "a cat with a hat"),  # tabs and line breaks are whitespace
        ("a cat named \u05e9\u05dc\u05d5\u05dd\u200f", "a cat named \u05e9\u05dc\u05d5\u05dd\u200f"),  # RLM
        (
            "a \U0001f468\u200d\U0001f469\u200d\U0001f467 family",
            "a \U0001f468\u200d\U0001f469\u200d\U0001f467 family",
        ),
        (
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        ),
        (
            "a flag \U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
            None,
        ),  # tag characters
    ],
)
def test_ordinary_text_with_format_characters_passes(text: str, prompt: str | None) -> None:
    assert parse(text).prompt == (prompt or text)


@pytest.mark.parametrize(
    "text",
    [
        "\u200b\u200b\u200b",
        "\u200c\u200d\ufeff --ar 16:9",
        "\u2060 \u200b\t\u200b",
        "\u3164\u3164",  # Hangul fillers look blank
        "\u2800",  # braille blank
        "\u0301\u0301",  # combining accents on nothing
    ],
)
def test_a_prompt_of_invisible_characters_is_empty(text: str) -> None:
    error = refused(text)
    assert error.field == "prompt"
    assert error.message.startswith("The prompt is empty") and "describe the image" in error.message


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40))
def test_whatever_is_accepted_can_be_stored_and_shown(text: str) -> None:
    try:
        options = parse(text + " --seed 1")
    except InvalidRequest as error:
        assert error.field and error.message.strip()
        return
    for value in (options.prompt, options.negative_prompt):
        value.encode("utf-8")  # no lone surrogate: Redis and PNG metadata can take it
        assert not {char for char in value if char in FORBIDDEN or (ord(char) < 32 and char not in "\t\n\r")}
        assert not set(value) & set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert any(char.isalnum() or (not char.isspace() and char not in INVISIBLE) for char in options.prompt)


@settings(max_examples=200, deadline=None)
@given(words=PROMPT_WORDS, flags=VALID_FLAGS, bad=st.sampled_from(FORBIDDEN), where=st.integers(0, 200))
def test_a_forbidden_character_anywhere_is_refused_naming_its_code_point(
    words: list[str], flags: list[str], bad: str, where: int
) -> None:
    text = " ".join(words) + "".join(f" --{flag}" for flag in flags)
    where = min(where, len(text))
    error = refused(text[:where] + bad + text[where:], server_model="sd15")
    assert error.field == "prompt"
    assert f"U+{ord(bad):04X}" in error.message


@settings(max_examples=150, deadline=None)
@given(
    invisible=st.lists(st.sampled_from([*INVISIBLE, " ", "\t", "\n"]), min_size=1, max_size=12),
    flags=VALID_FLAGS,
)
def test_invisible_prompts_are_refused_and_never_queued(invisible: list[str], flags: list[str]) -> None:
    text = "".join(invisible) + "".join(f" --{flag}" for flag in flags)
    error = refused(text, server_model="sd15")
    assert error.field == "prompt"
    assert "describe the image" in error.message
