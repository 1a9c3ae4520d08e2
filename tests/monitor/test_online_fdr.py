"""LORD++ online FDR: the gamma sequence, the levels by hand, and its error rates simulated."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hindsight.errors import ConfigError
from hindsight.monitor.online_fdr import LordPlusPlus, lord_gamma

C = 0.07720838


def _gamma(j: int) -> float:
    """Javanmard and Montanari's gamma_j, written out again from the paper's formula."""
    return C * math.log(max(j, 2)) / (j * math.exp(math.sqrt(math.log(j))))


def _levels_by_hand(alpha: float, w0: float, discoveries: list[int], until: int) -> list[float]:
    """alpha_t for t = 1..until, from the LORD++ formula with the given discovery times."""
    out = []
    for t in range(1, until + 1):
        taus = [tau for tau in discoveries if tau < t]
        level = _gamma(t) * w0
        if taus:
            level += (alpha - w0) * _gamma(t - taus[0])
            level += alpha * sum(_gamma(t - tau) for tau in taus[1:])
        out.append(level)
    return out


def _gamma_array(n: int) -> np.ndarray:
    """gamma_0..gamma_n with gamma_0 = 0 (never used), vectorised."""
    j = np.arange(1, n + 1, dtype=np.float64)
    g = C * np.log(np.maximum(j, 2.0)) / (j * np.exp(np.sqrt(np.log(j))))
    return np.concatenate([[0.0], g])


def _lord_streams(p: np.ndarray, alpha: float) -> np.ndarray:
    """LORD++ (w0 = alpha / 2) on every row of ``p`` at once; the discoveries."""
    n_streams, horizon = p.shape
    w0 = alpha / 2
    g = _gamma_array(horizon)
    found = np.zeros(p.shape, dtype=bool)
    first = np.zeros(n_streams, dtype=np.int64)  # time of the first discovery, 0: none yet
    for t in range(1, horizon + 1):
        # Every earlier discovery at time s earns alpha * gamma_{t - s} ...
        earned = found[:, : t - 1].astype(np.float64) @ g[t - 1 : 0 : -1] if t > 1 else 0.0
        # ... except the first, which earns alpha - w0.
        first_gamma = np.where(first > 0, g[np.maximum(t - first, 0)], 0.0)
        level = g[t] * w0 + alpha * earned - w0 * first_gamma
        hit = p[:, t - 1] <= level
        found[:, t - 1] = hit
        first = np.where((first == 0) & hit, t, first)
    return found


def _run(lord: LordPlusPlus, p_values: list[float]) -> list[bool]:
    return [lord.test(p) for p in p_values]


# --------------------------------------------------------------------------- gamma


@pytest.mark.parametrize("j", [1, 2, 3, 7, 10, 100, 12_345, 10**6])
def test_lord_gamma_is_the_javanmard_montanari_sequence(j: int) -> None:
    expected = 0.07720838 * math.log(max(j, 2)) / (j * math.exp(math.sqrt(math.log(j))))
    assert lord_gamma(j) == pytest.approx(expected, rel=1e-12)


def test_lord_gamma_first_terms_by_value() -> None:
    # gamma_1 = C log 2 (log 1 = 0), gamma_2 = C log 2 / (2 exp(sqrt(log 2))).
    assert lord_gamma(1) == pytest.approx(C * math.log(2.0), rel=1e-12)
    assert lord_gamma(2) == pytest.approx(
        C * math.log(2.0) / (2.0 * math.exp(math.sqrt(math.log(2.0)))), rel=1e-12
    )
    assert lord_gamma(1) == pytest.approx(0.0535168, rel=1e-6)


@pytest.mark.parametrize("j", [0, -1, -100])
def test_lord_gamma_rejects_j_below_one(j: int) -> None:
    with pytest.raises(ConfigError, match="j must be >= 1"):
        lord_gamma(j)


def test_lord_gamma_partial_sum_is_below_one() -> None:
    g = _gamma_array(10**6)[1:]
    assert np.all(g > 0)
    total = float(g.sum())
    assert total < 1.0
    # The constant makes the infinite sum one; a million terms get about half of it.
    assert total > 0.5
    # The vectorised terms are the function's.
    for j in (1, 2, 5, 999, 10**6):
        assert g[j - 1] == pytest.approx(lord_gamma(j), rel=1e-12)


def test_lord_gamma_decreases_from_the_second_term() -> None:
    g = _gamma_array(5000)[2:]
    assert np.all(np.diff(g) < 0)


# --------------------------------------------------------------------------- levels


def test_first_level_is_gamma_one_times_w0() -> None:
    lord = LordPlusPlus(alpha=0.05)
    assert lord.w0 == pytest.approx(0.025)
    assert lord.level() == pytest.approx(_gamma(1) * 0.025, rel=1e-12)
    assert lord.level() == pytest.approx(0.0013379, rel=1e-4)


@pytest.mark.parametrize(("alpha", "w0"), [(0.05, None), (0.1, 0.01), (0.2, 0.2), (0.05, 0.0)])
def test_levels_match_the_lord_plus_plus_formula(alpha: float, w0: float | None) -> None:
    # p = 0 is always a discovery (0 <= level) and p = 1 never is (levels stay below 1):
    # discoveries land exactly at these times.
    at = [3, 4, 9, 20, 21, 22, 40]
    horizon = 60
    p_values = [0.0 if t in at else 1.0 for t in range(1, horizon + 1)]
    lord = LordPlusPlus(alpha=alpha, w0=w0)
    w = alpha / 2 if w0 is None else w0
    expected = _levels_by_hand(alpha, w, at, horizon)
    got = []
    found = []
    for p in p_values:
        got.append(lord.level())
        found.append(lord.test(p))
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-18)
    assert [t for t, f in enumerate(found, start=1) if f] == at
    assert lord.discoveries == at
    assert lord.t == horizon
    # Levels stay within alpha: the wealth spent never exceeds what was earned.
    assert max(got) <= alpha


def test_a_discovery_raises_the_next_levels() -> None:
    quiet = LordPlusPlus(alpha=0.05)
    loud = LordPlusPlus(alpha=0.05)
    quiet.test(0.9)
    loud.test(1e-6)
    assert loud.discoveries == [1]
    # After the first discovery the next level gains (alpha - w0) * gamma_1.
    assert loud.level() - quiet.level() == pytest.approx(0.025 * _gamma(1), rel=1e-12)
    quiet.test(0.9)
    loud.test(1e-6)
    assert loud.discoveries == [1, 2]
    # The second discovery earns the full alpha * gamma_{t - tau_2}.
    expected = _gamma(3) * 0.025 + 0.025 * _gamma(2) + 0.05 * _gamma(1)
    assert loud.level() == pytest.approx(expected, rel=1e-12)
    assert quiet.level() == pytest.approx(_gamma(3) * 0.025, rel=1e-12)


def test_a_p_value_equal_to_the_level_is_a_discovery() -> None:
    lord = LordPlusPlus(alpha=0.05)
    level = lord.level()
    assert lord.test(level) is True
    lord2 = LordPlusPlus(alpha=0.05)
    assert lord2.test(math.nextafter(level, 1.0)) is False
    assert lord2.t == 1
    assert lord2.discoveries == []


def test_levels_with_seeded_p_values_match_by_hand() -> None:
    rng = np.random.default_rng(11)
    # Small p-values now and then so that some, not all, are discoveries.
    p = np.where(rng.uniform(size=400) < 0.15, rng.uniform(0, 1e-3, 400), rng.uniform(size=400))
    lord = LordPlusPlus(alpha=0.1)
    levels = []
    for x in p.tolist():
        levels.append(lord.level())
        lord.test(x)
    taus = lord.discoveries
    assert 5 <= len(taus) < 200
    expected = _levels_by_hand(0.1, 0.05, taus, 400)
    assert levels == pytest.approx(expected, rel=1e-12)
    # And each discovery is exactly where p <= level.
    assert taus == [t for t in range(1, 401) if p[t - 1] <= expected[t - 1]]


# --------------------------------------------------------------------------- state


def test_to_dict_from_dict_continues_identically() -> None:
    rng = np.random.default_rng(3)
    p = np.where(rng.uniform(size=300) < 0.2, rng.uniform(0, 1e-3, 300), rng.uniform(size=300))
    first, rest = p[:150].tolist(), p[150:].tolist()
    lord = LordPlusPlus(alpha=0.05, w0=0.01)
    _run(lord, first)
    assert lord.discoveries  # the state carries discovery times
    state = json.loads(json.dumps(lord.to_dict()))
    assert state == {"alpha": 0.05, "w0": 0.01, "t": 150, "discoveries": lord.discoveries}
    again = LordPlusPlus.from_dict(state)
    assert again == lord
    levels_a, levels_b = [], []
    for x in rest:
        levels_a.append(lord.level())
        levels_b.append(again.level())
        assert lord.test(x) == again.test(x)
    assert levels_a == levels_b
    assert lord.to_dict() == again.to_dict()
    assert lord.t == again.t == 300


def test_from_dict_without_discoveries() -> None:
    lord = LordPlusPlus.from_dict({"alpha": 0.05, "w0": 0.025, "t": 7})
    assert lord.discoveries == []
    assert lord.level() == pytest.approx(_gamma(8) * 0.025, rel=1e-12)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5])
def test_alpha_outside_unit_interval_rejected(alpha: float) -> None:
    with pytest.raises(ConfigError, match="alpha must be in"):
        LordPlusPlus(alpha=alpha)


@pytest.mark.parametrize("w0", [0.06, 1.0, -0.01])
def test_w0_outside_zero_alpha_rejected(w0: float) -> None:
    with pytest.raises(ConfigError, match="w0 must be in"):
        LordPlusPlus(alpha=0.05, w0=w0)


@pytest.mark.parametrize("p", [-0.01, 1.01, math.inf, -math.inf])
def test_p_value_outside_unit_interval_rejected(p: float) -> None:
    lord = LordPlusPlus()
    with pytest.raises(ConfigError, match="p-value must be in"):
        lord.test(p)
    assert lord.t == 0


def test_missing_p_values_use_no_level() -> None:
    lord = LordPlusPlus(alpha=0.05)
    before = lord.level()
    assert lord.test(None) is False
    assert lord.test(math.nan) is False
    assert lord.test(float("nan")) is False
    assert lord.t == 0
    assert lord.discoveries == []
    assert lord.level() == before
    assert lord.test(0.0) is True
    assert lord.test(None) is False
    assert lord.t == 1
    assert lord.discoveries == [1]


# --------------------------------------------------------------------------- simulation


def test_vectorised_reimplementation_agrees_with_the_class() -> None:
    rng = np.random.default_rng(5)
    alt = rng.uniform(size=(60, 300)) < 0.1
    p = np.where(alt, rng.beta(0.05, 1.0, size=alt.shape), rng.uniform(size=alt.shape))
    vec = _lord_streams(p, 0.05)
    assert vec.any()
    for row, want in zip(p.tolist(), vec, strict=True):
        lord = LordPlusPlus(alpha=0.05)
        assert _run(lord, row) == want.tolist()


def test_global_null_rarely_any_discovery_while_fixed_alpha_always_alarms() -> None:
    alpha, n_streams, horizon = 0.05, 2000, 300
    rng = np.random.default_rng(2017)
    p = rng.uniform(size=(n_streams, horizon))
    any_found = np.zeros(n_streams, dtype=bool)
    for i, row in enumerate(p.tolist()):
        lord = LordPlusPlus(alpha=alpha)
        any_found[i] = any(_run(lord, row))
    # Under the global null every discovery is false: FDR = P(any discovery) <= alpha.
    share = float(any_found.mean())
    se = math.sqrt(alpha * (1 - alpha) / n_streams)
    assert share <= alpha + 3 * se
    # Before the first discovery LORD++ spends at most w0 * sum(gamma) < alpha / 2.
    assert share <= alpha / 2 + 3 * se
    # Each window at a fixed alpha: 1 - 0.95 ** 300 of streams raise a false alarm.
    fixed = float((p <= alpha).any(axis=1).mean())
    assert fixed > 0.9


def test_mixture_controls_fdr_and_finds_signals() -> None:
    alpha, n_streams, horizon = 0.05, 2000, 300
    rng = np.random.default_rng(42)
    alt = rng.uniform(size=(n_streams, horizon)) < 0.1
    p = np.where(alt, rng.beta(0.05, 1.0, size=alt.shape), rng.uniform(size=alt.shape))
    found = _lord_streams(p, alpha)
    # The vectorised run is the class's (checked on a subset of streams).
    for row, want in zip(p[:40].tolist(), found[:40], strict=True):
        assert _run(LordPlusPlus(alpha=alpha), row) == want.tolist()
    r = found.sum(axis=1)
    v = (found & ~alt).sum(axis=1)
    fdp = v / np.maximum(r, 1)
    fdr = float(fdp.mean())
    se = float(fdp.std(ddof=1) / math.sqrt(n_streams))
    assert fdr <= alpha + 3 * se
    power = float((found & alt).sum() / alt.sum())
    assert power > 0.1
    assert (r > 0).mean() > 0.9
    # Testing each at alpha instead: many more false discoveries.
    naive = p <= alpha
    naive_fdp = (naive & ~alt).sum(axis=1) / np.maximum(naive.sum(axis=1), 1)
    assert naive_fdp.mean() > 2 * alpha
