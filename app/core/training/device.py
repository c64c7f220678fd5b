"""Choosing and describing the compute device."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DeviceInfo:
    name: str  # "cpu", "cuda:0", "mps"
    description: str  # e.g. "NVIDIA H100 (79.1 GiB)" or "CPU (2 threads, native bfloat16)"
    memory_bytes: int = 0


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; an unavailable explicit choice is an error."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {spec!r} is not known; valid: auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {spec!r} asked for, but this PyTorch sees no CUDA GPU; use cpu or auto")
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise RuntimeError(f"device {spec!r} asked for, but only {torch.cuda.device_count()} GPU(s) exist")
        return torch.device("cuda", index)
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError("device 'mps' asked for, but Apple's Metal backend is not available; use cpu or auto")
    return device


def available_devices() -> list[DeviceInfo]:
    """Every device this PyTorch can use, GPUs first, the CPU last."""
    found = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            found.append(DeviceInfo(f"cuda:{index}", f"{props.name} ({props.total_memory / 2**30:.1f} GiB)",
                                    props.total_memory))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append(DeviceInfo("mps", "Apple GPU (Metal)"))
    from .precision import cpu_has_native_bfloat16

    bf16 = ", native bfloat16" if cpu_has_native_bfloat16() else ""
    threads = torch.get_num_threads()
    found.append(DeviceInfo("cpu", f"CPU ({threads} thread{'s' * (threads != 1)}{bf16})"))
    return found


def configure_cpu_threads() -> int:
    """Use every core the process may run on (affinity-aware) for intra-op parallelism."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, cores))
    return cores
