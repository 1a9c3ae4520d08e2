"""Ready-made :class:`ModelBackend` s: a callable, rules, scikit-learn, MLflow and a mock.

Each one turns a request's ``inputs`` mapping into a :class:`ModelOutput` whose output is
plain Python (numpy scalars and arrays become ``int``/``float``/``list``), so a prediction
can be logged and returned as JSON whatever produced it. scikit-learn, joblib, pandas and
MLflow are imported only by the backends that need them.
"""

from __future__ import annotations

import math
import numbers
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hindsight._validation import Interval, validate_params
from hindsight.errors import ConfigError, ServingError
from hindsight.serving.backend import ModelBackend, ModelOutput

__all__ = [
    "CallableBackend",
    "MlflowBackend",
    "MockBackend",
    "RulesBackend",
    "SklearnBackend",
]

# A hung MockBackend call gives up after this long even if nobody calls release(),
# so a forgotten mock cannot keep a test process alive forever.
_HANG_S = 3600.0


def _to_plain(value: Any) -> Any:
    """``value`` with numpy (and pandas) scalars and arrays turned into plain Python."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {_to_plain(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # pandas Series, Index
        return _to_plain(value.tolist())
    return value


def _to_confidence(value: Any) -> Any:
    """A real-number confidence as a ``float``; anything else unchanged for ``problem()``."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def _check_name(owner: str, param: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"The {param!r} parameter of {owner} must be a non-empty string. Got {value!r}."
        )
    return value


def _probability_vector(values: Any) -> bool:
    """Whether ``values`` (a list) looks like class probabilities: numbers in [0, 1] summing to 1."""
    if not isinstance(values, list) or len(values) < 2:
        return False
    if not all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and 0.0 <= float(v) <= 1.0
        for v in values
    ):
        return False
    return math.isclose(math.fsum(values), 1.0, abs_tol=1e-6)


class CallableBackend(ModelBackend):
    """Serve any Python function ``fn(inputs)`` as a backend.

    ``fn`` may return the output, an ``(output, confidence)`` pair or a
    :class:`ModelOutput`. A 2-tuple is always read as ``(output, confidence)``; return a
    list to serve a pair. Exceptions from ``fn`` propagate unchanged.

    >>> backend = CallableBackend(lambda x: (x["a"] * 2, 0.9), name="double", version="3")
    >>> backend.predict({"a": 21})
    ModelOutput(output=42, confidence=0.9)
    >>> import numpy as np
    >>> CallableBackend(lambda x: np.float32(0.5), name="half", version="1").predict({})
    ModelOutput(output=0.5, confidence=None)
    """

    def __init__(self, fn: Callable[[Mapping[str, Any]], Any], *, name: str, version: str) -> None:
        if not callable(fn):
            raise ConfigError(
                f"The 'fn' parameter of CallableBackend must be callable. Got {fn!r}."
            )
        self.fn = fn
        self.name = _check_name("CallableBackend", "name", name)
        self.version = _check_name("CallableBackend", "version", version)

    def predict(self, inputs: Mapping[str, Any]) -> ModelOutput:
        """Call ``fn(inputs)`` and normalise what it returns."""
        result = self.fn(inputs)
        if isinstance(result, ModelOutput):
            return ModelOutput(_to_plain(result.output), _to_confidence(result.confidence))
        if isinstance(result, tuple) and len(result) == 2:
            output, confidence = result
            return ModelOutput(
                _to_plain(output), None if confidence is None else _to_confidence(confidence)
            )
        return ModelOutput(_to_plain(result))


Rule = tuple[Callable[[Mapping[str, Any]], bool], Any, float | None]


class RulesBackend(ModelBackend):
    """Hand-written rules: the first matching ``(predicate, output, confidence)`` wins.

    Meant as the always-available last tier of a fallback chain: no model file, no
    network. ``default`` answers when no rule matches; pass a :class:`ModelOutput` to
    give the default a confidence. A confidence may be left out of a rule (a 2-tuple).
    A predicate that raises is a bug in the rules, reported as :class:`ServingError`.

    >>> rules = RulesBackend(
    ...     [(lambda x: x["amount"] > 1000, "review", 0.6), (lambda x: x["new"], "review", None)],
    ...     default=ModelOutput("approve", 0.5),
    ... )
    >>> rules.predict({"amount": 5000, "new": False})
    ModelOutput(output='review', confidence=0.6)
    >>> rules.predict({"amount": 10, "new": False})
    ModelOutput(output='approve', confidence=0.5)
    """

    inline = True  # rules answer in microseconds: no thread hop, nothing to time out

    def __init__(
        self,
        rules: Sequence[tuple[Any, ...]],
        default: Any,
        *,
        name: str = "rules",
        version: str = "1",
    ) -> None:
        checked: list[Rule] = []
        for i, rule in enumerate(rules):
            if (
                not isinstance(rule, tuple | list)
                or len(rule) not in (2, 3)
                or not callable(rule[0])
            ):
                raise ConfigError(
                    f"Rule {i} of RulesBackend must be a (predicate, output) or "
                    f"(predicate, output, confidence) tuple with a callable predicate. Got {rule!r}."
                )
            confidence = rule[2] if len(rule) == 3 else None
            checked.append((rule[0], _to_plain(rule[1]), _to_confidence(confidence)))
        self.rules = checked
        if isinstance(default, ModelOutput):
            self.default = ModelOutput(
                _to_plain(default.output), _to_confidence(default.confidence)
            )
        else:
            self.default = ModelOutput(_to_plain(default))
        self.name = _check_name("RulesBackend", "name", name)
        self.version = _check_name("RulesBackend", "version", version)

    def predict(self, inputs: Mapping[str, Any]) -> ModelOutput:
        """The first matching rule's output, or the default."""
        for i, (predicate, output, confidence) in enumerate(self.rules):
            try:
                matched = predicate(inputs)
            except Exception as exc:
                raise ServingError(
                    f"Rule {i} of RulesBackend {self.name!r} raised {exc!r}. Make the predicate "
                    "handle every request it can see, e.g. use inputs.get(key) for optional keys."
                ) from exc
            if matched:
                return ModelOutput(output, confidence)
        return self.default


class SklearnBackend(ModelBackend):
    """A fitted scikit-learn estimator (or a joblib file of one) scoring one row.

    ``features`` names the inputs, in the column order the model was fitted on. With
    ``predict_proba`` the output is the most likely class and the confidence its
    probability; with ``positive_class`` the output is that class's probability and the
    confidence the largest class probability (how sure the model is either way).
    Models without ``predict_proba`` serve ``predict`` with no confidence.

    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    >>> backend = SklearnBackend(model, features=["x0", "x1"], name="lr", version="1")
    >>> out = backend.predict({"x0": 2.0, "x1": 0.0})
    >>> out.output, out.confidence > 0.9
    (1, True)
    >>> backend = SklearnBackend(
    ...     model, features=["x0", "x1"], name="lr", version="1", positive_class=1
    ... )
    >>> round(backend.predict({"x0": -2.0, "x1": 0.0}).output, 2) < 0.1
    True
    """

    #: In-memory scoring: on the event loop while it stays fast (see ModelBackend.inline).
    inline = "auto"

    def __init__(
        self,
        model_or_path: Any,
        *,
        features: Sequence[str],
        name: str,
        version: str,
        positive_class: Any = None,
    ) -> None:
        self.name = _check_name("SklearnBackend", "name", name)
        self.version = _check_name("SklearnBackend", "version", version)
        if (
            isinstance(features, str)
            or not all(isinstance(f, str) for f in features)
            or not features
        ):
            raise ConfigError(
                "The 'features' parameter of SklearnBackend must be a non-empty sequence of "
                f"feature names. Got {features!r}."
            )
        self.features = list(features)
        if isinstance(model_or_path, str | os.PathLike):
            self.path: str | None = os.fspath(model_or_path)
            self.model = _load_joblib(self.path)
        else:
            self.path = None
            self.model = model_or_path
        if not callable(getattr(self.model, "predict", None)):
            raise ServingError(
                f"SklearnBackend {self.name!r} got {type(self.model).__name__}, which has no "
                "predict method. Pass a fitted scikit-learn estimator or a joblib file of one."
            )
        self._check_fitted_shape()
        self._proba = callable(getattr(self.model, "predict_proba", None))
        self.positive_class = positive_class
        self._positive_index: int | None = None
        if positive_class is not None:
            classes = list(getattr(self.model, "classes_", []))
            if not self._proba or positive_class not in classes:
                raise ConfigError(
                    f"The 'positive_class' parameter of SklearnBackend must be one of the model's "
                    f"classes {_to_plain(classes)!r} and needs predict_proba. Got {positive_class!r}."
                )
            self._positive_index = classes.index(positive_class)
        # A model fitted on a DataFrame warns when scored on a bare array: give it its columns.
        self._columns = getattr(self.model, "feature_names_in_", None)

    def _check_fitted_shape(self) -> None:
        n_in = getattr(self.model, "n_features_in_", None)
        if n_in is None:
            raise ServingError(
                f"SklearnBackend {self.name!r}: the {type(self.model).__name__} is not fitted "
                "(no n_features_in_). Fit it before serving it."
            )
        if int(n_in) != len(self.features):
            raise ConfigError(
                f"SklearnBackend {self.name!r} was given {len(self.features)} features "
                f"{self.features!r}, but the model was fitted on {int(n_in)}. Pass the fitted "
                "model's features, in order."
            )
        names = getattr(self.model, "feature_names_in_", None)
        if names is not None and [str(n) for n in names] != self.features:
            raise ConfigError(
                f"SklearnBackend {self.name!r} was given features {self.features!r}, but the "
                f"model was fitted on columns {[str(n) for n in names]!r}. Pass those, in order."
            )

    def _row(self, inputs: Mapping[str, Any]) -> Any:
        try:
            values = [inputs[f] for f in self.features]
        except KeyError:
            missing = next(f for f in self.features if f not in inputs)
            raise ServingError(
                f"The request has no {missing!r} feature; SklearnBackend {self.name!r} needs "
                f"{', '.join(self.features)}. Send every feature the model was fitted on."
            ) from None
        for feature, value in zip(self.features, values, strict=True):
            t = type(value)
            # float and int first: the ABC check below costs a microsecond per feature.
            if t is not float and t is not int and not isinstance(value, numbers.Real):
                raise ServingError(
                    f"The {feature!r} feature must be a number, got {value!r} "
                    f"({type(value).__name__}). Encode it as a number before scoring."
                )
        row = np.array([values], dtype=np.float64)
        if self._columns is not None:
            import pandas as pd  # only models fitted on a DataFrame get here, so pandas exists

            return pd.DataFrame(row, columns=list(self._columns))
        return row

    def predict(self, inputs: Mapping[str, Any]) -> ModelOutput:
        """Score one request; a model that fails to score raises :class:`ServingError`."""
        row = self._row(inputs)
        try:
            if not self._proba:
                return ModelOutput(_to_plain(np.asarray(self.model.predict(row))[0]))
            proba = np.asarray(self.model.predict_proba(row), dtype=np.float64)[0]
        except Exception as exc:
            raise ServingError(
                f"SklearnBackend {self.name!r} could not score the request: {exc!r}. "
                "Check the input values and that the model file matches the installed scikit-learn."
            ) from exc
        if self._positive_index is not None:
            # The output is the score; the confidence is how sure the model is of its
            # decision, so a confident "no" is not mistaken for an unsure answer.
            p = float(proba[self._positive_index])
            return ModelOutput(p, float(proba.max()))
        best = int(np.argmax(proba))
        label = self.model.classes_[best] if hasattr(self.model, "classes_") else best
        return ModelOutput(_to_plain(label), float(proba[best]))

    def describe(self) -> dict[str, Any]:
        """Name, version, kind, features and the file the model came from (if any)."""
        return {**super().describe(), "features": list(self.features), "path": self.path}


def _load_joblib(path: str) -> Any:
    try:
        import joblib
    except ImportError as exc:
        raise ServingError(
            "Loading a model file needs joblib, which is not installed: pip install scikit-learn."
        ) from exc
    if not os.path.isfile(path):
        raise ServingError(
            f"No model file at {path!r}. Check the path, or pass a fitted estimator instead."
        )
    try:
        return joblib.load(path)
    except Exception as exc:
        raise ServingError(
            f"Cannot load the model file {path!r}: {exc!r}. Save it with joblib.dump using "
            "the same scikit-learn version that serves it."
        ) from exc


def _uri_name_version(uri: str) -> tuple[str, str]:
    """A default (name, version) from ``models:/name/3``, ``models:/name@alias`` or ``runs:/id/path``."""
    if uri.startswith("models:/"):
        rest = uri[len("models:/") :].strip("/")
        if "@" in rest:
            name, _, alias = rest.partition("@")
            return name, alias
        name, _, version = rest.partition("/")
        return name, version or "latest"
    if uri.startswith("runs:/"):
        run_id, _, path = uri[len("runs:/") :].strip("/").partition("/")
        return path or "model", run_id
    return "mlflow", "0"


class MlflowBackend(ModelBackend):
    """A model from MLflow (``models:/name/3``, ``models:/name@alias``, ``runs:/id/model``).

    Loads ``mlflow.pyfunc.load_model(model_uri)`` when built, so a bad URI fails at
    start-up, not on the first request. Each request is scored as a one-row pandas
    DataFrame; the output is the first element of the prediction. When that element is
    a probability vector (numbers in [0, 1] summing to 1) the confidence is its maximum.
    ``name`` and ``version`` default to the registered name and version in the URI (the
    artifact path and run id for ``runs:/`` URIs). Needs ``pip install 'hindsight[mlflow]'``.

    >>> MlflowBackend("models:/churn/3")  # doctest: +SKIP
    >>> _uri_name_version("models:/churn/3"), _uri_name_version("runs:/abc123/model")
    (('churn', '3'), ('model', 'abc123'))
    """

    def __init__(
        self, model_uri: str, *, name: str | None = None, version: str | None = None
    ) -> None:
        if not isinstance(model_uri, str) or not model_uri:
            raise ConfigError(
                f"The 'model_uri' parameter of MlflowBackend must be a non-empty string. "
                f"Got {model_uri!r}."
            )
        self.model_uri = model_uri
        uri_name, uri_version = _uri_name_version(model_uri)
        self.name = _check_name("MlflowBackend", "name", uri_name if name is None else name)
        self.version = _check_name(
            "MlflowBackend", "version", uri_version if version is None else version
        )
        try:
            import mlflow.pyfunc
        except ImportError as exc:
            raise ServingError(
                "MlflowBackend needs mlflow, which is not installed: "
                "pip install 'hindsight[mlflow]'."
            ) from exc
        try:
            self.model = mlflow.pyfunc.load_model(model_uri)
        except Exception as exc:
            raise ServingError(
                f"Cannot load the MLflow model {model_uri!r}: {exc}. Check the URI, that the "
                "model version exists and that MLFLOW_TRACKING_URI points at its registry."
            ) from exc

    def predict(self, inputs: Mapping[str, Any]) -> ModelOutput:
        """Score one request as a one-row DataFrame."""
        import pandas as pd  # mlflow depends on pandas, so it is there once the model loaded

        frame = pd.DataFrame([dict(inputs)])
        try:
            result = self.model.predict(frame)
        except Exception as exc:
            raise ServingError(
                f"MlflowBackend {self.name!r} could not score the request: {exc}. "
                "Check the inputs against the model's signature."
            ) from exc
        output = _first(result)
        if output is _EMPTY:
            raise ServingError(
                f"MlflowBackend {self.name!r} returned an empty prediction for one row. "
                "Check the model's predict function."
            )
        values = list(output.values()) if isinstance(output, dict) else output
        confidence = float(max(values)) if _probability_vector(values) else None
        return ModelOutput(output, confidence)

    def describe(self) -> dict[str, Any]:
        """Name, version, kind and the model URI."""
        return {**super().describe(), "model_uri": self.model_uri}


_EMPTY = object()


def _first(result: Any) -> Any:
    """The first row of a prediction as plain Python (a one-column row is its value)."""
    columns = getattr(result, "columns", None)
    if columns is not None and hasattr(result, "iloc"):  # a DataFrame
        if len(result) == 0:
            return _EMPTY
        row = result.iloc[0]
        return _to_plain(row.iloc[0]) if len(columns) == 1 else _to_plain(row.to_dict())
    if isinstance(result, Mapping):
        return _to_plain(result)
    plain = _to_plain(result)
    if isinstance(plain, list):
        return plain[0] if plain else _EMPTY
    return plain


class MockBackend(ModelBackend):
    """A backend for tests and fault injection: fixed outputs, latency, failures, hangs, NaN.

    ``outputs`` is the output of every call, or a list cycled through call by call
    (wrap a list in a list to serve it whole); ``None`` serves ``0``. ``latency_ms``
    sleeps before answering; ``fail_every=n`` raises ``RuntimeError`` on every n-th call;
    ``hang=True`` blocks every call until :meth:`release`; ``nan=True`` serves NaN.
    :attr:`calls` counts calls, including failed and hanging ones; it is thread-safe.

    >>> mock = MockBackend(["cat", "dog"], confidence=0.8, fail_every=3)
    >>> mock.predict({}), mock.predict({})
    (ModelOutput(output='cat', confidence=0.8), ModelOutput(output='dog', confidence=0.8))
    >>> mock.predict({})
    Traceback (most recent call last):
    ...
    RuntimeError: MockBackend 'mock' failed on purpose on call 3 (fail_every=3).
    >>> mock.calls
    3
    >>> MockBackend(nan=True).predict({}).problem()
    'the output contains NaN or infinity'
    """

    def __init__(
        self,
        outputs: Any = None,
        *,
        name: str = "mock",
        version: str = "1",
        latency_ms: float = 0.0,
        fail_every: int = 0,
        hang: bool = False,
        nan: bool = False,
        confidence: float | None = None,
    ) -> None:
        validate_params(
            "MockBackend",
            {"latency_ms": latency_ms, "fail_every": fail_every, "confidence": confidence},
            {
                "latency_ms": Interval(float, 0.0, None),
                "fail_every": Interval(int, 0, None),
                "confidence": Interval(float, 0.0, 1.0, allow_none=True),
            },
        )
        if isinstance(outputs, list) and not outputs:
            raise ConfigError(
                "The 'outputs' parameter of MockBackend must not be an empty list. "
                "Pass None, one output, or a list of outputs to cycle through."
            )
        if outputs is None:
            outputs = 0
        self.outputs: list[Any] = (
            _to_plain(outputs) if isinstance(outputs, list) else [_to_plain(outputs)]
        )
        self.name = _check_name("MockBackend", "name", name)
        self.version = _check_name("MockBackend", "version", version)
        self.latency_ms = float(latency_ms)
        self.fail_every = int(fail_every)
        self.hang = bool(hang)
        self.nan = bool(nan)
        self.confidence = None if confidence is None else float(confidence)
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._calls = 0
        self._hanging = 0

    @property
    def calls(self) -> int:
        """How many times :meth:`predict` was called."""
        with self._lock:
            return self._calls

    @property
    def hanging(self) -> int:
        """How many calls are blocked right now, waiting for :meth:`release`."""
        with self._lock:
            return self._hanging

    def release(self) -> None:
        """Let every hanging call (and every later one) finish."""
        self._released.set()

    def predict(self, inputs: Mapping[str, Any]) -> ModelOutput:
        """Answer as configured: sleep, hang, fail or serve the next output."""
        with self._lock:
            self._calls += 1
            n = self._calls
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000.0)
        if self.hang:
            with self._lock:
                self._hanging += 1
            try:
                self._released.wait(_HANG_S)
            finally:
                with self._lock:
                    self._hanging -= 1
        if self.fail_every and n % self.fail_every == 0:
            raise RuntimeError(
                f"MockBackend {self.name!r} failed on purpose on call {n} "
                f"(fail_every={self.fail_every})."
            )
        output = math.nan if self.nan else self.outputs[(n - 1) % len(self.outputs)]
        return ModelOutput(output, self.confidence)
