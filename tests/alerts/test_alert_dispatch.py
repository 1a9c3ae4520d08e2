"""send() fan-out and the Dispatcher's dedup window."""

from __future__ import annotations

import pytest

from hindsight.alerts import Alert, Delivery, Dispatcher, MemoryChannel, send
from hindsight.errors import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RaisingChannel:
    """A user channel that breaks the contract by raising."""

    name = "raiser"

    def send(self, alert: Alert) -> Delivery:
        raise RuntimeError("I was supposed to return a Delivery")


class WrongReturnChannel:
    name = "wrong"

    def send(self, alert: Alert) -> Delivery:
        return "ok"  # type: ignore[return-value]


def test_send_reaches_every_channel_even_after_failures() -> None:
    a, broken, b = (
        MemoryChannel(name="a"),
        MemoryChannel(name="down", fail=True),
        MemoryChannel(name="b"),
    )
    alert = Alert("disk full")
    deliveries = send(alert, [a, broken, RaisingChannel(), WrongReturnChannel(), b])
    assert [(d.channel, d.ok) for d in deliveries] == [
        ("a", True),
        ("down", False),
        ("raiser", False),
        ("wrong", False),
        ("b", True),
    ]
    assert deliveries[2].error == "RuntimeError: I was supposed to return a Delivery"
    assert a.alerts == [alert] and b.alerts == [alert]


def test_send_to_no_channels() -> None:
    assert send(Alert("x"), []) == []


def test_dedup_window_suppresses_repeats_until_it_passes() -> None:
    clock = Clock()
    ch = MemoryChannel()
    d = Dispatcher([ch], dedup_window_s=300, clock=clock)
    alert = Alert("drift", dedup_key="drift:price")
    assert len(d.send(alert)) == 1
    clock.now += 299
    assert d.is_suppressed(alert)
    assert d.send(alert) == []
    clock.now += 1
    assert len(d.send(alert)) == 1
    assert len(ch.alerts) == 2
    assert d.suppressed == 1


def test_dedup_is_per_key_and_alerts_without_a_key_always_go() -> None:
    clock = Clock()
    ch = MemoryChannel()
    d = Dispatcher([ch], clock=clock)
    for _ in range(3):
        d.send(Alert("a", dedup_key="k1"))
        d.send(Alert("b", dedup_key="k2"))
        d.send(Alert("c"))
    assert [a.title for a in ch.alerts] == ["a", "b", "c", "c", "c"]


def test_a_key_nobody_received_is_not_remembered() -> None:
    ch = MemoryChannel(fail=True)
    d = Dispatcher([ch], clock=Clock())
    alert = Alert("x", dedup_key="k")
    assert [x.ok for x in d.send(alert)] == [False]
    ch.fail = False
    assert [x.ok for x in d.send(alert)] == [True]
    assert d.send(alert) == []


def test_zero_window_turns_dedup_off_and_reset_forgets() -> None:
    ch = MemoryChannel()
    d = Dispatcher([ch], dedup_window_s=0, clock=Clock())
    d.send(Alert("x", dedup_key="k"))
    d.send(Alert("x", dedup_key="k"))
    assert len(ch.alerts) == 2
    d2 = Dispatcher([ch], clock=Clock())
    d2.send(Alert("x", dedup_key="k"))
    d2.reset()
    assert len(d2.send(Alert("x", dedup_key="k"))) == 1


def test_expired_keys_are_forgotten() -> None:
    clock = Clock()
    d = Dispatcher([MemoryChannel()], dedup_window_s=10, clock=clock)
    for i in range(5):
        d.send(Alert("x", dedup_key=f"k{i}"))
    clock.now += 10
    d.send(Alert("x", dedup_key="fresh"))
    assert list(d._last_sent) == ["fresh"]


@pytest.mark.parametrize("window", [-1, "300", True])
def test_bad_window(window: object) -> None:
    with pytest.raises(ConfigError, match="dedup_window_s"):
        Dispatcher([], dedup_window_s=window)  # type: ignore[arg-type]
