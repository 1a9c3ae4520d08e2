"""Training-guard overhead on a small MLP's training step: watched vs plain PyTorch.

The same MLP (64 -> 256 -> 256 -> 10, ReLU, SGD, batch 128, CPU) trains in one process:
a plain loop (zero_grad, forward, loss, backward, step) and the same loop fed to a
``TrainingGuard`` through ``watch(model, guard, activations=True, optimizer=opt)``
(per-layer gradient norms, dead-unit shares, loss, learning rate, throughput, memory),
with activation statistics every step (``every=1``) and every 10th step (``every=10``).
Blocks of steps alternate between the variants (interleaved repetitions, so drift in
the machine hits all alike); the median per-step time of each variant is reported.
Target: the guard adds <= 2% to the step with ``every=1``.

Run: .venv/bin/python benchmarks/bench_guard_overhead.py [--json] [--quick] [--repeat N]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch
from torch import nn

from _common import Target, median, parse_args, report
from hindsight.training import TrainingGuard
from hindsight.training.integrations.torch import TorchWatch, watch

OVERHEAD_TARGET = 0.02
BATCH = 128
WIDTH = 256


def make_model(seed: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(64, WIDTH), nn.ReLU(), nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 10)
    )
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def step_fn(
    model: nn.Module, opt: torch.optim.Optimizer, w: TorchWatch | None, x: torch.Tensor,
    y: torch.Tensor,
) -> Callable[[int], None]:
    loss_fn = nn.CrossEntropyLoss()

    def one(step: int) -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if w is not None:
            w.step(step, loss, batch_size=BATCH)
        else:
            loss.item()  # the plain loop reads its loss too (one sync, as the watch does)

    return one


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    logging.getLogger("hindsight.training").setLevel(logging.CRITICAL)
    torch.set_num_threads(1)
    reps = args.repeat or (5 if args.quick else 21)
    block = 50 if args.quick else 100
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, 64, generator=gen)
    y = torch.randint(0, 10, (BATCH,), generator=gen)

    variants: dict[str, Callable[[int], None]] = {}
    counters: dict[str, int] = {}
    model, opt = make_model(0)
    variants["plain"] = step_fn(model, opt, None, x, y)
    for every in (1, 10):
        m, o = make_model(0)
        # No detector history is needed beyond a window; a fresh guard per variant.
        w = watch(m, TrainingGuard(window=256), activations=True, every=every, optimizer=o)
        variants[f"every={every}"] = step_fn(m, o, w, x, y)
    for name in variants:
        counters[name] = 0
        for _ in range(20):  # warm-up
            variants[name](counters[name])
            counters[name] += 1

    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(reps):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            fn = variants[name]
            t0 = time.perf_counter()
            for _ in range(block):
                fn(counters[name])
                counters[name] += 1
            times[name].append((time.perf_counter() - t0) / block)

    plain = median(times["plain"])
    targets = []
    info: dict[str, object] = {
        "model": f"MLP 64-{WIDTH}-{WIDTH}-10 ReLU, SGD momentum, batch {BATCH}, CPU, 1 thread",
        "repetitions": reps,
        "steps_per_block": block,
        "plain_step_us": round(plain * 1e6, 1),
    }
    for name in ("every=1", "every=10"):
        t = median(times[name])
        overhead = t / plain - 1.0
        info[f"watched_{name}_step_us"] = round(t * 1e6, 1)
        info[f"overhead_{name}_us"] = round((t - plain) * 1e6, 1)
        targets.append(Target(
            name=f"guard overhead per training step, watch({name})", value=overhead * 100,
            unit="%", goal=f"<= {OVERHEAD_TARGET:.0%}" if name == "every=1" else "(info)",
            met=overhead <= OVERHEAD_TARGET if name == "every=1" else True,
        ))
        # The guard's cost is a fixed amount per step: the step it would be 2% of.
        info[f"step_ms_where_{name}_is_2%"] = round((t - plain) / OVERHEAD_TARGET * 1e3, 1)
    report("training-guard overhead on a small MLP step", targets, info, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
