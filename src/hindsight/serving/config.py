"""``service.yaml``: a :class:`~hindsight.serving.service.Service` described in a file.

>>> spec = {
...     "name": "loans",
...     "deadline_ms": 40,
...     "tiers": [
...         {"name": "model", "kind": "mock", "outputs": "approve", "confidence": 0.9},
...         {"name": "rules", "kind": "rules", "default": "approve",
...          "rules": [{"when": "amount > 10000", "output": "decline"}]},
...     ],
...     "abstention": {"min_confidence": 0.6, "risk_rules": ["amount > 10000"]},
... }
>>> svc = service_from_dict(spec, store=None)
>>> svc.predict_sync({"amount": 20000}).output
'decline'
>>> svc.close()

The file's keys (paths are relative to the file's folder):

``name``, ``deadline_ms`` (50), ``last_tier_reserve_ms``, ``store`` (a store URL; default
the project's store, ``HINDSIGHT_STORE`` or SQLite under ``./.hindsight``; ``none`` for no
log), ``log_inputs`` (true), ``tiers`` (a list, the last is the fail-safe), ``candidates``
(name → backend, for rollouts), ``abstention``, ``review`` (``capacity``, ``sla_s``),
``alerts`` (channel URLs, see :func:`hindsight.alerts.channel_from_url`).

A backend has a ``kind``:

* ``python`` — ``ref: module:attribute`` names a ModelBackend instance, a ModelBackend
  class (built with ``args``), or a function ``inputs -> output`` (or
  ``(output, confidence)``), wrapped in a CallableBackend;
* ``sklearn`` — ``path`` to a joblib file, ``features``, optional ``positive_class``;
* ``mlflow`` — ``uri`` such as ``models:/recommender/3``;
* ``rules`` — ``rules: [{when: "amount > 10000", output: decline, confidence: 1.0}]``
  and a ``default``; conditions are ``column op number`` (parsed, never evaluated);
* ``mock`` — :class:`~hindsight.serving.backends.MockBackend` options, for trials.

Every tier may have ``name``, ``version``, ``breaker`` (CircuitBreaker options) and
``max_workers``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hindsight.errors import ConfigError
from hindsight.serving.backend import ModelBackend, ModelOutput
from hindsight.serving.fallback import Tier

if TYPE_CHECKING:
    from hindsight.serving.service import Service
    from hindsight.store import Store

__all__ = ["load_service", "service_from_dict"]

_TOP = {
    "name", "deadline_ms", "last_tier_reserve_ms", "store", "log_inputs", "tiers",
    "candidates", "abstention", "review", "alerts",
}  # fmt: skip
_TIER = {"name", "version", "kind", "breaker", "max_workers"}
_KIND_KEYS = {
    "python": {"ref", "args"},
    "sklearn": {"path", "features", "positive_class"},
    "mlflow": {"uri"},
    "rules": {"rules", "default", "default_confidence"},
    "mock": {"outputs", "latency_ms", "fail_every", "hang", "nan", "confidence"},
}
_ABSTAIN = {
    "min_confidence", "ood_profile", "ood_threshold", "risk_rules", "audit_rate", "seed",
    "ood_features",
}  # fmt: skip
_REVIEW = {"capacity", "sla_s"}


def load_service(path: str | os.PathLike[str], *, store: Store | str | None = "default") -> Service:
    """Build the service a ``service.yaml`` describes (``store`` overrides the file's)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"No service file at {str(p)!r}. Write a service.yaml (see the README).")
    try:
        spec = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}") from exc
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{p} must hold a mapping with 'name' and 'tiers'.")
    return service_from_dict(spec, base=p.parent, store=store, where=str(p))


def service_from_dict(
    spec: Mapping[str, Any],
    *,
    base: str | os.PathLike[str] = ".",
    store: Store | str | None = "default",
    where: str = "the service spec",
) -> Service:
    """Build a service from a parsed spec; ``store=None`` serves without a log."""
    from hindsight.review.queue import ReviewQueue
    from hindsight.serving.abstain import AbstentionPolicy
    from hindsight.serving.service import Service

    base_dir = Path(base)
    _keys(spec, _TOP, where)
    for required in ("name", "tiers"):
        if required not in spec:
            raise ConfigError(f"{where}: '{required}' is missing.")
    tiers_spec = spec["tiers"]
    if not isinstance(tiers_spec, list) or not tiers_spec:
        raise ConfigError(f"{where}: 'tiers' must be a non-empty list (the last is the fail-safe).")
    tiers = [_tier(t, base_dir, f"{where}: tiers[{i}]") for i, t in enumerate(tiers_spec)]
    candidates_spec = spec.get("candidates") or {}
    if not isinstance(candidates_spec, Mapping):
        raise ConfigError(f"{where}: 'candidates' must map a name to a backend.")
    candidates = {
        str(n): _backend(c, base_dir, f"{where}: candidates.{n}", default_name=str(n))
        for n, c in candidates_spec.items()
    }
    resolved_store = _store(spec.get("store", "default") if store == "default" else store)
    abstention = None
    if spec.get("abstention"):
        a = dict(spec["abstention"])
        _keys(a, _ABSTAIN, f"{where}: abstention")
        if a.get("ood_profile") is not None:
            a["ood_profile"] = _profile(a["ood_profile"], base_dir, resolved_store)
        abstention = AbstentionPolicy(**a)
    review = None
    if spec.get("review") is not None:
        r = dict(spec["review"] or {})
        _keys(r, _REVIEW, f"{where}: review")
        review = ReviewQueue(**r, store=resolved_store, service=str(spec["name"]))
    alerts = []
    for url in spec.get("alerts") or []:
        from hindsight.alerts import channel_from_url

        alerts.append(channel_from_url(str(url)))
    return Service(
        str(spec["name"]),
        tiers,
        deadline_ms=float(spec.get("deadline_ms", 50.0)),
        last_tier_reserve_ms=spec.get("last_tier_reserve_ms"),
        abstention=abstention,
        review=review,
        store=resolved_store,
        alerts=alerts,
        log_inputs=bool(spec.get("log_inputs", True)),
        candidates=candidates,
    )


def _keys(spec: Any, allowed: set[str], where: str) -> None:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where} must be a mapping; got {type(spec).__name__}.")
    unknown = set(spec) - allowed
    if unknown:
        raise ConfigError(
            f"{where}: unknown keys {sorted(unknown)}; known keys are {sorted(allowed)}."
        )


def _store(value: Any) -> Store | None:
    if value is None or value == "none":
        return None
    from hindsight.store import Store, open_store

    if isinstance(value, Store):
        return value
    if value == "default":
        from hindsight.config import Settings

        return open_store(Settings.load().store_url)
    if not isinstance(value, str):
        raise ConfigError(f"'store' must be a store URL or 'none'; got {value!r}.")
    return open_store(value)


def _profile(value: Any, base: Path, store: Store | None) -> Any:
    from hindsight.data.profile import DatasetProfile
    from hindsight.data.reference import PROFILE_SUFFIX, load_profile

    path = base / str(value)
    if str(value).endswith(PROFILE_SUFFIX):
        if not path.is_file():
            raise ConfigError(f"abstention.ood_profile: no profile file at {str(path)!r}.")
        return DatasetProfile.load(path)
    if store is None:
        raise ConfigError(
            "abstention.ood_profile names a stored profile, but the service has no store; "
            "give a .hsprof path instead."
        )
    from hindsight.ledger.core import Ledger

    return load_profile(str(value), ledger=Ledger(store=store))


def _tier(spec: Any, base: Path, where: str) -> Tier:
    backend = _backend(spec, base, where)  # checks the keys against the backend's kind
    extra: dict[str, Any] = {}
    if spec.get("breaker") is not None:
        from hindsight.serving.breaker import CircuitBreaker

        b = spec["breaker"]
        if not isinstance(b, Mapping):
            raise ConfigError(f"{where}.breaker must be a mapping of CircuitBreaker options.")
        try:
            extra["breaker"] = CircuitBreaker(**b)
        except TypeError as exc:
            raise ConfigError(f"{where}.breaker: {exc}") from exc
    if spec.get("max_workers") is not None:
        extra["max_workers"] = int(spec["max_workers"])
    return Tier(backend, name=backend.name, **extra)


def _backend(spec: Any, base: Path, where: str, default_name: str | None = None) -> ModelBackend:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where} must be a mapping with a 'kind'.")
    kind = spec.get("kind")
    if kind not in _KIND_KEYS:
        raise ConfigError(f"{where}: kind must be one of {sorted(_KIND_KEYS)}; got {kind!r}.")
    _keys(spec, _TIER | _KIND_KEYS[kind], where)
    name = spec.get("name") or default_name
    version = spec.get("version")
    version = None if version is None else str(version)
    from hindsight.serving import backends as b

    if kind == "python":
        return _python(spec, base, where, name, version)
    if kind == "sklearn":
        if "path" not in spec or "features" not in spec:
            raise ConfigError(f"{where}: a sklearn backend needs 'path' and 'features'.")
        return b.SklearnBackend(
            str(base / str(spec["path"])),
            features=list(spec["features"]),
            name=name or "model",
            version=version or "1",
            positive_class=spec.get("positive_class"),
        )
    if kind == "mlflow":
        if "uri" not in spec:
            raise ConfigError(f"{where}: an mlflow backend needs 'uri', e.g. models:/name/3.")
        return b.MlflowBackend(str(spec["uri"]), name=name, version=version)
    if kind == "rules":
        return _rules(spec, where, name or "rules", version or "1")
    opts = {k: spec[k] for k in _KIND_KEYS["mock"] if k in spec}
    return b.MockBackend(name=name or "mock", version=version or "1", **opts)


def _rules(spec: Mapping[str, Any], where: str, name: str, version: str) -> ModelBackend:
    from hindsight.serving.abstain import RiskRule
    from hindsight.serving.backends import RulesBackend

    if "default" not in spec:
        raise ConfigError(f"{where}: a rules backend needs a 'default' output.")
    rules = []
    for i, r in enumerate(spec.get("rules") or []):
        if not isinstance(r, Mapping) or "when" not in r or "output" not in r:
            raise ConfigError(
                f"{where}.rules[{i}] needs 'when' (e.g. 'amount > 10000') and 'output'."
            )
        unknown = set(r) - {"when", "output", "confidence"}
        if unknown:
            raise ConfigError(f"{where}.rules[{i}]: unknown keys {sorted(unknown)}.")
        rule = RiskRule.parse(str(r["when"]))
        rules.append((rule, r["output"], r.get("confidence")))
    default = spec["default"]
    if spec.get("default_confidence") is not None:
        default = ModelOutput(default, float(spec["default_confidence"]))
    return RulesBackend(rules, default, name=name, version=version)


def _python(
    spec: Mapping[str, Any], base: Path, where: str, name: str | None, version: str | None
) -> ModelBackend:
    from hindsight.serving.backends import CallableBackend

    ref = spec.get("ref")
    if not isinstance(ref, str) or ":" not in ref:
        raise ConfigError(f"{where}: a python backend needs 'ref: module:attribute'.")
    module_name, _, attr = ref.partition(":")
    folder = str(base.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import {module_name!r} ({exc}).") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{where}: {module_name!r} has no attribute {attr!r}.")
        obj = getattr(obj, part)
    args = spec.get("args") or {}
    if isinstance(obj, ModelBackend):
        backend = obj
    elif inspect.isclass(obj) and issubclass(obj, ModelBackend):
        backend = obj(**args)
    elif callable(obj):
        return CallableBackend(obj, name=name or attr, version=version or "1")
    else:
        raise ConfigError(f"{where}: {ref} is neither a ModelBackend nor a function.")
    if name:
        backend.name = name
    if version:
        backend.version = version
    return backend
