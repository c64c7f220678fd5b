"""Which arithmetic a device trains and predicts in: the ``training.mixed_precision`` setting.

* ``auto``: float16 autocast (with gradient scaling) on a CUDA GPU; bfloat16 autocast on a CPU
  that computes bfloat16 natively (AVX-512 BF16 or AMX: recent Intel Xeon, AMD Zen 4 and
  later), where convolutions run about twice as fast; float32 everywhere else.
* ``on``: as ``auto``, and bfloat16 on any CPU (slower than float32 where it is emulated).
* ``off``: float32 throughout.

Weights, optimizer state and losses stay float32 in every case (losses leave autocast).
Alongside it, :func:`prefers_channels_last` says where the channels-last memory layout makes
convolutions faster: on CUDA and on the CPU (oneDNN), about 1.1–1.4× in float32 here.
"""

from __future__ import annotations

import os

import torch


def cpu_has_native_bfloat16() -> bool:
    """True when this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX tiles).

    ``SEGSTUDIO_CPU_BFLOAT16=0`` (or ``1``) overrides the probe: the test suite sets 0 so that
    ``auto`` means float32 on every CPU and tiny trained models behave alike on every machine."""
    forced = os.environ.get("SEGSTUDIO_CPU_BFLOAT16", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for probe in probes:
        check = getattr(torch.cpu, probe, None)
        try:
            if check is not None and check():
                return True
        except (RuntimeError, AttributeError):  # a private probe that changed: assume no
            continue
    return False


def autocast_dtype(device: torch.device | str, mode: str) -> torch.dtype | None:
    """The autocast dtype for ``device`` under ``mode`` (auto, on, off); None = float32."""
    kind = torch.device(device).type
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"mixed precision {mode!r} is not known; valid: auto, on, off")
    if mode == "off":
        return None
    if kind == "cuda":
        return torch.float16
    if kind == "cpu" and (mode == "on" or cpu_has_native_bfloat16()):
        return torch.bfloat16
    return None


def describe(dtype: torch.dtype | None) -> str:
    """A word for the log: float16, bfloat16 or float32."""
    return str(dtype).removeprefix("torch.") if dtype is not None else "float32"


def prefers_channels_last(device: torch.device | str) -> bool:
    """Whether convolutions on ``device`` run faster with channels-last tensors."""
    return torch.device(device).type in ("cuda", "cpu")
