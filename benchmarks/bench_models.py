"""Forward + backward (cross-entropy) time of every registered model on a 1×1×256×256 batch on the CPU.

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} CPU threads, batch 1×1×{args.size}×{args.size}, default parameters")
    print(f"{'model':<14}{'parameters':>12}{'fwd+bwd ms':>12}{'input':>8}")
    for name in MODELS.names():
        model = build_model(name, 1, 2).train()
        size = args.size
        if name == "unet_valid" and valid_output_size(size, model.depth) is None:
            size = min(s for s in nearest_valid_sizes(size, model.depth) if s >= size)
        x = torch.randn(1, 1, size, size)
        out_size = model.output_size((size, size))
        target = torch.randint(0, 2, (1, *out_size))
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

        def step():
            optimizer.zero_grad(set_to_none=True)
            out = model(x)
            outs = out if isinstance(out, list) else [out]
            loss = sum(torch.nn.functional.cross_entropy(o, target) for o in outs)
            loss.backward()

        step()
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - start)
        print(f"{name:<14}{count_parameters(model):>12,}{best * 1e3:>12.1f}{size:>8}")


if __name__ == "__main__":
    main()
