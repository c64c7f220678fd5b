"""Multi-process training with DistributedDataParallel, as started by ``torchrun``.

``torchrun --nproc_per_node N -m app train ...`` sets RANK, WORLD_SIZE and LOCAL_RANK; each
process trains on every N-th patch, gradients are averaged (NCCL on GPUs, gloo on the CPU),
rank 0 alone validates and writes the run folder, and all ranks agree every step on whether
to stop.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "DistributedContext":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def start(self, device: torch.device) -> torch.device:
        """Join the process group; returns this rank's device."""
        if not self.active:
            return device
        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return device

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        if not self.active:
            return model
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank if ``flag`` is True on any rank."""
        if not self.active:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def max_pair(self, a: float, b: float, device: torch.device) -> tuple[float, float]:
        """Element-wise maximum over ranks of two numbers (one collective)."""
        if not self.active:
            return a, b
        value = torch.tensor([a, b], device=device, dtype=torch.float64 if device.type != "mps" else torch.float32)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return float(value[0]), float(value[1])

    def mean(self, value: float, device: torch.device) -> float:
        if not self.active:
            return value
        tensor = torch.tensor([value], device=device, dtype=torch.float64 if device.type != "mps" else torch.float32)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def finish(self, clean: bool = True) -> None:
        """Leave the process group. After a clean run every rank first meets at a barrier, so
        no rank tears its gloo connections down while a peer is still using them (that aborts
        the peer with "terminate called without an active exception"); after a failure the
        peers may never arrive, so there is no barrier."""
        if not (self.active and dist.is_initialized()):
            return
        if clean:
            dist.barrier()
            self._all_past_barrier()
        dist.destroy_process_group()

    def _all_past_barrier(self, timeout: float = 30.0) -> None:
        """Wait (at most ``timeout`` s) until every rank has returned from the last barrier.
        A rank can return from a gloo barrier while a peer is still receiving its last
        message; tearing down then aborted that peer (seen once in many runs). The rendezvous
        store is not gloo, so counting arrivals there closes the gap."""
        store = dist.distributed_c10d._get_default_store()
        deadline = time.monotonic() + timeout
        arrived = store.add("segstudio/past_final_barrier", 1)
        while arrived < self.world and time.monotonic() < deadline:
            time.sleep(0.005)
            arrived = store.add("segstudio/past_final_barrier", 0)


def recount_steps(epoch: int, step_in_epoch: int, saved_world: int, world: int, batch_size: int,
                  steps_per_epoch: int) -> tuple[int, int]:
    """(step in epoch, global step) of a run saved by ``saved_world`` processes, counted in the
    steps of ``world`` processes: the processes share an epoch's patches, so an epoch has more
    steps on fewer of them, and a schedule counted in the old steps would be at the wrong place."""
    seen = step_in_epoch * batch_size * saved_world  # patches of the current epoch already trained
    step = min(steps_per_epoch, math.ceil(seen / (batch_size * world)))
    return step, epoch * steps_per_epoch + step
