"""The built-in smoke-test model: a tiny Stable Diffusion pipeline with random weights, built offline.

It needs no download: every component is built from a config with a fixed seed and saved with
`save_pretrained`, so the worker loads it through the same `from_pretrained` path as any real model.
It renders 64×64 noise in a fraction of a second on a CPU, which is what tests and a first run need.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TINY_FOLDER = "tiny-sd"
# Bump when the recipe changes: a cached model built by an older recipe is rebuilt.
RECIPE_VERSION = 1
TINY_NOTE = "smoke-test model with random weights: it draws noise, not pictures"  # said with every result
MARKER = "imagebot-tiny.json"
SEED = 0

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
# Common prompt words get a token of their own; any other text still tokenizes, byte by byte.
_COMMON_TEXT = (
    "a an the of in on at with and or by for from to under over near behind above below is are "
    "photo photograph picture painting drawing sketch illustration render portrait landscape closeup close up "
    "cat dog bird fish horse fox wolf bear lion tiger dragon robot person man woman child girl boy face "
    "lighthouse house castle city street road bridge tower car ship boat train forest tree trees flower flowers "
    "mountain mountains river lake sea ocean beach island desert field garden sky cloud clouds sun moon star stars "
    "dusk dawn sunset sunrise night day morning evening rain snow fog storm light dark "
    "red orange yellow green blue purple pink black white gray grey gold silver colorful "
    "big small tiny old new beautiful cute happy sad detailed highly realistic photorealistic cinematic "
    "art style oil watercolor digital anime cartoon pixel fantasy futuristic vintage minimalist "
    "hdr high quality best masterpiece lighting epic dramatic soft studio wide angle lens bokeh "
    "blurry ugly bad low deformed text watermark signature"
)
COMMON_WORDS = tuple(_COMMON_TEXT.split())


def _bytes_to_unicode() -> dict[int, str]:
    """The byte-level BPE alphabet (GPT-2 and CLIP): every byte maps to one printable character."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {byte: chr(code) for byte, code in zip(printable, codes, strict=True)}


def _bpe(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encoding of one word: repeatedly merge the adjacent pair with the lowest rank."""
    while len(symbols) > 1:
        pairs = [
            (ranks.get(pair, len(ranks)), index) for index, pair in enumerate(itertools.pairwise(symbols))
        ]
        rank, index = min(pairs)
        if rank == len(ranks):
            break
        symbols = [*symbols[:index], symbols[index] + symbols[index + 1], *symbols[index + 2 :]]
    return symbols


def tokenizer_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """An in-memory CLIP-style vocabulary and merge list: specials, then bytes, then one token per common word.

    Merges are appended until every common word encodes to a single token; any other text still tokenizes
    through the byte-level alphabet, so no prompt loses characters to the unknown token.
    """
    vocab: dict[str, int] = {BOS_TOKEN: 0, EOS_TOKEN: 1}
    alphabet = list(_bytes_to_unicode().values())
    for symbol in alphabet:
        vocab[symbol] = len(vocab)
    for symbol in alphabet:
        vocab[symbol + "</w>"] = len(vocab)
    ranks: dict[tuple[str, str], int] = {}
    changed = True
    while changed:
        changed = False
        for word in COMMON_WORDS:
            pieces = _bpe([*word[:-1], word[-1] + "</w>"], ranks)
            while len(pieces) > 1:
                merge = (pieces[0], pieces[1])
                ranks[merge] = len(ranks)
                vocab.setdefault(pieces[0] + pieces[1], len(vocab))
                pieces = [pieces[0] + pieces[1], *pieces[2:]]
                changed = True
    return vocab, list(ranks)


def _build(folder: Path) -> None:
    """Build the pipeline with a fixed seed and save it to folder (which must not exist yet)."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab, merges = tokenizer_vocab()
    # The stubs say list[str], but the tokenizers backend wants (left, right) pairs.
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)  # type: ignore[arg-type]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=2,
            sample_size=32,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
        )
        torch.manual_seed(SEED)
        vae = AutoencoderKL(
            block_out_channels=(32, 64),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            latent_channels=4,
            sample_size=64,
        )
        torch.manual_seed(SEED)
        text_config = CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            projection_dim=32,
            layer_norm_eps=1e-5,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        text_encoder = CLIPTextModel(text_config)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        timestep_spacing="trailing",
    )
    pipeline: Any = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder)
    (folder / MARKER).write_text(json.dumps({"recipe_version": RECIPE_VERSION}))


def is_complete(folder: Path) -> bool:
    """True when folder holds a tiny model saved by the current recipe (the marker is written last)."""
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("recipe_version") == RECIPE_VERSION


def ensure_tiny_model(cache_dir: Path) -> Path:
    """The folder of the tiny model under cache_dir, built on first use; safe against concurrent builders."""
    return build_once(Path(cache_dir) / TINY_FOLDER, _build, is_complete)


def build_once(target: Path, build: Callable[[Path], None], complete: Callable[[Path], bool]) -> Path:
    """target, built by `build(folder)` unless `complete(target)` already; safe against concurrent builders.

    The model is built in a temporary folder next to its final place and renamed into place, so a reader
    never sees half a model. A folder left by an older recipe or a crashed copy is replaced.
    """
    if complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        logger.info("building %s", target)
        staged = building / target.name
        build(staged)
        if target.exists() and not complete(target):
            # Stale or broken: move it aside first so the rename below can take its place.
            os.replace(target, building / "stale")
        try:
            os.replace(staged, target)
        except OSError:
            # Another process renamed its own build into place first; theirs is as good as ours.
            if not complete(target):
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target
