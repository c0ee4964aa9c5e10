"""A tiny captioning model with random weights, built offline, for tests and a first run of /describe.

A BLIP (`BlipForConditionalGeneration`) built from a small config with a fixed seed, and a `BlipProcessor` whose
tokenizer is a `BertTokenizer` over a vocabulary written here (BLIP's real tokenizer is a download) and whose
image processor is built from arguments. Both are saved with `save_pretrained`, so the worker loads them through
the same `AutoProcessor` / `AutoModelForImageTextToText.from_pretrained` path as real weights
(worker/captioner.py). Its captions are random words from the vocabulary: right in shape, not in meaning.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

TINY_CAPTIONER_FOLDER = "tiny-blip"
RECIPE_VERSION = 1
MARKER = "imagebot-tiny-captioner.json"
SEED = 0
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_TEXT = (
    "a an the of with in on at by near under over and photo painting drawing portrait landscape closeup "
    "cat dog fox bird horse lighthouse house castle tree forest river sea boat beach mountain sky city street "
    "red blue green yellow white black golden bright dark soft misty sunny night dusk dawn small large old"
)
WORDS = tuple(_TEXT.split())


def build_tiny_captioner(folder: Path) -> Path:
    """Build the tiny BLIP into `folder` (once: a folder holding this recipe's marker is reused)."""
    marker = folder / MARKER
    if marker.exists() and json.loads(marker.read_text()).get("recipe") == RECIPE_VERSION:
        return folder
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        vocab = Path(scratch) / "vocab.txt"
        vocab.write_text("\n".join((*SPECIAL, *WORDS)) + "\n")
        tokenizer = BertTokenizer(str(vocab), model_max_length=64)
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    ids = {
        "bos_token_id": tokenizer.cls_token_id,
        "eos_token_id": tokenizer.sep_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "sep_token_id": tokenizer.sep_token_id,
    }
    small = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
    config = BlipConfig(
        text_config={"vocab_size": len(tokenizer), "max_position_embeddings": 64, **small, **ids},
        vision_config={"image_size": 32, "patch_size": 8, **small},
        projection_dim=32,
    )
    torch.manual_seed(SEED)
    model = BlipForConditionalGeneration(config)
    model.generation_config.update(**{k: v for k, v in ids.items() if k != "sep_token_id"})
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    marker.write_text(json.dumps({"recipe": RECIPE_VERSION}))
    log.info("built the tiny captioner in %s", folder)
    return folder
