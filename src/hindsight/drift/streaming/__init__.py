"""Streaming drift detectors: feed values one at a time (or an array at once), read drift.

Every detector has the same small surface (:class:`StreamingDetector`): ``update(x)``
returns the detector, ``drift_detected`` says whether that value completed a change,
``update_many(xs)`` returns the positions of the drifts in an array (the same ones
``update`` would find), ``n_seen``, ``n_detections``, ``params`` and ``reset()``. DDM
and EDDM also have ``warning_detected``.

>>> from hindsight.drift.streaming import get_detector
>>> detector = get_detector("page_hinkley", threshold=25.0)
>>> detector.update_many([0.0] * 100 + [1.0] * 100).tolist()
[128]
>>> available_detectors()
['adwin', 'bernoulli_cusum', 'cusum', 'ddm', 'eddm', 'kswin', 'page_hinkley']
"""

from __future__ import annotations

from typing import Any

from hindsight.drift.streaming.adwin import ADWIN
from hindsight.drift.streaming.base import REGISTRY, StreamingDetector
from hindsight.drift.streaming.bernoulli_cusum import BernoulliCUSUM
from hindsight.drift.streaming.cusum import CUSUM
from hindsight.drift.streaming.ddm import DDM
from hindsight.drift.streaming.eddm import EDDM
from hindsight.drift.streaming.kswin import KSWIN
from hindsight.drift.streaming.page_hinkley import PageHinkley
from hindsight.errors import DriftError

__all__ = [
    "ADWIN",
    "CUSUM",
    "DDM",
    "EDDM",
    "KSWIN",
    "BernoulliCUSUM",
    "PageHinkley",
    "StreamingDetector",
    "available_detectors",
    "get_detector",
]


def available_detectors() -> list[str]:
    """The stable names of the streaming detectors."""
    return sorted(REGISTRY)


def get_detector(name: str, **params: Any) -> StreamingDetector:
    """A configured detector by its stable name; the error lists the names that exist."""
    cls = REGISTRY.get(name)
    if cls is None:
        raise DriftError(
            f"No streaming detector named {name!r}. Available: {', '.join(sorted(REGISTRY))}."
        )
    return cls(**params)
