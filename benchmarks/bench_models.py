"""Forward + backward (cross-entropy) time of every registered model on a 1×1×256×256 batch on the CPU,
in the three ways the engine can run it: float32 with the default (contiguous) layout, float32
channels-last, and bfloat16 autocast channels-last (what ``mixed_precision = auto`` picks on a CPU
with native bfloat16; the last column is empty on a CPU without it).

    python benchmarks/bench_models.py [--size 256] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.core.models import MODELS, build_model, count_parameters  # noqa: E402
from app.core.models.unet_valid import nearest_valid_sizes, valid_output_size  # noqa: E402
from app.core.training.precision import cpu_has_native_bfloat16  # noqa: E402

WAYS = (("float32", False, None), ("f32 CL", True, None), ("bf16 CL", True, torch.bfloat16))


def step_ms(name: str, size: int, repeats: int, channels_last: bool, dtype) -> float:
    torch.manual_seed(0)
    model = build_model(name, 1, 2).train()
    x = torch.randn(1, 1, size, size)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, 2, (1, *model.output_size((size, size))))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            out = model(x)
        outs = out if isinstance(out, list) else [out]
        loss = sum(torch.nn.functional.cross_entropy(o.float(), target) for o in outs)
        loss.backward()

    step()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    native = cpu_has_native_bfloat16()
    print(f"torch {torch.__version__}, {args.threads} CPU threads, batch 1×1×{args.size}×{args.size}, default "
          f"parameters; native bfloat16: {'yes' if native else 'no'}; fwd+bwd ms (CL = channels-last)")
    print(f"{'model':<14}{'parameters':>12}" + "".join(f"{way:>10}" for way, *_ in WAYS) + f"{'input':>8}")
    for name in MODELS.names():
        size = args.size
        depth = build_model(name, 1, 2).depth if name == "unet_valid" else None
        if depth is not None and valid_output_size(size, depth) is None:
            size = min(s for s in nearest_valid_sizes(size, depth) if s >= size)
        cells = [step_ms(name, size, args.repeats, cl, dtype) if native or dtype is None else None
                 for _, cl, dtype in WAYS]
        text = "".join(f"{'—':>10}" if ms is None else f"{ms:>10.1f}" for ms in cells)
        print(f"{name:<14}{count_parameters(build_model(name, 1, 2)):>12,}{text}{size:>8}")


if __name__ == "__main__":
    main()
