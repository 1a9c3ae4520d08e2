"""Action rates per window and segment, their shifts from a reference, and RateWatch."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from hindsight.errors import ConfigError
from hindsight.monitor.decisions import (
    RateWatch,
    action_rates,
    benjamini_hochberg,
)
from hindsight.monitor.windows import WindowSpec

ACTIONS = np.array(["approve", "block", "review"])
# P(action | segment): columns follow ACTIONS.
NORMAL = {"genuine": [0.95, 0.02, 0.03], "fraud": [0.20, 0.60, 0.20]}
SALE = {"genuine": [0.90, 0.07, 0.03], "fraud": [0.20, 0.60, 0.20]}
DAY = datetime(2026, 12, 21, tzinfo=UTC).timestamp()


def _draw(
    rng: np.random.Generator, n: int, probs: dict[str, list[float]]
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` transactions: 90 % genuine, 10 % fraud, actions drawn from ``probs``."""
    seg = np.where(rng.random(n) < 0.9, "genuine", "fraud")
    cum = np.cumsum(np.array([probs[s] for s in ("genuine", "fraud")]), axis=1)
    rows = cum[(seg == "fraud").astype(int)]
    pick = (rng.random(n)[:, None] > rows).sum(axis=1)
    return seg, ACTIONS[np.minimum(pick, 2)]


def _day(rng: np.random.Generator, sale_hours: range) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """24 hourly windows of 2026-12-21; the sale hours have 3x the traffic and SALE rates."""
    ts, segs, acts = [], [], []
    for hour in range(24):
        sale = hour in sale_hours
        n = 4500 if sale else 1500
        seg, act = _draw(rng, n, SALE if sale else NORMAL)
        ts.append(DAY + hour * 3600 + rng.uniform(0, 3600, n))
        segs.append(seg)
        acts.append(act)
    return np.concatenate(ts), np.concatenate(segs), np.concatenate(acts)


@pytest.fixture(scope="module")
def reference() -> tuple[np.ndarray, np.ndarray]:
    return _draw(np.random.default_rng(11), 30_000, NORMAL)


def test_counts_match_a_counter_per_window_and_segment() -> None:
    rng = np.random.default_rng(0)
    n = 5000
    acts = rng.choice(
        np.array(["approve", "block", "recommend", "hold"]), n, p=[0.5, 0.2, 0.2, 0.1]
    )
    win = rng.integers(3, 11, n)
    seg = rng.choice(np.array(["new", "returning", "vip"]), n)
    seg[win == 7] = "new"  # window 7 has only one segment: the other two must be absent
    res = action_rates(acts, window=win, segments=seg)
    brute = Counter(zip(win.tolist(), seg.tolist(), acts.tolist(), strict=True))
    cells = {(w, s) for w, s, _ in brute}
    assert {(r.window, r.segment) for r in res.rows} == cells
    for r in res.rows:
        for a in res.actions:
            assert r.counts[a] == brute[(r.window, r.segment, a)]
        assert r.n == sum(r.counts.values())
        assert r.rates["block"] == pytest.approx(r.counts["block"] / r.n, rel=1e-15)
        assert r.comparisons == ()
    assert [(r.window, r.segment) for r in res.rows] == sorted(cells)
    plain = action_rates(acts, window=win)
    by_window = Counter(zip(win.tolist(), acts.tolist(), strict=True))
    for r in plain.rows:
        assert r.segment is None
        assert {a: r.counts[a] for a in plain.actions} == {
            a: by_window[(r.window, a)] for a in plain.actions
        }


def test_bh_matches_scipy_and_is_applied_across_all_comparisons(
    reference: tuple[np.ndarray, np.ndarray],
) -> None:
    p = np.random.default_rng(3).uniform(0, 0.2, 200) ** 2
    p[:5] = [0.0, 1.0, 0.03, 0.03, 1e-12]
    np.testing.assert_allclose(benjamini_hochberg(p), false_discovery_control(p), rtol=1e-13)

    rng = np.random.default_rng(5)
    ts, seg, act = _day(rng, range(10, 14))
    ref_seg, ref_act = reference
    res = action_rates(
        act, window=ts, spec=WindowSpec(every="1h"), segments=seg,
        reference=ref_act, reference_segments=ref_seg,
    )  # fmt: skip
    comps = [c for r in res.rows for c in r.comparisons]
    assert len(comps) == 24 * 2 * 3 == res.n_tests
    ps = np.array([c.p_value for c in comps])
    np.testing.assert_allclose([c.q_value for c in comps], false_discovery_control(ps), rtol=1e-12)


def test_festive_sale_flags_genuine_block_rate_only_in_sale_hours(
    reference: tuple[np.ndarray, np.ndarray],
) -> None:
    rng = np.random.default_rng(2026)
    sale = range(10, 14)
    ts, seg, act = _day(rng, sale)
    ref_seg, ref_act = reference
    res = action_rates(
        act, window=ts, spec=WindowSpec(every="1h"), segments=seg,
        reference=ref_act, reference_segments=ref_seg,
    )  # fmt: skip
    # Traffic rose in the sale hours too: the counts are up for every action.
    assert res.get(int(DAY // 3600) + 10, "genuine").n > 2 * res.get(int(DAY // 3600), "genuine").n
    flagged = {(c.window - int(DAY // 3600), c.segment, c.action) for c in res.shifts()}
    block_genuine = {(h, "genuine", "block") for h in sale}
    assert block_genuine <= flagged
    assert {h for h, _, _ in flagged} == set(sale)
    assert {s for _, s, _ in flagged} == {"genuine"}
    first = res.get(int(DAY // 3600) + 10, "genuine")
    block = next(c for c in first.comparisons if c.action == "block")
    assert block.shifted and block.difference is not None and block.difference > 0.03
    assert block.reason.startswith("block rate for segment 'genuine' 2.")
    assert "in window 2026-12-21 10:00; p=" in block.reason
    assert " -> 7." in block.reason or " -> 6." in block.reason
    json.dumps(res.to_dict())


def test_stable_week_has_no_flags(reference: tuple[np.ndarray, np.ndarray]) -> None:
    rng = np.random.default_rng(7)
    parts = [_day(rng, range(0)) for _ in range(7)]
    ts = np.concatenate([p[0] + 86_400 * d for d, p in enumerate(parts)])
    seg = np.concatenate([p[1] for p in parts])
    act = np.concatenate([p[2] for p in parts])
    ref_seg, ref_act = reference
    res = action_rates(
        act, window=ts, spec=WindowSpec(every="6h"), segments=seg,
        reference=ref_act, reference_segments=ref_seg,
    )  # fmt: skip
    assert res.n_tests == 28 * 2 * 3
    assert res.shifts() == []
    assert all("within chance" in c.reason for r in res.rows for c in r.comparisons)


def test_reference_needs_segments_and_small_cells_are_not_tested() -> None:
    acts = np.array(["a", "b"] * 20)
    with pytest.raises(ConfigError, match="reference_segments"):
        action_rates(acts, window=np.zeros(40, int), segments=acts, reference=acts)
    res = action_rates(acts, window=np.zeros(40, int), reference=acts, min_samples=50)
    assert res.n_tests == 0
    assert all(c.p_value is None and not c.shifted for c in res.rows[0].comparisons)
    with pytest.raises(ConfigError, match="integer window ids"):
        action_rates(acts, window=np.linspace(0, 1, 40))


def _rate_stream(rng: np.random.Generator, n_windows: int, change: int | None) -> np.ndarray:
    """Per-window block rates over 2,000 requests: 2 % rising to 3.5 % at ``change``."""
    p = np.full(n_windows, 0.02)
    if change is not None:
        p[change:] = 0.035
    return rng.binomial(2000, p) / 2000


@pytest.mark.parametrize("detector", ["cusum", "page_hinkley"])
def test_rate_watch_fires_soon_after_a_change_and_not_before(detector: str) -> None:
    params = {"cusum": {"warmup": 20}, "page_hinkley": {"delta": 0.002, "threshold": 0.03}}
    watch = RateWatch("block", detector, **params[detector])
    for seed in range(5):
        rng = np.random.default_rng(seed)
        stable = watch.watch_rates(_rate_stream(rng, 80, None))
        assert not stable.fired and stable.window is None
        alarm = watch.watch_rates(_rate_stream(rng, 80, 50), windows=np.arange(100, 180))
        assert alarm.fired
        assert alarm.window is not None and 150 <= alarm.window <= 154
        assert alarm.windows[0] == alarm.window


def test_rate_watch_on_action_rates_and_on_requests() -> None:
    rng = np.random.default_rng(1)
    n_win, per = 60, 400
    win = np.repeat(np.arange(n_win), per)
    p_block = np.where(win >= 40, 0.6, 0.3)
    acts = np.where(rng.random(win.size) < p_block, "block", "approve")
    seg = np.where(rng.random(win.size) < 0.5, "genuine", "fraud")
    res = action_rates(acts, window=win, segments=seg)
    alarm = RateWatch("block", warmup=15).watch(res, segment="genuine")
    assert alarm.fired and alarm.segment == "genuine"
    assert alarm.window is not None and 40 <= alarm.window <= 43
    assert "segment 'genuine' in window" in alarm.reason
    # Per-request 0/1 indicators, shuffled within the log: ordered by window first.
    shuffle = rng.permutation(win.size)
    req = RateWatch("block").watch_requests(acts[shuffle], window=win[shuffle])
    assert req.fired and req.n_values == win.size
    assert req.window is not None and 40 <= req.window <= 41
    quiet = RateWatch("block").watch_requests(acts[win < 40], window=win[win < 40])
    assert not quiet.fired
    json.dumps(alarm.to_dict())
    with pytest.raises(ConfigError, match="detector"):
        RateWatch("block", "adwin2")
    with pytest.raises(ConfigError, match="bad parameters"):
        RateWatch("block", "cusum", nonsense=1)
