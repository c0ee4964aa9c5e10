"""The built-in tiny model: deterministic, offline, and loadable like any real model."""

from __future__ import annotations

import hashlib
from pathlib import Path

from worker.tiny import COMMON_WORDS, MARKER, TINY_FOLDER, ensure_tiny_model, is_complete


def file_digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_two_fresh_builds_are_byte_identical(tiny_model_dir: Path, tmp_path: Path) -> None:
    # The second build also starts from a broken leftover folder, which must be replaced, not trusted.
    broken = tmp_path / TINY_FOLDER
    broken.mkdir()
    (broken / "model_index.json").write_text("{}")

    rebuilt = ensure_tiny_model(tmp_path)

    assert rebuilt == broken
    first, second = file_digests(tiny_model_dir), file_digests(rebuilt)
    assert first == second
    weights = [name for name in first if name.endswith(".safetensors")]
    assert sorted(weights) == [
        "text_encoder/model.safetensors",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
    ]
    total = sum(path.stat().st_size for path in rebuilt.rglob("*") if path.is_file())
    assert total < 12_000_000
    # Nothing is left behind from the build in the cache folder.
    assert [path.name for path in tmp_path.iterdir()] == [TINY_FOLDER]


def test_a_complete_model_is_reused_not_rebuilt(tiny_model_dir: Path) -> None:
    weights = tiny_model_dir / "unet" / "diffusion_pytorch_model.safetensors"
    before = weights.stat().st_mtime_ns

    again = ensure_tiny_model(tiny_model_dir.parent)

    assert again == tiny_model_dir
    assert weights.stat().st_mtime_ns == before
    assert is_complete(again)
    assert (again / MARKER).is_file()


def test_it_loads_through_from_pretrained_with_a_working_tokenizer(tiny_model_dir: Path) -> None:
    from diffusers import StableDiffusionPipeline

    pipeline = StableDiffusionPipeline.from_pretrained(tiny_model_dir)

    assert pipeline.safety_checker is None
    native = pipeline.unet.config.sample_size * pipeline.vae_scale_factor
    assert native == 64
    tokenizer = pipeline.tokenizer
    ids = tokenizer("A Lighthouse at dusk, 4k! Zebra").input_ids
    assert ids[0] == tokenizer.bos_token_id
    assert ids[-1] == tokenizer.eos_token_id
    inner = ids[1:-1]
    assert tokenizer.unk_token_id not in inner  # every character is in the byte-level vocabulary
    assert tokenizer.decode(inner).strip() == "a lighthouse at dusk , 4 k ! zebra"
    assert len(tokenizer("a cat in the city").input_ids) == 7  # common words are one token each
    assert [word for word in COMMON_WORDS if len(tokenizer(word).input_ids) != 3] == []
    config = pipeline.text_encoder.config
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    assert config.vocab_size == len(tokenizer)
