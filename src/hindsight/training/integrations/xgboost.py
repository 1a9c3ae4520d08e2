"""XGBoost integration: a training callback that feeds the guard every boosting round.

:class:`GuardCallback` reads each round's evaluation results, feeds the training-set
metric as ``loss`` and the validation-set metric as ``val_loss`` to a
:class:`~hindsight.training.TrainingGuard` (by default :func:`default_guard`, tuned to
boosting curves) and stops training when the guard says so.

Boosting has no gradients, activations or learning-rate signal to watch, so the guard's
detectors of those stay silent; what it catches is a non-finite or exploding loss, a run
that does not learn, and overfitting (training loss falling while validation loss rises).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import xgboost
from xgboost.callback import TrainingCallback

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

#: Prefixes of XGBoost's higher-is-better metrics (as XGBoost's own EarlyStopping reads them).
_MAXIMIZE = ("auc", "aucpr", "pre", "pre@", "map", "ndcg", "auc@", "aucpr@", "map@", "ndcg@")


def _maximize(metric: str) -> bool:
    return metric != "mape" and metric.startswith(_MAXIMIZE)


def _value(score: Any) -> float:
    # xgboost.cv logs (mean, std) pairs; train logs plain floats.
    return float(score[0] if isinstance(score, tuple) else score)


class GuardCallback(FeedResults, TrainingCallback):
    """An XGBoost callback that feeds a :class:`~hindsight.training.TrainingGuard` and stops
    training when it says so.

    Each round, the ``metric`` of the ``train_set`` evaluation set is fed as ``loss`` and
    that of the ``val_set`` as ``val_loss``; every evaluation value is also fed as a metric
    named ``"<dataset>-<metric>"`` (e.g. ``"val-auc"``), which the guard may ``monitor``.
    The step is the boosting round (counting rounds of a model training continues from).

    Defaults: the training set is the first of two or more evaluation sets (or the only
    one when named ``"train"`` / ``"training"`` / ``"dtrain"``), the validation set the
    last other one, and the metric the first lower-is-better metric of the validation
    set. Evaluate the training set first, so the guard sees both curves::

        evals=[(dtrain, "train"), (dval, "val")]

    At the end of training (stopped or not) the round where the guard's ``monitor`` was
    best is stored on the booster as ``best_iteration`` / ``best_score`` (as XGBoost's own
    ``EarlyStopping`` does): the scikit-learn estimators then predict with the rounds up
    to it, and a native ``Booster`` with ``iteration_range=(0, bst.best_iteration + 1)``.
    With ``restore_best_weights=True`` the returned booster keeps only those rounds
    (``bst[: best + 1]``; tree boosters only, not ``gblinear`` or ``xgboost.cv``).

    A callback holds its run's state: pass a fresh one to every training call, as for
    XGBoost's own callbacks (the scikit-learn estimators reuse the one they were given).

    Parameters
    ----------
    guard
        The guard to feed; ``None`` (default) for :func:`default_guard`. It is reset when
        training starts.
    train_set, val_set
        Names of the evaluation sets standing for training and validation loss, or
        ``None`` (default) for the defaults above.
    metric
        Name of the lower-is-better metric to watch (e.g. ``"logloss"``, ``"rmse"``), or
        ``None`` (default) for the validation set's first one.
    restore_best_weights
        Whether to return the booster cut to the best round (default ``False``).

    Attributes
    ----------
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
        The round where ``monitor`` was best.

    Examples
    --------
    >>> import numpy as np, xgboost
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(300, 5))
    >>> y = (x[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(float)
    >>> dtrain = xgboost.DMatrix(x[:200], label=y[:200])
    >>> dval = xgboost.DMatrix(x[200:], label=y[200:])
    >>> callback = GuardCallback()
    >>> params = {"objective": "binary:logistic", "max_depth": 2, "eta": 0.1, "nthread": 1}
    >>> bst = xgboost.train(params, dtrain, 30, evals=[(dtrain, "train"), (dval, "val")],
    ...                     verbose_eval=False, callbacks=[callback])
    >>> callback.stopped_reason is None, bst.best_iteration == callback.best_iteration
    (True, True)
    """

    def __init__(
        self,
        guard: TrainingGuard | None = None,
        *,
        train_set: str | None = None,
        val_set: str | None = None,
        metric: str | None = None,
        restore_best_weights: bool = False,
    ) -> None:
        guard = default_guard() if guard is None else check_guard("GuardCallback", guard)
        self.restore_best_weights = check_flag(
            "GuardCallback", "restore_best_weights", restore_best_weights
        )
        self._feed = CurveFeed(
            "GuardCallback", guard, train_set=train_set, val_set=val_set, metric=metric
        )
        self._start = 0
        super().__init__()

    # -- XGBoost hooks ---------------------------------------------------------------------
    def before_training(self, model: Any) -> Any:
        """Reset the guard; note the rounds of a model whose training continues."""
        self._feed.reset()
        self._start = model.num_boosted_rounds() if isinstance(model, xgboost.Booster) else 0
        return model

    def after_iteration(
        self, model: Any, epoch: int, evals_log: Mapping[str, Mapping[str, Sequence[Any]]]
    ) -> bool:
        """Feed this round's evaluation results; return ``True`` to stop training."""
        points = [
            EvalPoint(str(dataset), str(metric), _value(scores[-1]), _maximize(str(metric)))
            for dataset, by_metric in evals_log.items()
            for metric, scores in by_metric.items()
            if len(scores)
        ]
        default_train = guess_train([str(name) for name in evals_log])
        verdict = self._feed.feed(self._start + epoch, points, default_train)
        return verdict.stop

    def after_training(self, model: Any) -> Any:
        """Mark the best round on the booster; cut it there with ``restore_best_weights``."""
        best, score = self.guard.best_step, self.guard.best_value
        if best is None or score is None or not isinstance(model, xgboost.Booster):
            return model
        if self.restore_best_weights and best + 1 < model.num_boosted_rounds():
            model = model[: best + 1]
        model.set_attr(best_iteration=str(best), best_score=repr(float(score)))
        return model
