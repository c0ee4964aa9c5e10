"""Real-size Stable Diffusion 1.5 and SDXL pipelines with random weights, built offline from their published configs.

They do the real models' compute (the same UNet, VAE and text encoders, layer for layer, parameter for parameter)
and draw noise, so a benchmark measures a GPU without downloading gigabytes of weights or accepting a licence.
Each model is built once, saved with `save_pretrained` (float16 on disk by default: 2.1 GB for SD 1.5, 6.9 GB
for SDXL) and loaded by the worker like any local diffusers folder, through `IMAGEBOT_WORKER__MODEL_PATHS`:

    IMAGEBOT_WORKER__MODEL_PATHS='{"sd15": "imagebot-data/models/random-sd15-float16"}'

The configs below are written out from the published ones, so nothing is fetched:
- SD 1.5: stable-diffusion-v1-5/stable-diffusion-v1-5 (formerly runwayml/stable-diffusion-v1-5), unet/, vae/ and
  scheduler/ config.json; its text encoder is openai/clip-vit-large-patch14's text half (CLIP ViT-L/14).
- SDXL: stabilityai/stable-diffusion-xl-base-1.0, unet/, vae/, text_encoder/ (CLIP ViT-L/14),
  text_encoder_2/ (OpenCLIP ViT-bigG/14, with projection) and scheduler/ config.json; the VAE without
  `force_upcast`, as madebyollin/sdxl-vae-fp16-fix (see `vae_config`).
The tokenizers are worker/tiny.py's byte-level CLIP tokenizer (no vocabulary download); the text encoders keep
CLIP's full 49,408-token embedding, so their size and compute are the real ones.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

from worker.device import DtypeName, torch_dtype
from worker.tiny import build_once, tokenizer_vocab

logger = logging.getLogger(__name__)

RealSizeName = Literal["sd15", "sdxl"]
REAL_SIZE_MODELS: tuple[RealSizeName, ...] = ("sd15", "sdxl")
# Bump when a recipe changes: a cached model built by an older recipe is rebuilt.
RECIPE_VERSION = 2
MARKER = "imagebot-random-weights.json"
SEED = 0
CLIP_VOCAB_SIZE = 49408  # CLIP's BPE vocabulary: the token embedding's real size
CLIP_MAX_TOKENS = 77


def unet_config(name: RealSizeName) -> dict[str, Any]:
    """The UNet2DConditionModel arguments of the published unet/config.json (defaults left out)."""
    if name == "sd15":  # 859,520,964 parameters
        return {
            "sample_size": 64,
            "in_channels": 4,
            "out_channels": 4,
            "layers_per_block": 2,
            "block_out_channels": (320, 640, 1280, 1280),
            "down_block_types": (
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "DownBlock2D",
            ),
            "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            "cross_attention_dim": 768,
            "attention_head_dim": 8,
            "norm_num_groups": 32,
            "norm_eps": 1e-5,
        }
    return {  # sdxl, 2,567,463,684 parameters
        "sample_size": 128,
        "in_channels": 4,
        "out_channels": 4,
        "layers_per_block": 2,
        "block_out_channels": (320, 640, 1280),
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        "cross_attention_dim": 2048,
        "attention_head_dim": (5, 10, 20),
        "transformer_layers_per_block": (1, 2, 10),
        "use_linear_projection": True,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": 256,
        "projection_class_embeddings_input_dim": 2816,  # 1280 (pooled bigG text) + 6 × 256 (size/crop ids)
        "norm_num_groups": 32,
        "norm_eps": 1e-5,
    }


def vae_config(name: RealSizeName) -> dict[str, Any]:
    """The AutoencoderKL arguments (83,653,863 parameters, the same network in both; SDXL's is retrained).

    SDXL's is configured like madebyollin/sdxl-vae-fp16-fix, the same network without `force_upcast`: that is
    the VAE the worker decodes SDXL with in float16 (worker/vae.py), so the random model decodes as it does (in
    float16, not upcast to float32) without a download. Its random weights may overflow to NaN there (black
    noise); the compute is the same.
    """
    config: dict[str, Any] = {
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 2,
        "block_out_channels": (128, 256, 512, 512),
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "norm_num_groups": 32,
        "sample_size": 512,
    }
    if name == "sdxl":
        config.update(sample_size=1024, scaling_factor=0.13025, force_upcast=False)
    return config


def text_config(encoder: Literal["clip-l", "clip-bigg"], bos: int, eos: int, pad: int) -> Any:
    """The CLIPTextConfig of CLIP ViT-L/14 (123,060,480 parameters) or OpenCLIP ViT-bigG/14 (694,659,840 with its
    projection), with the token ids of worker/tiny.py's tokenizer."""
    from transformers import CLIPTextConfig

    sizes: dict[str, dict[str, Any]] = {
        "clip-l": {
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_attention_heads": 12,
            "num_hidden_layers": 12,
            "projection_dim": 768,
            "hidden_act": "quick_gelu",
        },
        "clip-bigg": {
            "hidden_size": 1280,
            "intermediate_size": 5120,
            "num_attention_heads": 20,
            "num_hidden_layers": 32,
            "projection_dim": 1280,
            "hidden_act": "gelu",
        },
    }
    return CLIPTextConfig(
        vocab_size=CLIP_VOCAB_SIZE,
        max_position_embeddings=CLIP_MAX_TOKENS,
        layer_norm_eps=1e-5,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
        **sizes[encoder],
    )


def build_unet(name: RealSizeName) -> Any:
    """The real-size UNet with random weights (under `torch.device("meta")`: its shapes only, in no memory)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**unet_config(name))


def _scheduler(name: RealSizeName) -> Any:
    from diffusers import EulerDiscreteScheduler, PNDMScheduler

    betas: dict[str, Any] = {
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "num_train_timesteps": 1000,
        "steps_offset": 1,
    }
    if name == "sd15":
        return PNDMScheduler(**betas, skip_prk_steps=True, set_alpha_to_one=False)
    return EulerDiscreteScheduler(**betas, timestep_spacing="leading", interpolation_type="linear")


def build_pipeline(name: RealSizeName, dtype: DtypeName = "float16") -> Any:
    """The whole pipeline with seeded random weights in `dtype`, on the CPU.

    Each component is built in float32 (torch's initialisers) and cast before the next is built, so the peak is
    one component in float32 (10.3 GB for SDXL's UNet).
    """
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    vocab, merges = tokenizer_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CLIP_MAX_TOKENS)  # type: ignore[arg-type]
    ids = (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    cast = torch_dtype(dtype)
    # A scheduler's tables are CPU tensors, even when the networks are built on the meta device.
    with torch.device("cpu"):
        scheduler = _scheduler(name)

    def built(component: Any) -> Any:
        # torch's own `to`: diffusers' would warn that from_pretrained casts better (it keeps nothing in
        # float32 for these models anyway).
        return torch.nn.Module.to(component, cast).eval()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        unet = built(build_unet(name))
        vae = built(AutoencoderKL(**vae_config(name)))
        text_encoder = built(CLIPTextModel(text_config("clip-l", *ids)))
        if name == "sd15":
            return StableDiffusionPipeline(
                vae=vae,
                text_encoder=text_encoder,
                tokenizer=tokenizer,
                unet=unet,
                scheduler=scheduler,
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
        text_encoder_2 = built(CLIPTextModelWithProjection(text_config("clip-bigg", *ids)))
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )


def folder_name(name: RealSizeName, dtype: DtypeName) -> str:
    return f"random-{name}-{dtype}"


def _recipe(name: RealSizeName, dtype: DtypeName) -> dict[str, Any]:
    return {"recipe_version": RECIPE_VERSION, "model": name, "dtype": dtype}


def is_complete(folder: Path, name: RealSizeName, dtype: DtypeName) -> bool:
    """True when folder holds this model saved by the current recipe (the marker is written last)."""
    try:
        return bool(json.loads((folder / MARKER).read_text()) == _recipe(name, dtype))
    except (OSError, ValueError):
        return False


def ensure_random_model(cache_dir: Path, name: RealSizeName, dtype: DtypeName = "float16") -> Path:
    """The folder of real-size `name` with random weights under cache_dir, built and saved on first use.

    Like the tiny model: built next to its final place and renamed into place, so a reader never sees half a
    model, and concurrent builders are safe. SD 1.5 takes about half a minute on two CPU cores; SDXL a few.
    """
    if name not in REAL_SIZE_MODELS:
        raise ValueError(f"no real-size recipe for {name!r}; choose one of {', '.join(REAL_SIZE_MODELS)}")
    target = Path(cache_dir) / folder_name(name, dtype)

    def build(folder: Path) -> None:
        import transformers.utils.logging as transformers_logging

        logger.info("building real-size %s with random weights (%s) in %s", name, dtype, target)
        transformers_logging.disable_progress_bar()  # a bar per saved shard; the worker hides them too
        build_pipeline(name, dtype).save_pretrained(folder)
        (folder / MARKER).write_text(json.dumps(_recipe(name, dtype)))

    return build_once(target, build, lambda folder: is_complete(folder, name, dtype))
