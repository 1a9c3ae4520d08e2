"""What the Lightning and Hugging Face callbacks share: arguments, state and results.

Both wrap a :class:`~hindsight.training.integrations.torch.TorchWatch` on the model being
trained and feed it once per optimizer step; this base checks their common arguments
and holds the verdicts, the stop and the watch. Framework-free, so it imports neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from hindsight._validation import Interval, Options, validate_params
from hindsight.errors import ConfigError
from hindsight.training.guard import TrainingGuard, Verdict
from hindsight.training.integrations.torch import StepSignals, TorchWatch

__all__ = ["WatchedCallback"]


class WatchedCallback:
    """Common state of the framework callbacks that watch a PyTorch model.

    >>> cb = WatchedCallback()
    >>> cb._setup(None, keys={"val_loss_key": "val_loss"}, restore_best_weights=False,
    ...           activations=True, every=10)
    >>> cb.last_verdict, cb.stopped_reason, cb.every
    (None, None, 10)
    """

    _constraints: ClassVar[Mapping[str, Interval | Options]] = {
        "every": Interval(int, 1, None, "left")
    }

    def _setup(
        self,
        guard: TrainingGuard | None,
        *,
        keys: Mapping[str, object],
        restore_best_weights: bool,
        activations: bool,
        every: int,
    ) -> None:
        """Check the arguments (ConfigError naming the bad one) and reset the state."""
        if guard is not None and not isinstance(guard, TrainingGuard):
            raise ConfigError(
                f"The 'guard' parameter of GuardCallback must be a TrainingGuard or None. "
                f"Got {guard!r}; pass e.g. TrainingGuard(patience=5)."
            )
        for name, key in keys.items():
            if not isinstance(key, str) or not key:
                raise ConfigError(
                    f"The {name!r} parameter of GuardCallback must be a non-empty string, "
                    f"the name the framework logs it under. Got {key!r}."
                )
        for name, flag in (
            ("restore_best_weights", restore_best_weights),
            ("activations", activations),
        ):
            if not isinstance(flag, bool):
                raise ConfigError(
                    f"The {name!r} parameter of GuardCallback must be a bool. Got {flag!r}."
                )
        validate_params("GuardCallback", {"every": every}, self._constraints)
        self.guard = guard if guard is not None else TrainingGuard()
        self.restore_best_weights = restore_best_weights
        self.activations = activations
        self.every = int(every)
        self.verdicts: list[Verdict] = []
        self.stopped_reason: str | None = None
        self.stopped_step: int | None = None
        self._watch: TorchWatch | None = None
        self._pending: StepSignals | None = None
        self._last_fed: int | None = None
        self._best_step: int | None = None

    @property
    def last_verdict(self) -> Verdict | None:
        """The latest verdict (``None`` before the first)."""
        return self.verdicts[-1] if self.verdicts else None

    @property
    def watch(self) -> TorchWatch | None:
        """The watch on the model while training (``None`` outside training)."""
        return self._watch
