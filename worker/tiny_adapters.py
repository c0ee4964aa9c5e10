"""A LoRA and a ControlNet for the built-in tiny model, made offline: what tests and a first run load through the
same paths as real weights (a .safetensors LoRA file, a ControlNet folder saved with `save_pretrained`).

The LoRA puts peft's LoRA layers on the UNet's attention projections with random, non-zero weights (peft's
default init leaves B at zero, which would change nothing). The ControlNet is `ControlNetModel.from_unet` of the
tiny UNet: its zero convolutions start at zero, so they are filled with small random numbers too, or it would
leave every image unchanged.
"""

from __future__ import annotations

from pathlib import Path

LORA_FILE = "pytorch_lora_weights.safetensors"
TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0"]


def build_tiny_lora(model_dir: Path, folder: Path, seed: int = 0, rank: int = 4) -> Path:
    """Save a random LoRA for the tiny model's UNet under `folder`; returns the .safetensors file."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet")
    config = LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False, target_modules=TARGET_MODULES)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet.add_adapter(config)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    folder.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=layers, weight_name=LORA_FILE)
    return folder / LORA_FILE


def build_tiny_controlnet(model_dir: Path, folder: Path, seed: int = 0) -> Path:
    """Save a ControlNet for the tiny model (from its UNet, with random zero-convolutions) to `folder`."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet")
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for block in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            torch.nn.init.normal_(block.weight, std=0.05)
        torch.nn.init.normal_(controlnet.controlnet_cond_embedding.conv_out.weight, std=0.05)
    controlnet.save_pretrained(folder)
    return folder
