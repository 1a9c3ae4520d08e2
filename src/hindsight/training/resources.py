"""A resource monitor for the training guard: host memory, GPU memory, elapsed time.

Host memory is the process's resident set size from psutil. GPU memory is the share of
the device's memory in use, read through NVML (the ``nvidia-ml-py`` package, extra
``hindsight[gpu]``) when a GPU and its driver are there; elsewhere it is ``None`` and
:attr:`ResourceMonitor.gpu_status` says why. Elapsed time is wall-clock seconds since
the monitor was created (or :meth:`ResourceMonitor.restart`).
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from hindsight._validation import Interval, validate_params
from hindsight.errors import ConfigError

__all__ = ["ResourceMonitor", "ResourceSample"]

logger = logging.getLogger("hindsight.training")


@dataclass(frozen=True)
class ResourceSample:
    """One reading: host memory (bytes), GPU memory share in [0, 1] or ``None``, seconds.

    >>> ResourceSample(memory=2.5e9, gpu_memory=None, elapsed=12.0).elapsed
    12.0
    """

    memory: float
    gpu_memory: float | None
    elapsed: float


class ResourceMonitor:
    """Reads host memory, GPU memory and elapsed time, cheaply enough for every step.

    Pass it to :class:`~hindsight.training.TrainingGuard` (``resources=``): each update
    that does not carry ``memory`` / ``gpu_memory`` / ``elapsed`` itself gets them from
    the monitor, read every ``every`` updates.

    Parameters
    ----------
    every
        Read the resources every this many updates (>= 1, default 10): a psutil read
        costs microseconds, an NVML query tens of them.
    gpu
        Index of the GPU to watch (>= 0, default 0), or ``None`` to not read the GPU.

    Examples
    --------
    >>> monitor = ResourceMonitor(every=1, gpu=None)
    >>> sample = monitor.sample()
    >>> sample.memory > 0, sample.gpu_memory, sample.elapsed >= 0
    (True, None, True)
    """

    _constraints = {
        "every": Interval(int, 1, None, "left"),
        "gpu": Interval(int, 0, None, "left", allow_none=True),
    }

    def __init__(self, every: int = 10, gpu: int | None = 0) -> None:
        validate_params("ResourceMonitor", {"every": every, "gpu": gpu}, self._constraints)
        self.every = every
        self.gpu = gpu
        psutil = importlib.import_module("psutil")
        self._process = psutil.Process()
        self._nvml: Any = None
        self._handle: Any = None
        self.gpu_status = "not read (gpu=None)" if gpu is None else self._open_gpu(gpu)
        self.restart()

    def _open_gpu(self, index: int) -> str:
        try:
            nvml = importlib.import_module("pynvml")
        except ImportError:
            return "not read: nvidia-ml-py is not installed (pip install 'hindsight[gpu]')"
        try:
            nvml.nvmlInit()
            count = int(nvml.nvmlDeviceGetCount())
            if index >= count:
                raise ConfigError(
                    f"The 'gpu' parameter of ResourceMonitor is {index}, but NVML sees {count} "
                    "GPU(s). Pass an index below that, or gpu=None."
                )
            self._handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except nvml.NVMLError as exc:  # no driver, no device: the GPU reading is absent
            logger.info("GPU memory will not be watched: NVML failed: %s", exc)
            return f"not read: NVML failed ({exc})"
        self._nvml = nvml
        return f"reading GPU {index} through NVML"

    def restart(self) -> None:
        """Start the elapsed-time clock again (at the start of training)."""
        self._t0 = time.monotonic()
        self._calls = 0

    def sample(self) -> ResourceSample:
        """Read the resources now."""
        memory = float(self._process.memory_info().rss)
        gpu_share: float | None = None
        if self._handle is not None:
            info = self._nvml.nvmlDeviceGetMemoryInfo(self._handle)
            gpu_share = float(info.used) / float(info.total) if info.total else None
        return ResourceSample(memory, gpu_share, time.monotonic() - self._t0)

    def poll(self) -> ResourceSample | None:
        """A fresh reading on the first call and every ``every`` calls after; else ``None``.

        Readings are not repeated in between, so detectors fitting trends (memory growth)
        see only real measurements.
        """
        due = self._calls % self.every == 0
        self._calls += 1
        return self.sample() if due else None

    def close(self) -> None:
        """Release NVML (a no-op without a GPU)."""
        if self._nvml is not None:
            self._nvml.nvmlShutdown()
            self._nvml = self._handle = None

    def __repr__(self) -> str:
        return f"ResourceMonitor(every={self.every}, gpu={self.gpu}) [{self.gpu_status}]"
