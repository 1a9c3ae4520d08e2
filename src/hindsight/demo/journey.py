"""The demo journey: a recommendation team's week of experiments, replayed for real.

Each step trains a real (small, seeded, NumPy-only) model from
:mod:`hindsight.demo.recsys` inside ``hindsight.experiment`` and lets the ledger
judge it: a collaborative-filtering baseline that misses new users, a deep model
too slow to serve, a config typo that crashes, a teammate repeating that crash
(hindsight surfaces the earlier lesson), a diverging learning rate, and a hybrid
that meets every criterion. Both recommenders are also priced by what their misses cost,
new users against returning ones. Then serving, monitoring, the learning metrics and a
post-mortem draft.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hindsight.demo.evaluation_act import EVAL_CRITERIA, judge_lists, run_evaluation_demo
from hindsight.demo.monitor_act import run_monitor_demo
from hindsight.demo.recsys import (
    CTR_NEW_USERS_TARGET,
    CTR_TARGET,
    LATENCY_P99_MS_TARGET,
    DeepRecommender,
    HybridRecommender,
    MatrixFactorization,
    RecsysData,
    evaluate,
    make_dataset,
)
from hindsight.demo.serving import run_serving_demo
from hindsight.ledger import (
    Experiment,
    FailureReport,
    Ledger,
    draft_postmortem,
    experiment,
    failure_text,
    learning_metrics,
    postmortem_markdown,
)

if TYPE_CHECKING:
    from hindsight.evaluate import Evaluation

__all__ = ["CRITERIA", "DemoResult", "run_demo"]

CRITERIA = {
    "ctr": f">= {CTR_TARGET}",
    "ctr_new_users": f">= {CTR_NEW_USERS_TARGET}",
    "latency_p99_ms": f"<= {LATENCY_P99_MS_TARGET:g}",
}

Say = Callable[[str], None]


@dataclass
class DemoResult:
    """What the demo recorded: experiment ids by step, the post-mortem, the metrics."""

    project: str
    experiments: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    lessons: dict[str, str] = field(default_factory=dict)
    postmortem_id: str | None = None
    postmortem_path: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    serving: dict[str, Any] = field(default_factory=dict)
    monitor: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_demo(
    ledger: Ledger,
    *,
    project: str = "recsys-demo",
    seed: int = 7,
    out_dir: Path | None = None,
    reports_dir: Path | None = None,
    say: Say = print,
) -> DemoResult:
    """Replay the journey into ``ledger``; returns the ids of what it recorded.

    The post-mortem draft is written to ``out_dir``, the evaluation reports to
    ``reports_dir`` (``out_dir`` when not given; nothing is written when both are None).
    """
    started = time.time()
    result = DemoResult(project)
    say(f"Generating a seeded click dataset (seed {seed}) …")
    data = make_dataset(seed=seed)
    sizes = data.summary()
    say(
        f"  {sizes['users']} users, {sizes['new_users']} cold-start users, {sizes['items']} items, "
        f"{sizes['train_interactions']} training clicks"
    )

    judged: dict[str, tuple[Evaluation, Experiment]] = {}

    def run(
        key: str, model: Any, config: Mapping[str, Any], *, by_cost: bool = False, **meta: Any
    ) -> Experiment:
        with experiment(
            meta.pop("name"),
            config={**config, "seed": seed, "dataset": sizes},
            criteria={**CRITERIA, **EVAL_CRITERIA} if by_cost else CRITERIA,
            project=project,
            ledger=ledger,
            quiet=True,
            **meta,
        ) as exp:
            model.fit(data, progress=lambda step, m: exp.log_metrics(m, step=step), **config)
            exp.log_metrics(evaluate(model, data, k=10))
            if by_cost:  # priced per user, by new and returning users (the evaluation act)
                ev = judge_lists(model, data)
                ev.log_to(exp)
                judged[exp.name] = (ev, exp)
        result.experiments[key] = exp.id
        return exp

    # 1. Collaborative filtering: good on known users, blind to new ones.
    say("\n[1] cf-baseline: implicit ALS on click history")
    base_model = MatrixFactorization()
    base = run(
        "baseline",
        base_model,
        {"factors": 32, "iterations": 8, "reg": 1.0},
        by_cost=True,
        name="cf-baseline",
        hypothesis="Collaborative filtering on click history reaches CTR 0.60 for every user "
        "within a 50 ms serving budget.",
        approach="Implicit-feedback ALS, popularity fallback for users without history.",
        tags=["collaborative-filtering", "als"],
    )
    _report(ledger, base, say)
    lesson_cold = base.lesson(
        "Pure collaborative filtering cannot rank for cold-start users: they have no factors. "
        "Use side features for new users.",
        tags=["cold-start"],
    )
    result.lessons["cold_start"] = lesson_cold.id
    base.next_step("Try a deep model over user and item side features so new users get scores.")

    # 2. A deep ranker: accurate for everyone, too slow to serve.
    say("\n[2] deep-ranker: a wide two-tower MLP over side features")
    deep = run(
        "deep",
        DeepRecommender(),
        {"embedding_dim": 32, "hidden": [2048, 1024], "epochs": 4},
        name="deep-ranker",
        hypothesis="A deep ranker over side features fixes cold start without losing CTR.",
        approach="Two-tower MLP (2048-1024) over id embeddings and side features.",
        tags=["deep", "side-features"],
        builds_on=[base.id],
        applies=[lesson_cold.id],
    )
    _report(ledger, deep, say)
    lesson_latency = deep.lesson(
        "Scoring every candidate through a wide MLP per request blows the 50 ms p99 budget; "
        "budget serving cost before training.",
        tags=["latency", "serving"],
    )
    result.lessons["latency"] = lesson_latency.id
    deep.next_step("Keep MF for known users and map side features into factor space for new ones.")

    # 3. A config typo crashes the next deep run; diagnosed as a shape mismatch.
    say("\n[3] deep-ranker-v2: a bigger embedding (config typo)")
    crash, crash_failure = _crashing_run(
        ledger,
        data,
        project,
        seed,
        say,
        name="deep-ranker-v2",
        config={"embedding_dim": 48, "hidden": [2048, 1024], "epochs": 4},
        builds_on=[deep.id],
    )
    result.experiments["crash"] = crash.id
    result.failures["crash"] = crash_failure.failure.id
    lesson_shape = crash.lesson(
        "embedding_dim must equal the 32-d pretrained side-feature width the user tower "
        "concatenates; check shapes when the config is loaded.",
        tags=["config", "shapes"],
    )
    result.lessons["shapes"] = lesson_shape.id

    # 4. A teammate repeats the same mistake: hindsight surfaces the lesson.
    say("\n[4] deep-ranker-v2 again, by a teammate with embedding_dim=64")
    repeat, repeat_failure = _crashing_run(
        ledger,
        data,
        project,
        seed,
        say,
        name="deep-ranker-v2",
        config={"embedding_dim": 64, "hidden": [2048, 1024], "epochs": 4},
        builds_on=[deep.id],
    )
    result.experiments["repeat"] = repeat.id
    result.failures["repeat"] = repeat_failure.failure.id

    # 5. A learning-rate sweep diverges.
    say("\n[5] deep-ranker-lr-sweep: lr=5.0")
    diverge, diverge_failure = _crashing_run(
        ledger,
        data,
        project,
        seed,
        say,
        name="deep-ranker-lr-sweep",
        config={"embedding_dim": 32, "hidden": [2048, 1024], "epochs": 4, "lr": 5.0},
        builds_on=[deep.id],
    )
    result.experiments["diverge"] = diverge.id
    result.failures["diverge"] = diverge_failure.failure.id

    # 6. A longer run without id dropout overfits; the training guard stops it early.
    say("\n[6] deep-ranker-long: a narrower tower trained 30 epochs, no id dropout")
    long_exp, long_failure, long_model = _guarded_run(
        ledger,
        data,
        project,
        seed,
        say,
        builds_on=[deep.id],
        config={
            "embedding_dim": 32,
            "hidden": [512, 256],
            "epochs": 30,
            "lr": 3e-3,
            "embedding_dropout": 0.0,
        },
    )
    result.experiments["guarded"] = long_exp.id
    result.failures["guarded"] = long_failure.failure.id
    stopped = long_model.stopped
    if stopped is None:
        raise RuntimeError("demo step deep-ranker-long was expected to be stopped by the guard")
    say(
        f"  stopped at epoch {stopped.step // _steps_per_epoch(data)} of 30; weights of epoch "
        f"{long_model.best_epoch} (best validation loss) restored"
    )
    lesson_overfit = long_exp.lesson(
        "Without id-embedding dropout the ranker memorises training clicks within a few "
        "epochs; keep dropout and stop on validation loss.",
        tags=["overfitting", "training"],
    )
    result.lessons["overfitting"] = lesson_overfit.id

    # 7. The hybrid applies the lessons and meets every criterion.
    say("\n[7] hybrid: MF for known users, ridge map from side features for new users")
    hybrid_model = HybridRecommender()
    hybrid = run(
        "hybrid",
        hybrid_model,
        {"factors": 32, "iterations": 8, "reg": 1.0, "ridge": 10.0},
        by_cost=True,
        name="hybrid-recommender",
        hypothesis="MF plus a feature-to-factor map serves new users within 50 ms.",
        approach="ALS factors; ridge regression from side features into factor space.",
        tags=["collaborative-filtering", "hybrid", "cold-start-mapping"],
        builds_on=[base.id, deep.id],
        applies=[lesson_cold.id, lesson_latency.id, lesson_shape.id],
    )
    _report(ledger, hybrid, say)

    # 8. Both judged by what their misses cost, by slice: the new users are where CF fails.
    result.evaluation = run_evaluation_demo(
        judged, out_dir=reports_dir or out_dir, say=say
    ).to_dict()

    # 9-10. The hybrid goes live behind a guarded service; a worse retrain is canaried.
    served = run_serving_demo(
        ledger, data, hybrid_model, base_model, base_model, project=project, seed=seed, say=say
    )
    result.serving = served.to_dict()
    if served.canary_experiment:
        result.experiments["canary"] = served.canary_experiment
    if served.canary_failure:
        result.failures["canary"] = served.canary_failure

    # 11. A month later a monitor catches the recommender reinforcing itself.
    watched = run_monitor_demo(ledger, project=project, say=say)
    result.monitor = watched.to_dict()
    if watched.incident:
        result.failures["monitor"] = watched.incident

    metrics = learning_metrics(ledger, project=project, since=started - 1)
    result.metrics = metrics.to_dict()
    say("\nLearning metrics for this journey:")
    say(
        f"  velocity {metrics.velocity_per_week:.1f}/week · median recovery "
        f"{(metrics.recovery_hours_median or 0) * 3600:.1f} s · lessons applied "
        f"{metrics.lessons_applied}/{metrics.lessons} · repeat failures "
        f"{metrics.repeat_failures}/{metrics.failures} · innovation "
        f"{metrics.innovative_experiments}/{metrics.experiments} · efficiency "
        f"{metrics.learning_efficiency:.2f}"
    )

    pm = draft_postmortem(ledger, result.failures["repeat"])
    result.postmortem_id = pm.id
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{pm.id}.md"
        path.write_text(postmortem_markdown(pm), encoding="utf-8")
        result.postmortem_path = str(path)
        say(f"\nPost-mortem draft for the repeated crash: {path}")
    return result


def _crashing_run(
    ledger: Ledger,
    data: RecsysData,
    project: str,
    seed: int,
    say: Say,
    *,
    name: str,
    config: dict[str, Any],
    builds_on: list[str],
) -> tuple[Experiment, FailureReport]:
    exp = experiment(
        name,
        config={**config, "seed": seed},
        criteria=CRITERIA,
        project=project,
        ledger=ledger,
        quiet=True,
        tags=["deep", "side-features"],
        builds_on=builds_on,
        hypothesis="A wider embedding improves the deep ranker's CTR.",
    )
    try:
        with exp:
            DeepRecommender().fit(
                data, progress=lambda step, m: exp.log_metrics(m, step=step), **config
            )
    except (ValueError, FloatingPointError):
        # Expected: this step of the story crashes; the ledger has recorded it.
        pass
    if exp.failure is None:
        raise RuntimeError(f"demo step {name} was expected to crash but finished")
    say(failure_text(exp.failure))
    return exp, exp.failure


def _steps_per_epoch(data: RecsysData) -> int:
    return -(-data.n_users // 128)  # fit()'s default batch_users


def _guarded_run(
    ledger: Ledger,
    data: RecsysData,
    project: str,
    seed: int,
    say: Say,
    *,
    config: dict[str, Any],
    builds_on: list[str],
) -> tuple[Experiment, FailureReport, DeepRecommender]:
    model = DeepRecommender()
    # The failure report below says it all; keep the guard's own log line out of the story.
    guard_log = logging.getLogger("hindsight.training")
    level = guard_log.level
    guard_log.setLevel(logging.ERROR)
    try:
        exp = _guarded_fit(model, ledger, data, project, seed, config=config, builds_on=builds_on)
    finally:
        guard_log.setLevel(level)
    if exp.failure is None:
        raise RuntimeError("demo step deep-ranker-long was expected to be stopped by the guard")
    say(failure_text(exp.failure))
    return exp, exp.failure, model


def _guarded_fit(
    model: DeepRecommender,
    ledger: Ledger,
    data: RecsysData,
    project: str,
    seed: int,
    *,
    config: dict[str, Any],
    builds_on: list[str],
) -> Experiment:
    from hindsight.training import LossExplosion, NonFiniteLoss, Overfitting, TrainingGuard

    with experiment(
        "deep-ranker-long",
        config={**config, "seed": seed},
        criteria=CRITERIA,
        project=project,
        ledger=ledger,
        quiet=True,
        tags=["deep", "side-features", "training-guard"],
        builds_on=builds_on,
        hypothesis="Training longer, with every user's id embedding, raises CTR.",
        approach="Narrow two-tower MLP (512-256), 30 epochs, no embedding dropout, guarded.",
    ) as exp:
        # Validation losses arrive once an epoch: judge the trend over 5 of them.
        guard = TrainingGuard(
            [NonFiniteLoss(), LossExplosion(), Overfitting(window=5, severity="stop")],
            monitor="val_loss",
            experiment=exp,
        )
        model.fit(
            data, progress=lambda step, m: exp.log_metrics(m, step=step), guard=guard, **config
        )
        exp.log_metrics(evaluate(model, data, k=10))
    return exp


def _report(ledger: Ledger, exp: Experiment, say: Say) -> None:
    r = exp.record
    say(f"  {r.id}: {r.status}, outcome {r.outcome} — {r.outcome_reason}")
    shown = ("ctr", "ctr_new_users", "latency_p99_ms")
    say("  " + ", ".join(f"{k}={r.summary[k]:.3f}" for k in shown if k in r.summary))
