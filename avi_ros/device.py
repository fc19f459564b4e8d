"""Where torch runs: one reading of a device setting for the node, replay, training and evaluation.

A device setting is ``"auto"`` (CUDA when this machine has it, else the CPU) or anything
``torch.device`` understands (``"cpu"``, ``"cuda"``, ``"cuda:1"``). Asking for CUDA where there is
none is an error that says so, never a silent fall back to the CPU.
"""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as torch understands it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{device}' requested but CUDA is not available; use 'cpu' or 'auto'")
    return resolved
