"""Training-guard overhead on a small MLP's training step: watched vs plain PyTorch.

The small MLP is the network of PyTorch's own quickstart tutorial: 784 -> 512 -> 512 -> 10
with ReLU, trained with SGD (momentum) on MNIST-shaped batches of 64 (random inputs, so
nothing is downloaded), on the CPU with one thread. One loop is plain PyTorch
(zero_grad, forward, loss, backward, step, reading the loss); the same loop is fed to a
``TrainingGuard`` through ``watch(model, guard, optimizer=opt)`` with its defaults:
gradient-norm and activation hooks on, the first 100 steps sampled one by one, then one
step in 100 (or one a second), the losses of every step checked. The steady state after
the first 150 steps is timed; the one-time extra cost of those first steps is reported.
Both variants train the same model in alternating blocks (so drift in the machine, and
where the model happens to sit in memory, hit both alike); the median per-step time of
each and the median ratio of adjacent blocks are reported. Target: the guard adds <= 2%
to the step.

For context (not gated) the same is measured on a tiny MLP (64 -> 256 -> 256 -> 10,
batch 128), whose ~1 ms step makes any per-step Python work show.

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
WARMUP_STEPS = 150  # the watch samples each of its first 100 steps (warmup=100)
SMALL = (784, 512, 64)  # inputs, hidden width, batch: PyTorch's quickstart MLP on MNIST
TINY = (64, 256, 128)


def make_model(shape: tuple[int, int, int], seed: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    n_in, width, _ = shape
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(n_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
        nn.Linear(width, 10),
    )
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def step_fn(
    model: nn.Module, opt: torch.optim.Optimizer, w: TorchWatch | None, x: torch.Tensor,
    y: torch.Tensor,
) -> Callable[[int], None]:
    loss_fn = nn.CrossEntropyLoss()
    batch = len(x)

    def one(step: int) -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if w is not None:
            w.step(step, loss, batch_size=batch)
        else:
            loss.item()  # a plain loop reads its loss too

    return one


def measure(
    shape: tuple[int, int, int], watch_kwargs: dict[str, object], reps: int, block: int
) -> tuple[float, float, float, float]:
    """Median seconds per step, plain and watched, on ONE model; the median paired ratio;
    and the extra seconds of the watch's dense first steps.

    Both variants train the same model and optimizer in alternating blocks, so memory
    placement (which alone moves a step by several per cent between two copies of a
    model) cannot pass for overhead. A watched block only hands over to a plain one once
    the watch has no hooks on the model (its next step is not sampled).
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape[2], shape[0], generator=gen)
    y = torch.randint(0, 10, (shape[2],), generator=gen)
    model, opt = make_model(shape, 0)
    w = watch(model, TrainingGuard(experiment=None, alerts=None), optimizer=opt, **watch_kwargs)  # type: ignore[arg-type]
    plain_fn = step_fn(model, opt, None, x, y)
    watched_fn = step_fn(model, opt, w, x, y)
    step = 0

    def run(fn: Callable[[int], None], n: int) -> float:
        nonlocal step
        t0 = time.perf_counter()
        for _ in range(n):
            fn(step)
            step += 1
        return time.perf_counter() - t0

    for _ in range(20):  # allocator and caches warm, before the watch's first step
        plain_fn(-1)
    plain_warm = run(plain_fn, WARMUP_STEPS)
    watched_warm = run(watched_fn, WARMUP_STEPS)  # the watch's dense first steps
    times: dict[str, list[float]] = {"plain": [], "watched": []}
    for r in range(reps):
        for name in ("plain", "watched") if r % 2 == 0 else ("watched", "plain"):
            if name == "plain":
                times[name].append(run(plain_fn, block) / block)
                continue
            n, t = block, run(watched_fn, block)
            while w.next_step_sampled:  # end the block with the hooks off
                t += run(watched_fn, 1)
                n += 1
            times[name].append(t / n)
    w.remove()
    # Each repetition pairs a plain block with the watched block next to it: the median
    # of those ratios is robust to the machine speeding up or slowing down over the run.
    ratio = median([b / a for a, b in zip(times["plain"], times["watched"], strict=True)])
    return median(times["plain"]), median(times["watched"]), ratio, watched_warm - plain_warm


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    logging.getLogger("hindsight.training").setLevel(logging.CRITICAL)
    torch.set_num_threads(1)
    reps = args.repeat or (5 if args.quick else 41)
    block = 50 if args.quick else 200  # a block spans several sampled steps
    runs = {
        "small MLP, watch() defaults": (SMALL, {}, True),
        "tiny MLP, watch() defaults": (TINY, {}, False),
    }
    targets = []
    info: dict[str, object] = {
        "small_mlp": "784-512-512-10 ReLU, SGD momentum, batch 64, CPU, 1 thread",
        "tiny_mlp": "64-256-256-10 ReLU, SGD momentum, batch 128, CPU, 1 thread",
        "repetitions": reps,
        "steps_per_block": block,
    }
    for label, (shape, kwargs, gated) in runs.items():
        plain, watched, ratio, warm_extra = measure(shape, kwargs, reps, block)
        overhead = ratio - 1.0
        info[f"{label}: plain step us"] = round(plain * 1e6, 1)
        info[f"{label}: watched step us"] = round(watched * 1e6, 1)
        info[f"{label}: first {WARMUP_STEPS} steps, extra s"] = round(warm_extra, 3)
        targets.append(Target(
            name=f"guard overhead per step, {label}", value=overhead * 100, unit="%",
            goal=f"<= {OVERHEAD_TARGET:.0%}" if gated else "(info)",
            met=overhead <= OVERHEAD_TARGET if gated else True,
        ))
    report("training-guard overhead on a small MLP step", targets, info, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
