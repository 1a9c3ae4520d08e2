"""False-alarm control across repeated checks: LORD++ online FDR.

A monitor tests every window, forever. Testing each at a fixed ``alpha`` means a
false alarm every ``1 / alpha`` windows of no change at all (about one a day at 5 % on
hourly windows). LORD++ (Ramdas, Yang, Wainwright and Jordan, "Online control of the
false discovery rate with decaying memory", NeurIPS 2017, building on Javanmard and
Montanari's LORD, Annals of Statistics 2018) gives the ``t``-th test the level

    alpha_t = gamma_t * w0 + (alpha - w0) * gamma_{t - tau_1} + alpha * sum_{j >= 2} gamma_{t - tau_j}

where ``tau_j`` are the times of earlier discoveries and ``gamma`` is a fixed
non-negative sequence summing to at most one. Each discovery earns back some level for
later tests; the false discovery rate over the whole stream stays at or below
``alpha`` for independent p-values (and the modified FDR in general). The sequence is
the one Javanmard and Montanari recommend, ``gamma_j = 0.07720838 log(max(j, 2)) /
(j exp(sqrt(log j)))``, with ``w0 = alpha / 2``.

The state (tests so far, discovery times) is plain JSON, so a monitor's runs carry it
across restarts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hindsight.errors import ConfigError

__all__ = ["LordPlusPlus", "lord_gamma"]

_GAMMA_C = 0.07720838


def lord_gamma(j: int) -> float:
    """The ``j``-th term (``j >= 1``) of Javanmard and Montanari's gamma sequence."""
    if j < 1:
        raise ConfigError(f"lord_gamma: j must be >= 1. Got {j!r}.")
    return _GAMMA_C * math.log(max(j, 2)) / (j * math.exp(math.sqrt(math.log(j))))


@dataclass
class LordPlusPlus:
    """LORD++ over a stream of tests: ``level()`` for the next one, ``test(p)`` to run it.

    >>> lord = LordPlusPlus(alpha=0.05)
    >>> round(lord.level(), 6)  # gamma_1 * alpha / 2
    0.001338
    >>> lord.test(1e-4), lord.test(0.5)
    (True, False)
    >>> lord.t, lord.discoveries
    (2, [1])
    """

    alpha: float = 0.05
    w0: float | None = None
    t: int = 0
    discoveries: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ConfigError(f"LORD++: alpha must be in (0, 1). Got {self.alpha!r}.")
        if self.w0 is None:
            self.w0 = self.alpha / 2
        if not 0 <= self.w0 <= self.alpha:
            raise ConfigError(f"LORD++: w0 must be in [0, alpha]. Got {self.w0!r}.")

    def level(self) -> float:
        """The level of the next test, ``alpha_{t+1}``."""
        assert self.w0 is not None
        nxt = self.t + 1
        level = lord_gamma(nxt) * self.w0
        for i, tau in enumerate(self.discoveries):
            weight = (self.alpha - self.w0) if i == 0 else self.alpha
            level += weight * lord_gamma(nxt - tau)
        return level

    def test(self, p_value: float | None) -> bool:
        """Run the next test on ``p_value``; ``None`` (nothing to test) uses no level."""
        if p_value is None or math.isnan(p_value):
            return False
        if not 0 <= p_value <= 1:
            raise ConfigError(f"LORD++: a p-value must be in [0, 1]. Got {p_value!r}.")
        level = self.level()
        self.t += 1
        found = p_value <= level
        if found:
            self.discoveries.append(self.t)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "w0": self.w0,
            "t": self.t,
            "discoveries": list(self.discoveries),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LordPlusPlus:
        return cls(
            alpha=float(d["alpha"]),
            w0=float(d["w0"]),
            t=int(d["t"]),
            discoveries=[int(x) for x in d.get("discoveries", [])],
        )
