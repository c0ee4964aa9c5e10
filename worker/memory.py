"""The memory a loaded model's weights take, and which warm models make room for another within a budget.

A model's size is what its weights hold: the bytes of every parameter and buffer of its pipeline's modules (the
UNet or transformer, the VAE, the text encoders), counted once each however many pipelines share them, and per
device (with model CPU offload the weights wait on the CPU). The budget counts every device: weights that wait on
the CPU still take memory somewhere. Activations are not counted: they come and go with each call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def footprint(pipeline: Any) -> dict[str, int]:
    """Bytes of `pipeline`'s parameters and buffers, by device type ("cpu", "cuda", "mps")."""
    import torch

    seen: set[int] = set()
    sizes: dict[str, int] = {}
    for component in getattr(pipeline, "components", {}).values():
        if not isinstance(component, torch.nn.Module):
            continue
        for tensor in (*component.parameters(), *component.buffers()):
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            device = tensor.device.type
            sizes[device] = sizes.get(device, 0) + tensor.numel() * tensor.element_size()
    return sizes


def total(sizes: Mapping[str, int]) -> int:
    return sum(sizes.values())


def describe(size: int) -> str:
    """Bytes as an operator reads them: 3.2 MiB, 6.9 GiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def evictions(
    resident: Sequence[tuple[str, int]], in_use: Iterable[str], needed: int, budget: int
) -> list[str] | None:
    """Which warm models to drop so `needed` more bytes fit within `budget` (0: no budget): the least recently
    used first (`resident` is ordered least recently used first, with each model's size), never one in use.
    None when even dropping every model not in use leaves too little room."""
    if budget <= 0:
        return []
    busy = set(in_use)
    used = sum(size for _, size in resident)
    chosen: list[str] = []
    for name, size in resident:
        if used + needed <= budget:
            break
        if name not in busy:
            chosen.append(name)
            used -= size
    return chosen if used + needed <= budget else None
