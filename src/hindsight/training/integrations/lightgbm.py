"""LightGBM integration: a callback that feeds the guard every boosting round.

:class:`GuardCallback` is a callable for ``lightgbm.train(..., callbacks=[...])`` (and
``lightgbm.cv`` and the scikit-learn estimators' ``fit(callbacks=[...])``). It feeds the
training-set metric as ``loss`` and the validation-set metric as ``val_loss`` to a
:class:`~hindsight.training.TrainingGuard` (by default :func:`default_guard`, tuned to
boosting curves) and stops training the way LightGBM's own early stopping does, by
raising :class:`lightgbm.callback.EarlyStopException` with the best round.

Boosting has no gradients, activations or learning-rate signal to watch, so the guard's
detectors of those stay silent; what it catches is a non-finite or exploding loss, a run
that does not learn, and overfitting (training loss falling while validation loss rises).
"""

from __future__ import annotations

from typing import Any

import lightgbm
from lightgbm.callback import CallbackEnv, EarlyStopException

from hindsight.training.guard import TrainingGuard
from hindsight.training.integrations._boosting import (
    CurveFeed,
    EvalPoint,
    FeedResults,
    check_flag,
    check_guard,
    default_guard,
    guess_train,
)

__all__ = ["GuardCallback", "default_guard"]


def _points(results: list[Any]) -> list[EvalPoint]:
    points = []
    for r in results:
        # lightgbm >= 4.7 passes EvalResult named tuples, older versions plain tuples
        # (dataset, metric, value, maximize[, std]); cv() before 4.7 names the dataset
        # "cv_agg" and puts the fold set in the metric ("valid binary_logloss").
        dataset, metric, value, maximize = str(r[0]), str(r[1]), float(r[2]), bool(r[3])
        if dataset == "cv_agg" and " " in metric:
            dataset, metric = metric.split(" ", 1)
        points.append(EvalPoint(dataset, metric, value, maximize))
    return points


class GuardCallback(FeedResults):
    """A LightGBM callback that feeds a :class:`~hindsight.training.TrainingGuard` and
    stops training when it says so.

    Each round, the ``metric`` of the ``train_set`` evaluation set is fed as ``loss`` and
    that of the ``val_set`` as ``val_loss``; every evaluation value is also fed as a metric
    named ``"<dataset>-<metric>"`` (e.g. ``"valid-auc"``), which the guard may ``monitor``.
    The step is LightGBM's round index (counting rounds of an ``init_model``).

    LightGBM only evaluates the training data when it is among ``valid_sets``; pass it
    first so the guard sees both curves::

        lightgbm.train(params, dtrain, valid_sets=[dtrain, dval], callbacks=[GuardCallback()])

    Defaults: the training set is LightGBM's training data when it is evaluated
    (``"training"``, or ``"train"`` in ``lightgbm.cv`` with ``eval_train_metric=True``),
    else the first of two or more evaluation sets (the scikit-learn estimators name the
    training data ``"valid_0"`` when it comes first in ``eval_X``); the validation set is
    the last other evaluation set, and the metric the validation set's first
    lower-is-better metric. With only validation sets, name them with ``train_set`` /
    ``val_set`` or evaluate the training data too.

    A stop raises :class:`lightgbm.callback.EarlyStopException` with the round where the
    guard's ``monitor`` was best, so ``booster.best_iteration`` and ``best_score`` hold
    it: ``predict`` uses the rounds up to it, and so does the booster ``lightgbm.train``
    returns (it keeps only those unless ``keep_training_booster=True``). With
    ``keep_best=True`` (default) a run that is not stopped is marked the same way on its
    last round, as LightGBM's ``early_stopping`` does.

    A callback holds its run's state and is reset when a run starts (round
    ``begin_iteration``); use one per training call.

    Parameters
    ----------
    guard
        The guard to feed; ``None`` (default) for :func:`default_guard`.
    train_set, val_set
        Names of the evaluation sets standing for training and validation loss, or
        ``None`` (default) for the defaults above.
    metric
        Name of the lower-is-better metric to watch (e.g. ``"binary_logloss"``,
        ``"l2"``), or ``None`` (default) for the validation set's first one.
    keep_best
        Whether to mark the best round on a run that was not stopped (default ``True``).

    Attributes
    ----------
    order : int
        Where LightGBM runs it among callbacks: 30, as its ``early_stopping``.
    before_iteration : bool
        ``False``: it runs after each round.
    guard : TrainingGuard
        The guard fed.
    verdicts : list of Verdict
        Every verdict that reported a symptom or a stop, in order.
    last_verdict : Verdict or None
        The latest verdict.
    stopped_reason : str or None
        Why the guard stopped training (``None`` when it did not).
    stopped_step : int or None
        The round at which it stopped.
    best_iteration : int or None
        The round where ``monitor`` was best (0-based; LightGBM's ``best_iteration`` is
        this plus one, a count of rounds).

    Examples
    --------
    >>> import numpy as np, lightgbm
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(300, 5))
    >>> y = (x[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(float)
    >>> dtrain = lightgbm.Dataset(x[:200], y[:200])
    >>> dval = lightgbm.Dataset(x[200:], y[200:], reference=dtrain)
    >>> callback = GuardCallback()
    >>> params = {"objective": "binary", "num_leaves": 4, "num_threads": 1, "verbose": -1}
    >>> bst = lightgbm.train(params, dtrain, 30, valid_sets=[dtrain, dval],
    ...                      callbacks=[callback])
    >>> callback.stopped_reason is None, bst.best_iteration == callback.best_iteration + 1
    (True, True)
    """

    order = 30
    before_iteration = False

    def __init__(
        self,
        guard: TrainingGuard | None = None,
        *,
        train_set: str | None = None,
        val_set: str | None = None,
        metric: str | None = None,
        keep_best: bool = True,
    ) -> None:
        guard = default_guard() if guard is None else check_guard("GuardCallback", guard)
        self.keep_best = check_flag("GuardCallback", "keep_best", keep_best)
        self._feed = CurveFeed(
            "GuardCallback", guard, train_set=train_set, val_set=val_set, metric=metric
        )
        self._best_results: list[Any] | None = None

    # -- the LightGBM hook -----------------------------------------------------------------
    def __call__(self, env: CallbackEnv) -> None:
        """Feed this round's evaluation results; raise ``EarlyStopException`` to stop."""
        if env.iteration == env.begin_iteration:
            self._feed.reset()
            self._best_results = None
        results = list(env.evaluation_result_list or [])
        points = _points(results)
        if isinstance(env.model, lightgbm.Booster):
            preferred = str(getattr(env.model, "_train_data_name", "training"))
        else:  # lightgbm.cv with eval_train_metric=True
            preferred = "train"
        default_train = guess_train(list(dict.fromkeys(p.dataset for p in points)), preferred)
        verdict = self._feed.feed(env.iteration, points, default_train)
        if verdict.improved:
            self._best_results = results
        last = env.iteration == env.end_iteration - 1
        if not verdict.stop and not (last and self.keep_best):
            return
        best = self.guard.best_step
        if best is None or self._best_results is None:
            if verdict.stop:
                raise EarlyStopException(env.iteration, results)
            return
        raise EarlyStopException(best, self._best_results)
