"""Classifier two-sample test (Lopez-Paz & Oquab, ICLR 2017, "Revisiting Classifier Two-Sample Tests").

Rows of the reference are labelled 0 and rows of the current sample 1; both samples
are first subsampled (seeded) to the same size, at most ``max_samples`` each, so a
classifier that always answers the majority label scores exactly 1/2. Each sample is
split at random into a training part and a held-out part of ``test_size`` of its rows
(the split is stratified: both labels appear equally in both parts). A classifier is
fitted on the training part and its accuracy ``t`` measured on the ``n_te`` held-out rows.

If both samples come from the same distribution no classifier can beat chance on
held-out rows, and ``n_te * t`` is a sum of ``n_te`` independent Bernoulli(1/2)
outcomes, so ``t ~ N(1/2, 1/(4 n_te))`` approximately, as the paper derives. The
p-value is one-sided, ``P(N(1/2, 1/(4 n_te)) >= t)``: only better-than-chance accuracy
means drift. The effect size is the held-out ROC AUC of the classifier's scores,
1/2 for indistinguishable samples and 1 for perfectly separable ones.

The default classifier is scikit-learn's ``HistGradientBoostingClassifier`` (seeded,
no early stopping). Trees see interactions and non-linear differences: a change in
the correlation of two features that keeps both marginals is invisible to a linear
model (the optimal boundary between two zero-mean Gaussians is quadratic) but not to
boosted trees. They also need no feature scaling and raise no convergence warnings.
Pass ``estimator=`` (anything with ``fit`` and ``predict``, e.g. a ``LogisticRegression``
for a fast test of mean shifts) to use another; it is cloned before each fit.
scikit-learn is an optional dependency, imported only when a classifier is fitted.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> reference = rng.normal(size=(300, 2))
>>> current = rng.normal(size=(300, 2)) + [1.0, 0.0]
>>> result = C2ST()(reference, current)
>>> result.drifted, result.details["n_test"], result.effect_size > 0.6
(True, 300, True)
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
from scipy import stats

from hindsight._validation import Interval
from hindsight.drift.stattests._matrix import as_matrices, subsample_rows
from hindsight.drift.stattests.base import DriftTest, register
from hindsight.errors import ConfigError, DriftError

__all__ = ["C2ST", "MIN_ROWS", "roc_auc"]

#: Fewest rows per sample: enough for a training and a held-out part of a few rows each.
MIN_ROWS = 10


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of ``scores`` for binary ``labels`` (Mann-Whitney U / (n0 n1), ties count 1/2)."""
    positive = labels == 1
    n1 = int(positive.sum())
    n0 = labels.size - n1
    if n0 == 0 or n1 == 0:
        return math.nan
    ranks = stats.rankdata(scores)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))


def _classifier(estimator: Any, random_state: int | None) -> Any:
    """A fresh, unfitted classifier: a clone of ``estimator`` or the default one."""
    # scikit-learn is optional (the [dev] extra): only this test needs it, and only here.
    try:
        from sklearn.base import clone
        from sklearn.ensemble import HistGradientBoostingClassifier
    except ImportError as exc:
        if estimator is None:
            raise DriftError(
                "The c2st test fits a scikit-learn classifier, but scikit-learn is not "
                "installed. Install it with: pip install scikit-learn"
            ) from exc
        return copy.deepcopy(estimator)
    if estimator is None:
        return HistGradientBoostingClassifier(random_state=random_state, early_stopping=False)
    return clone(estimator) if hasattr(estimator, "get_params") else copy.deepcopy(estimator)


def _scores(model: Any, x: np.ndarray) -> np.ndarray:
    """The fitted classifier's score for label 1: probability, decision value or label."""
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(x))
        classes = list(getattr(model, "classes_", [0, 1]))
        return proba[:, classes.index(1)]
    if hasattr(model, "decision_function"):
        return np.asarray(model.decision_function(x), dtype=np.float64).ravel()
    return np.asarray(model.predict(x), dtype=np.float64).ravel()


@register
class C2ST(DriftTest):
    """Classifier two-sample test; drift when the p-value is below ``threshold``.

    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> same = C2ST(max_samples=200)(rng.normal(size=(400, 3)), rng.normal(size=(400, 3)))
    >>> same.drifted, same.details["n_test"]
    (False, 200)
    """

    name = "c2st"
    kinds = frozenset({"multivariate"})
    has_p_value = True
    default_threshold = 0.05
    threshold_on = "p_value"
    effect_name = "roc_auc"
    _constraints = {
        "max_samples": Interval(int, MIN_ROWS, None),
        "test_size": Interval(float, 0.0, 1.0, closed="neither"),
        "random_state": Interval(int, 0, None, allow_none=True),
    }

    estimator: Any
    max_samples: int
    test_size: float
    random_state: int | None

    def __init__(
        self,
        threshold: float | None = None,
        *,
        estimator: Any = None,
        max_samples: int = 5000,
        test_size: float = 0.5,
        random_state: int | None = 0,
    ) -> None:
        if estimator is not None and not (
            callable(getattr(estimator, "fit", None))
            and callable(getattr(estimator, "predict", None))
        ):
            raise ConfigError(
                "The 'estimator' parameter of C2ST must be a classifier with fit() and "
                f"predict() (a scikit-learn estimator), or None for the default. Got {estimator!r}."
            )
        super().__init__(
            threshold,
            estimator=estimator,
            max_samples=max_samples,
            test_size=test_size,
            random_state=random_state,
        )

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        ref, cur = as_matrices(reference, current, self.name, MIN_ROWS)
        rng = np.random.default_rng(self.random_state)
        size = min(ref.shape[0], cur.shape[0], self.max_samples)
        x = subsample_rows(ref, size, rng)
        y = subsample_rows(cur, size, rng)
        # Same held-out count from each sample: a stratified, balanced split.
        n_test = min(max(round(self.test_size * size), 1), size - 1)
        order_x, order_y = rng.permutation(size), rng.permutation(size)
        train_x, test_x = x[order_x[n_test:]], x[order_x[:n_test]]
        train_y, test_y = y[order_y[n_test:]], y[order_y[:n_test]]

        n_train = size - n_test
        shuffle = rng.permutation(2 * n_train)  # no label-sorted rows for order-sensitive learners
        features = np.vstack([train_x, train_y])[shuffle]
        labels = np.repeat([0, 1], n_train)[shuffle]
        model = _classifier(self.estimator, self.random_state)
        model.fit(features, labels)

        held_out = np.vstack([test_x, test_y])
        truth = np.repeat([0, 1], n_test)
        predicted = np.asarray(model.predict(held_out)).ravel()
        accuracy = float(np.mean(predicted == truth))
        auc = roc_auc(truth, _scores(model, held_out))
        total_test = 2 * n_test
        z = (accuracy - 0.5) * 2.0 * math.sqrt(total_test)  # sd of t under H0: 1 / (2 sqrt(n_te))
        p_value = float(stats.norm.sf(z))
        details = {
            "accuracy": accuracy,
            "roc_auc": auc,
            "z": z,
            "classifier": type(model).__name__,
            "n_train": 2 * n_train,
            "n_test": total_test,
            "n_per_sample_used": size,
            "n_reference": ref.shape[0],
            "n_current": cur.shape[0],
            "subsampled": size < max(ref.shape[0], cur.shape[0]),
        }
        return accuracy, p_value, auc, details
