"""What a run ran on: git commit and dirty flag, Python, platform, key packages."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from typing import Any

__all__ = ["capture_environment", "git_state", "hostname"]

# Versions worth knowing when a run fails; looked up only if already imported.
_PACKAGES = (
    "numpy", "scipy", "pandas", "polars", "sklearn", "torch", "lightning", "transformers",
    "tensorflow", "keras", "jax", "xgboost", "lightgbm", "mlflow",
)
_DIST = {"sklearn": "scikit-learn"}


@functools.cache
def hostname() -> str:
    """This machine's name."""
    return socket.gethostname()


@functools.lru_cache(maxsize=16)
def git_state(cwd: str) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git work tree at ``cwd``, or (None, None) outside one."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return head.stdout.strip() or None, dirty


def capture_environment() -> dict[str, Any]:
    """A JSON-safe description of the interpreter, machine and loaded ML packages."""
    env: dict[str, Any] = dict(_static_environment())
    versions = {}
    for name in _PACKAGES:
        if name in sys.modules:
            try:
                versions[name] = metadata.version(_DIST.get(name, name))
            except metadata.PackageNotFoundError:
                versions[name] = getattr(sys.modules[name], "__version__", "unknown")
    env["packages"] = versions
    cuda = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cuda is not None:
        env["cuda_visible_devices"] = cuda
    return env


@functools.cache
def _static_environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "host": hostname(),
        "cpu_count": os.cpu_count(),
        "executable": sys.executable,
    }
