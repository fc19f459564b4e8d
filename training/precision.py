"""Mixed precision: bf16 autocast on CUDA where supported, else fp16 with a gradient scaler; fp32 on CPU."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The autocast dtype to use, or None for full precision (CPU, or AMP switched off)."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device, enabled: bool) -> AbstractContextManager:
    dtype = amp_dtype(device, enabled)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler:
    """A scaler that is active only for fp16 (bf16 has fp32's range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=amp_dtype(device, enabled) == torch.float16)
