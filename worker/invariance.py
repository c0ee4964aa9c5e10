"""Batch invariance: on a CPU worker an image's bytes do not depend on the batch it was rendered in.

Why batches change pixels at all: the kernels that do a model's sums choose their blocking, and so the order of
their additions, by the shape they are given. A batched call hands every convolution and matrix product more rows
than the same request rendered alone, oneDNN and MKL pick another kernel or split, and the floats move by ~1e-6 —
enough to tip a value lying on a rounding edge one step of 8-bit colour (measured on the tiny model: 0–2 values
of 12 288 per image, in batches of 2, 4 and 8). Traced op by op (forward hooks comparing row i of a batched
activation with the same module run on row i alone, then batch against batch): 1×1 convolutions (at one torch
thread torch sends a batch of 16 rows or more through oneDNN and fewer through its own GEMM path — hence the
old finding that batches of 2 and 4 images matched and 8, i.e. 16 rows with guidance, did not), the Linears
(MKL picks another GEMM by row count: the time embeddings' 2-D ones on the tiny model, the token projections too
on the real-size SD 1.5 UNet), any convolution of a single row (another path again), the VAE decoder, and the
text encoder (even its element-wise activation: a row of 77 × 37 values does not start on a vector boundary
inside a batch, so other elements fall to the scalar tail, whose exp rounds differently).

What `rows()` does, for one pipeline call, the same whether it renders one image or a batch:
- inside the UNet/transformer, a thread-local TorchFunctionMode (so it also catches LoRA layers and functional
  calls) runs every linear layer one batch row at a time and every convolution in groups of 2 to 8 rows;
- each text encoder encodes one prompt at a time and the VAE decodes one image at a time.
Attention (SDPA), GroupNorm and LayerNorm compute each row on its own already and are left whole.

Guaranteed: on this CPU with these kernels (torch 2.14's CPU oneDNN/MKL builds), at 1 and 2 torch threads, a
batch of 2, 4 or 8 images of the tiny model gives the same bytes as each image rendered alone
(tests/worker/test_batching.py), and the same seed gives the same bytes run to run; the real-size SD 1.5 UNet
(random weights, 16 rows) was checked bitwise once by hand at one thread. Not guaranteed: another CPU (AVX2 vs
AVX-512 kernels round differently), another torch or oneDNN version, other sizes or models not checked, or a
GPU — CUDA kernels also choose by shape, not checked there — so the mode is for CPU workers only, and off under
torch.compile (its generated kernels are specialised to the batch shape). A single render's pixels change (by
~1e-6 before rounding, deterministically) compared with the mode off.
Cost: bench/batch_invariance.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from core.settings import WorkerSettings
from worker.batching import batch_size

TEXT_ENCODERS = ("text_encoder", "text_encoder_2", "text_encoder_3")
DENOISERS = ("unet", "transformer")
CONV_ROWS = 8  # below 16: one kernel for every group (see _row_mode)


def active(settings: WorkerSettings, device: str, model: str) -> bool:
    """Whether this worker renders `model` batch-invariantly: asked for, on a CPU, not compiled, and micro-batching
    on for the model. Without batching no request shares a call with another's, so its bytes depend on itself
    alone, and the kernels' cost (bench/batch_invariance.py) would buy nothing."""
    return (
        settings.batch_invariant and device == "cpu" and not settings.compile and _batching(settings, model)
    )


def _batching(settings: WorkerSettings, model: str | None = None) -> bool:
    if model is not None:
        return batch_size(settings, model) > 1
    return settings.batch_max_images > 1 or any(
        size > 1 for size in settings.batch_max_images_per_model.values()
    )


def describe(settings: WorkerSettings, device: str) -> str | None:
    """The start-up line's word for the switch (None when it was not asked for, or nothing is micro-batched)."""
    if not settings.batch_invariant or not _batching(settings):
        return None
    if device == "cpu" and not settings.compile:
        return "batch-invariant kernels"
    reason = "torch.compile is on" if settings.compile else f"it is for CPU workers, not {device}"
    return f"batch invariance off ({reason})"


@contextmanager
def rows(pipeline: Any) -> Iterator[None]:
    """For one call of `pipeline` in this thread: every image's sums done as if it were rendered alone."""
    with ExitStack() as scope:
        for name in TEXT_ENCODERS:
            encoder = getattr(pipeline, name, None)
            if encoder is not None:
                scope.enter_context(_replaced(encoder, "forward", _one_row_at_a_time))
        vae = getattr(pipeline, "vae", None)
        if vae is not None:
            scope.enter_context(_replaced(vae, "decode", _one_row_at_a_time))
        for name in DENOISERS:
            denoiser = getattr(pipeline, name, None)
            if denoiser is not None:
                scope.enter_context(_replaced(denoiser, "forward", _in_fixed_shapes))
        yield


def _row_mode() -> Any:
    """A TorchFunctionMode (thread-local) that gives the shape-sensitive kernels the shapes a lone image gives
    them: linear layers one row (one image's tokens) at a time (MKL picks another GEMM by row count: the tiny
    model's 2-D time embeddings differ, and the real-size SD 1.5 UNet's token projections too), convolutions in
    groups of 2 to 8 rows (torch sends a batch of 16 or more through oneDNN at one thread, fewer through its own
    GEMM path, and one row through yet another)."""
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    convolutions = {F.conv1d, F.conv2d, F.conv3d, torch.conv1d, torch.conv2d, torch.conv3d}

    class FixedShapes(TorchFunctionMode):
        def __torch_function__(
            self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
        ) -> Any:
            kwargs = kwargs or {}
            if not args or not isinstance(args[0], torch.Tensor) or args[0].dim() < 2:
                return func(*args, **kwargs)
            x, rest = args[0], args[1:]
            if func is F.linear and x.shape[0] > 1:
                return torch.cat([func(x[i : i + 1], *rest, **kwargs) for i in range(x.shape[0])])
            if func in convolutions and (x.shape[0] == 1 or x.shape[0] > CONV_ROWS):
                return torch.cat([_conv_group(func, group, rest, kwargs) for group in x.split(CONV_ROWS)])
            return func(*args, **kwargs)

    return FixedShapes()


def _conv_group(func: Any, group: Any, rest: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A convolution of 2 to CONV_ROWS rows; a single row is run beside a copy of itself."""
    import torch

    if group.shape[0] > 1:
        return func(group, *rest, **kwargs)
    return func(torch.cat([group, group]), *rest, **kwargs)[:1]


def _in_fixed_shapes(original: Callable[..., Any]) -> Callable[..., Any]:
    def fixed(*args: Any, **kwargs: Any) -> Any:
        with _row_mode():
            return original(*args, **kwargs)

    return fixed


def _batched(value: Any) -> bool:
    import torch

    return isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[0] > 1


def _row(value: Any, count: int, index: int) -> Any:
    """Row `index` of every tensor (and list of generators) with `count` rows in `value`; the rest as it is."""
    import torch

    if isinstance(value, torch.Tensor):
        return value[index : index + 1] if value.dim() > 0 and value.shape[0] == count else value
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_row(item, count, index) for item in value)
    if isinstance(value, list):
        if len(value) == count and all(isinstance(item, torch.Generator) for item in value):
            return [value[index]]
        return [_row(item, count, index) for item in value]
    return value


def _merge(parts: list[Any]) -> Any:
    """The outputs of the rows as one batched output: tensors concatenated, containers field by field."""
    import torch

    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts)
    if isinstance(first, dict):  # transformers' and diffusers' ModelOutput
        return type(first)(**{key: _merge([part[key] for part in parts]) for key in first})
    if isinstance(first, tuple | list):
        return type(first)(_merge(list(items)) for items in zip(*parts, strict=True))
    return first


def _one_row_at_a_time(original: Callable[..., Any]) -> Callable[..., Any]:
    """`original`, run once per row of its first batched tensor argument, its outputs merged."""

    def per_row(*args: Any, **kwargs: Any) -> Any:
        first = next((v for v in (*args, *kwargs.values()) if _batched(v)), None)
        if first is None:
            return original(*args, **kwargs)
        count = first.shape[0]
        return _merge(
            [
                original(*_row(args, count, i), **{k: _row(v, count, i) for k, v in kwargs.items()})
                for i in range(count)
            ]
        )

    return per_row


@contextmanager
def _replaced(
    module: Any, method: str, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> Iterator[None]:
    """`module.method` replaced by `wrap(module.method)` for the duration of the block."""
    own = module.__dict__.get(method)  # e.g. an offloading hook's wrapper: put back exactly as it was
    setattr(module, method, wrap(getattr(module, method)))
    try:
        yield
    finally:
        if own is None:
            delattr(module, method)
        else:
            setattr(module, method, own)
