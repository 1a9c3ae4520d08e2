"""Build hook: compile ADWIN's C core (``hindsight.drift.streaming._adwin_core``) into the wheel.

The extension is optional. Where it cannot be built (no C compiler or no Python headers)
the hook warns and the wheel stays pure Python; ``hindsight.drift.streaming.adwin`` then
runs its Python twin, which gives the same results more slowly. Set
``HINDSIGHT_NO_EXTENSIONS=1`` to skip the build, or ``HINDSIGHT_REQUIRE_EXTENSIONS=1`` to
make a failed build an error.

A regular wheel gets the compiled module from a temporary build folder. An editable
install imports ``hindsight`` from ``src/``, so there the module is written next to its
source (git-ignored), replacing any older build.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MODULE = "hindsight.drift.streaming._adwin_core"
SOURCE = Path("src", *MODULE.split(".")).with_suffix(".c")
# Fused multiply-adds (or fast-math reordering) would round differently from the Python and
# NumPy paths.
GCC_FLAGS = ["-ffp-contract=off", "-fno-fast-math"]


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def compile_extension(root: Path, build_dir: Path) -> Path:
    """Compile the extension with setuptools' ``build_ext``; return the built file."""
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    flags = [] if os.name == "nt" else GCC_FLAGS
    ext = Extension(MODULE, [str(root / SOURCE)], extra_compile_args=flags)
    dist = Distribution({"name": "hindsight-adwin-core", "ext_modules": [ext]})
    cmd = build_ext(dist)
    cmd.build_lib = str(build_dir / "lib")
    cmd.build_temp = str(build_dir / "tmp")
    cmd.ensure_finalized()
    cmd.run()
    return Path(cmd.get_ext_fullpath(MODULE))


class CustomBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or _flag("HINDSIGHT_NO_EXTENSIONS"):
            return
        root = Path(self.root)
        package_dir = (root / SOURCE).parent
        if version == "editable":
            # A stale build would shadow both the new source and the Python fallback.
            for old in package_dir.glob("_adwin_core.*"):
                if old.suffix in (".so", ".pyd"):
                    old.unlink()
        build_dir = Path(tempfile.mkdtemp(prefix="hindsight-ext-"))
        try:
            built = compile_extension(root, build_dir)
        except Exception as exc:
            shutil.rmtree(build_dir, ignore_errors=True)
            if _flag("HINDSIGHT_REQUIRE_EXTENSIONS"):
                raise
            self.app.display_warning(
                f"hindsight: the compiled ADWIN core was not built ({type(exc).__name__}: "
                f"{exc}); ADWIN.update will run in pure Python (same results, slower)."
            )
            return
        target = f"{SOURCE.parent.relative_to('src').as_posix()}/{built.name}"
        if version == "editable":
            shutil.copy2(built, package_dir / built.name)
            shutil.rmtree(build_dir, ignore_errors=True)
        else:
            self._build_dir = build_dir
            build_data["force_include"][str(built)] = target
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        build_dir = getattr(self, "_build_dir", None)
        if build_dir is not None:
            shutil.rmtree(build_dir, ignore_errors=True)
