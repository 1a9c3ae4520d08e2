"""hindsight.training's __all__ is complete and importable."""

from __future__ import annotations

import hindsight.training
from hindsight.training import Detector, detectors


def test_all_is_complete_and_importable() -> None:
    exported = hindsight.training.__all__
    assert len(exported) == len(set(exported))
    for member in exported:
        assert getattr(hindsight.training, member) is not None, member


def test_every_detector_is_exported() -> None:
    classes = {
        name
        for name in detectors.__all__
        if isinstance(getattr(detectors, name), type)
        and issubclass(getattr(detectors, name), Detector)
    }
    assert classes <= set(hindsight.training.__all__)
    assert len(classes) == 19  # Detector + 18 detectors
