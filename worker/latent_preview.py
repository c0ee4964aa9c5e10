"""A cheap picture of the latents mid-render: a fixed linear map from latent channels to RGB, per model family.

The SD 1.x/2.x and SDXL factors are the well-known ones (ComfyUI's latent_formats): a 4×3 matrix and a bias
that take the sampler's (scaled) latents to RGB in [-1, 1], with no weights to load. The tiny model's VAE has
random weights, so its map is fitted once from the VAE itself: a few random latents decoded, a least-squares fit.
Families without a known map (FLUX's 16 channels) get no live preview.

When the operator configures a tiny autoencoder for a model or family (WorkerSettings.live_preview_autoencoder:
diffusers' AutoencoderTiny, e.g. madebyollin/taesd or taesdxl), previews are a real decode of the latents at full
size instead, which shows shapes and colours the linear map blurs; one that fails to load is logged once and the
linear map serves instead.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from PIL import Image

from core.models.catalog import Family
from core.settings import WorkerSettings
from core.settings.worker import for_model

if TYPE_CHECKING:
    from worker.registry import LoadedModel

log = logging.getLogger(__name__)

_SD15 = (
    (
        (0.3512, 0.2297, 0.3227),
        (0.3250, 0.4974, 0.2350),
        (-0.2829, 0.1762, 0.2721),
        (-0.2120, -0.2616, -0.7177),
    ),
    (0.0, 0.0, 0.0),
)
_SDXL = (
    (
        (0.3651, 0.4232, 0.4341),
        (-0.2533, -0.0042, 0.1068),
        (0.1076, 0.1111, -0.0362),
        (-0.3165, -0.2492, -0.2188),
    ),
    (0.1084, -0.0175, -0.0011),
)
KNOWN: dict[Family, tuple[tuple[tuple[float, float, float], ...], tuple[float, float, float]]] = {
    Family.SD15: _SD15,
    Family.SD2: _SD15,
    Family.SDXL: _SDXL,
}


class PreviewDecoder(Protocol):
    """Latents (batch × channels × h × w, as the sampler holds them) → a picture of the first image."""

    @property
    def channels(self) -> int: ...

    def image(self, latents: Any) -> Image.Image: ...


@dataclass(frozen=True)
class LatentMap:
    """Latent channels → RGB in [-1, 1]: rgb = latent · weights + bias."""

    weights: Any  # torch.Tensor, channels × 3
    bias: Any  # torch.Tensor, 3

    @property
    def channels(self) -> int:
        return int(self.weights.shape[0])

    def image(self, latents: Any) -> Image.Image:
        """The first image of a batch of latents (batch × channels × h × w) as a latent-sized RGB picture."""
        import torch

        first = latents[0].detach().to(device="cpu", dtype=torch.float32)
        rgb = torch.einsum("chw,ck->hwk", first, self.weights) + self.bias
        pixels = ((rgb + 1.0) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
        return Image.fromarray(pixels, "RGB")


def latent_map(family: Family, vae: Any) -> LatentMap | None:
    """The family's map, fitted from `vae` for the tiny model; None where there is no cheap map."""
    import torch

    if family in KNOWN:
        weights, bias = KNOWN[family]
        return LatentMap(torch.tensor(weights), torch.tensor(bias))
    if family is Family.TINY and vae is not None:
        return fit(vae)
    return None


def fit(vae: Any, side: int = 16, samples: int = 8) -> LatentMap:
    """A least-squares linear map from `vae`'s scaled latents to what its decoder makes of them, fitted on a few
    seeded random latents against their decodings averaged down to the latent grid."""
    import torch

    parameter = next(vae.parameters())
    channels = int(vae.config.latent_channels)
    scale = float(getattr(vae.config, "scaling_factor", 1.0))
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(samples, channels, side, side, generator=generator)
    with torch.inference_mode():
        decoded = vae.decode(latents.to(parameter.device, parameter.dtype) / scale).sample.float().cpu()
    pixels = torch.nn.functional.adaptive_avg_pool2d(decoded, side).clamp(-1, 1)  # samples × 3 × side × side
    design = torch.cat(
        [latents.movedim(1, -1).reshape(-1, channels), torch.ones(latents.numel() // channels, 1)], 1
    )
    solution = torch.linalg.lstsq(design, pixels.movedim(1, -1).reshape(-1, 3)).solution  # (channels + 1) × 3
    return LatentMap(solution[:-1].contiguous(), solution[-1].contiguous())


@dataclass(frozen=True)
class TinyAutoencoder:
    """A tiny autoencoder's decoder (diffusers AutoencoderTiny): the sampler's latents → RGB at 8× their size, or
    from latents first shrunk (area average) so the picture is at most `max_side`: a preview is shown small, and
    the decoder's cost grows with its output (on a CPU, seconds for a 1024-pixel one)."""

    decoder: Any  # diffusers.AutoencoderTiny, on the model's device and in its dtype
    max_side: int | None = None

    @property
    def channels(self) -> int:
        return int(self.decoder.config.latent_channels)

    def image(self, latents: Any) -> Image.Image:
        import torch

        parameter = next(self.decoder.parameters())
        first = latents[:1].detach().to(device=parameter.device, dtype=parameter.dtype)
        height, width = int(first.shape[2]), int(first.shape[3])
        if self.max_side is not None and max(height, width) * 8 > self.max_side:
            scale = self.max_side / (max(height, width) * 8)
            shrunk = (max(1, int(height * scale)), max(1, int(width * scale)))
            first = torch.nn.functional.interpolate(first.float(), size=shrunk, mode="area").to(
                parameter.dtype
            )
        with torch.inference_mode():
            rgb = self.decoder.decode(first).sample[0].float().clamp(-1, 1)  # 3 × H × W in [-1, 1]
        pixels = ((rgb + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return Image.fromarray(pixels, "RGB")


def load_tiny_autoencoder(
    source: str, device: str, dtype: Any, offline: bool, max_side: int | None = None
) -> TinyAutoencoder:
    """An AutoencoderTiny from a Hub repo or a folder, ready on `device` in `dtype` (a torch.dtype), decoding
    pictures of at most `max_side` pixels."""
    from diffusers import AutoencoderTiny

    options: dict[str, Any] = {"torch_dtype": dtype}
    if offline:
        options["local_files_only"] = True
    decoder = AutoencoderTiny.from_pretrained(source, **options).to(device).eval()
    return TinyAutoencoder(decoder, max_side)


class PreviewDecoders:
    """Each warm model's live-preview decoder, made on first use (in the device thread: the tiny model's map is
    fitted on its VAE): the configured tiny autoencoder when it loads, else the family's linear map; None where
    there is neither. A tiny autoencoder that fails to load is logged once and not tried again."""

    def __init__(self, settings: WorkerSettings, offline: bool = False) -> None:
        self.settings = settings
        self.offline = offline
        self._decoders: dict[str, PreviewDecoder | None] = {}
        self._broken: set[str] = set()  # autoencoder sources that failed to load
        self._lock = threading.Lock()

    def get(self, loaded: LoadedModel) -> PreviewDecoder | None:
        name = loaded.spec.name
        with self._lock:
            if name not in self._decoders:
                self._decoders[name] = self._make(loaded)
            return self._decoders[name]

    def forget(self, name: str) -> None:
        """Drop the model's decoder (the model was evicted)."""
        with self._lock:
            self._decoders.pop(name, None)

    def _make(self, loaded: LoadedModel) -> PreviewDecoder | None:
        spec = loaded.spec
        source = for_model(self.settings.live_preview_autoencoder, spec.name, spec.family.value)
        if source is not None and source not in self._broken:
            from worker.device import torch_dtype

            try:
                decoder = load_tiny_autoencoder(
                    source,
                    loaded.device,
                    torch_dtype(loaded.dtype),
                    self.offline,
                    self.settings.live_preview_max_side,
                )
                log.info("model %s: live previews from the tiny autoencoder %s", spec.name, source)
                return decoder
            except Exception as exc:
                self._broken.add(source)
                log.warning(
                    "model %s: the tiny autoencoder %s could not be loaded (%s: %s); live previews use the "
                    "linear latent map",
                    spec.name,
                    source,
                    type(exc).__name__,
                    str(exc)[:200],
                )
        try:
            return latent_map(spec.family, getattr(loaded.text2img, "vae", None))
        except Exception:
            log.exception("model %s: no live previews (its latent map failed)", spec.name)
            return None
