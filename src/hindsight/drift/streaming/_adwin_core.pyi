"""Types of the compiled ADWIN core (``_adwin_core.c``); ``_adwin_py.PyCore`` is its twin."""

from collections.abc import Callable
from typing import Any

from hindsight.drift.streaming._adwin_py import State

class Core:
    def __init__(
        self,
        owner: Any,
        convert: Callable[[Any], float],
        delta: float,
        clock: int,
        max_buckets: int,
        min_window_length: int,
        grace_period: int,
    ) -> None: ...
    def update(self, x: Any) -> Any: ...
    def reset(self) -> None: ...
    def get_state(self) -> State: ...
    def set_state(self, state: State, /) -> None: ...
    @property
    def drift_detected(self) -> bool: ...
    @property
    def n_seen(self) -> int: ...
    @property
    def n_detections(self) -> int: ...
    @property
    def width(self) -> int: ...
