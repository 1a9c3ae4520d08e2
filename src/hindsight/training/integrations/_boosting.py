"""What the XGBoost and LightGBM integrations share: a guard tuned to boosting curves and
the choice of which evaluation curve is the training loss and which the validation loss.

Nothing here imports a boosting library, so each integration only needs its own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from hindsight.errors import ConfigError
from hindsight.training.detectors import (
    LossExplosion,
    LossSpike,
    NoLearning,
    NonFiniteLoss,
    Oscillation,
    Overfitting,
    Plateau,
)
from hindsight.training.guard import TrainingGuard, Verdict

__all__ = ["CurveFeed", "EvalPoint", "FeedResults", "default_guard", "guess_train"]

logger = logging.getLogger("hindsight.training")

#: Names that mark the only evaluation set as the training set rather than a validation set.
TRAIN_NAMES = frozenset({"train", "training", "dtrain"})


def default_guard(
    *,
    on_failure: str = "stop",
    monitor: str = "val_loss",
    mode: str = "min",
    patience: int | None = None,
    min_delta: float = 0.0,
    window: int = 256,
) -> TrainingGuard:
    """A :class:`~hindsight.training.TrainingGuard` with detectors suited to boosting curves.

    A boosting run yields one training and one validation value per iteration and no
    gradients, activations or learning-rate signal, so only the loss detectors apply:
    :class:`~hindsight.training.NonFiniteLoss`, :class:`~hindsight.training.LossExplosion`,
    :class:`~hindsight.training.NoLearning` (stop), :class:`~hindsight.training.LossSpike`,
    :class:`~hindsight.training.Plateau`, :class:`~hindsight.training.Oscillation` (warn)
    and :class:`~hindsight.training.Overfitting` with ``severity="stop"`` and a 20-iteration
    window: on boosting curves a validation loss that keeps rising while the training loss
    falls is the classic failure, and the 10-value window of the default guard stops on
    bumps of a flat, noisy validation curve.

    Parameters
    ----------
    on_failure, monitor, mode, patience, min_delta, window
        As for :class:`~hindsight.training.TrainingGuard`; set ``patience`` for classic
        early stopping on top of the detectors.

    Returns
    -------
    TrainingGuard
        A fresh guard.

    Examples
    --------
    >>> guard = default_guard(patience=50)
    >>> [type(d).__name__ for d in guard.detectors][-1], guard.detectors[-1].severity
    ('Overfitting', 'stop')
    >>> guard.patience
    50
    """
    detectors = [
        NonFiniteLoss(),
        LossExplosion(),
        NoLearning(),
        LossSpike(),
        Plateau(),
        Oscillation(),
        Overfitting(window=20, min_rise=0.02, severity="stop"),
    ]
    return TrainingGuard(
        detectors,
        on_failure=on_failure,
        monitor=monitor,
        mode=mode,
        patience=patience,
        min_delta=min_delta,
        window=window,
    )


@dataclass(frozen=True)
class EvalPoint:
    """One metric value on one evaluation set at one iteration.

    Examples
    --------
    >>> EvalPoint("valid", "logloss", 0.31, maximize=False).value
    0.31
    """

    dataset: str
    metric: str
    value: float
    maximize: bool


def guess_train(datasets: Sequence[str], preferred: str | None = None) -> str | None:
    """The evaluation set that most likely is the training data, or ``None``.

    ``preferred`` (the name the library gave the training data) when present, else the
    first of two or more sets, else the only set when named like a training set.

    Examples
    --------
    >>> guess_train(["train", "val"]), guess_train(["valid_0"]), guess_train(["train"])
    ('train', None, 'train')
    """
    if preferred is not None and preferred in datasets:
        return preferred
    if len(datasets) >= 2:
        return datasets[0]
    if datasets and datasets[0].lower() in TRAIN_NAMES:
        return datasets[0]
    return None


def check_guard(owner: str, guard: object) -> TrainingGuard:
    """Return ``guard``, or raise :class:`ConfigError` when it is not a TrainingGuard."""
    if not isinstance(guard, TrainingGuard):
        raise ConfigError(
            f"The 'guard' parameter of {owner} must be a TrainingGuard or None. Got {guard!r}; "
            "pass e.g. default_guard() or TrainingGuard()."
        )
    return guard


def check_flag(owner: str, name: str, value: object) -> bool:
    """Return ``value``, or raise :class:`ConfigError` when it is not a bool."""
    if not isinstance(value, bool):
        raise ConfigError(f"The {name!r} parameter of {owner} must be a bool. Got {value!r}.")
    return value


def check_name(owner: str, name: str, value: object) -> str | None:
    """Return ``value``, or raise :class:`ConfigError` when it is not a non-empty str or None."""
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(
            f"The {name!r} parameter of {owner} must be a non-empty str or None. Got {value!r}."
        )
    return value


class CurveFeed:
    """Picks the training and validation curves out of each iteration's evaluation results
    and feeds them to a guard.

    The choice is made on the first iteration and kept: ``train_set`` / ``val_set`` /
    ``metric`` when given, else ``default_train`` (the integration's guess), the last other
    evaluation set, and the first lower-is-better metric of the validation set.
    Every value is also fed as a metric named ``"<dataset>-<metric>"``, so the guard's
    ``monitor`` may name one (e.g. ``"valid-auc"`` with ``mode="max"``).
    """

    def __init__(
        self,
        owner: str,
        guard: TrainingGuard,
        *,
        train_set: str | None,
        val_set: str | None,
        metric: str | None,
    ) -> None:
        self.owner = owner
        self.guard = guard
        self.train_set = check_name(owner, "train_set", train_set)
        self.val_set = check_name(owner, "val_set", val_set)
        self.metric = check_name(owner, "metric", metric)
        if train_set is not None and train_set == val_set:
            raise ConfigError(
                f"The 'train_set' and 'val_set' parameters of {owner} must name different "
                f"evaluation sets. Got {train_set!r} for both."
            )
        self.reset()

    def reset(self) -> None:
        """Forget the curves chosen and everything fed (a new training run)."""
        self.guard.reset()
        self.chosen: tuple[str | None, str | None, str] | None = None
        self.verdicts: list[Verdict] = []
        self.last_verdict: Verdict | None = None
        self.stopped_reason: str | None = None
        self.stopped_step: int | None = None

    def _choose(
        self, points: Sequence[EvalPoint], default_train: str | None
    ) -> tuple[str | None, str | None, str]:
        datasets = list(dict.fromkeys(p.dataset for p in points))
        if not datasets:
            raise ConfigError(
                f"{self.owner} needs at least one evaluation set with a metric, ideally the "
                "training set first and a validation set last; pass them to training (e.g. "
                "evals=[(dtrain, 'train'), (dval, 'val')] or valid_sets=[dtrain, dval])."
            )
        for name, given in (("train_set", self.train_set), ("val_set", self.val_set)):
            if given is not None and given not in datasets:
                raise ConfigError(
                    f"The {name!r} parameter of {self.owner} names no evaluation set. Got "
                    f"{given!r}; the evaluation sets are {datasets}."
                )
        train = self.train_set
        if train is None and default_train in datasets and default_train != self.val_set:
            train = default_train
        val = self.val_set
        if val is None:
            others = [d for d in datasets if d != train]
            val = others[-1] if others else None
        if train is None and val is None:  # pragma: no cover - datasets is non-empty
            raise ConfigError(f"{self.owner} found no evaluation set to watch.")
        if train is None:
            logger.info(
                "%s: no training set among the evaluation sets %s; feeding %r as the "
                "validation loss only, so overfitting cannot be seen. Evaluate the training "
                "set too (first) to watch both curves.",
                self.owner,
                datasets,
                val,
            )
        watched = [d for d in (val, train) if d is not None]
        maximize = {(p.dataset, p.metric): p.maximize for p in points}
        metric = self.metric
        if metric is None:
            first = watched[0]
            candidates = [m for (d, m), up in maximize.items() if d == first and not up]
            if not candidates:
                names = [m for (d, m) in maximize if d == first]
                raise ConfigError(
                    f"{self.owner} found only higher-is-better metrics {names} on {first!r}; "
                    "the guard watches a loss. Add a loss metric (e.g. eval_metric='logloss' / "
                    "metric='binary_logloss') or pass metric= naming one."
                )
            metric = candidates[0]
        for d in watched:
            if (d, metric) not in maximize:
                names = [m for (dd, m) in maximize if dd == d]
                raise ConfigError(
                    f"The 'metric' parameter of {self.owner} names no metric of {d!r}. Got "
                    f"{metric!r}; its metrics are {names}."
                )
            if maximize[(d, metric)]:
                raise ConfigError(
                    f"The 'metric' parameter of {self.owner} must name a lower-is-better "
                    f"metric: the guard watches a loss. Got {metric!r}; pick e.g. logloss, "
                    "rmse or error, and watch higher-is-better metrics with the guard's "
                    'monitor="<dataset>-<metric>" and mode="max".'
                )
        return train, val, metric

    def feed(self, step: int, points: Sequence[EvalPoint], default_train: str | None) -> Verdict:
        """Feed one iteration's results to the guard and return its verdict."""
        if self.chosen is None:
            self.chosen = self._choose(points, default_train)
        train, val, metric = self.chosen
        loss = val_loss = None
        metrics: dict[str, float] = {}
        for p in points:
            metrics[f"{p.dataset}-{p.metric}"] = p.value
            if p.metric == metric:
                if p.dataset == train:
                    loss = p.value
                elif p.dataset == val:
                    val_loss = p.value
        verdict = self.guard.update(step, loss=loss, val_loss=val_loss, metrics=metrics)
        self.last_verdict = verdict
        if verdict.symptoms or verdict.stop:
            self.verdicts.append(verdict)
        if verdict.stop:
            self.stopped_reason = verdict.reason
            self.stopped_step = verdict.step
        return verdict


class FeedResults:
    """What a boosting callback exposes of its :class:`CurveFeed` (kept in ``_feed``)."""

    _feed: CurveFeed

    @property
    def guard(self) -> TrainingGuard:
        """The guard fed."""
        return self._feed.guard

    @property
    def verdicts(self) -> list[Verdict]:
        """Every verdict that reported a symptom or a stop, in order."""
        return self._feed.verdicts

    @property
    def last_verdict(self) -> Verdict | None:
        """The latest verdict (``None`` before the first round)."""
        return self._feed.last_verdict

    @property
    def stopped_reason(self) -> str | None:
        """Why the guard stopped training, or ``None`` when it did not."""
        return self._feed.stopped_reason

    @property
    def stopped_step(self) -> int | None:
        """The round at which the guard stopped training, or ``None``."""
        return self._feed.stopped_step

    @property
    def best_iteration(self) -> int | None:
        """The 0-based round where the guard's ``monitor`` was best (``None`` before one)."""
        return self._feed.guard.best_step
