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


def git_state(cwd: str) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git work tree at ``cwd``, or (None, None) outside one.

    Not cached: a commit or an edit between two runs must show in the second. One
    ``git status --porcelain=v2 --branch`` gives both (one process, not two: this runs
    at the start of every experiment).
    """
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    if status.returncode != 0:
        return _git_head(cwd), None
    commit: str | None = None
    dirty = False
    for line in status.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line[len("# branch.oid "):].strip()
            if oid == "(initial)":  # a repository without commits
                return None, None
            commit = oid or None
        elif line and not line.startswith("#"):
            dirty = True
    if commit is None:
        return None, None
    return commit, dirty


def _git_head(cwd: str) -> str | None:
    """HEAD's commit alone, when ``git status`` failed (None outside a work tree)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (head.stdout.strip() or None) if head.returncode == 0 else None


def capture_environment() -> dict[str, Any]:
    """A JSON-safe description of the interpreter, machine and loaded ML packages."""
    env: dict[str, Any] = dict(_static_environment())
    env["packages"] = {
        name: _package_version(name, module)
        for name in _PACKAGES
        if (module := sys.modules.get(name)) is not None
    }
    cuda = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cuda is not None:
        env["cuda_visible_devices"] = cuda
    return env


# name -> (module object, version): the version of a module already imported cannot
# change, and reading a distribution's METADATA costs milliseconds (scipy's is long).
_VERSIONS: dict[str, tuple[Any, str]] = {}


def _package_version(name: str, module: Any) -> str:
    cached = _VERSIONS.get(name)
    if cached is not None and cached[0] is module:
        return cached[1]
    try:
        version = metadata.version(_DIST.get(name, name))
    except metadata.PackageNotFoundError:
        version = str(getattr(module, "__version__", "unknown"))
    _VERSIONS[name] = (module, version)
    return version


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
