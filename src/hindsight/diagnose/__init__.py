"""Why did this job fail? Failure taxonomy, classification, fingerprints and advice.

>>> from hindsight.diagnose import diagnose
>>> d = diagnose("OSError: [Errno 28] No space left on device: '/ckpt/step_900.pt'")
>>> d.category
'infra.disk_full'

:func:`diagnose` takes a caught exception or the tail of a process's log (any
language), plus the run's config, and returns a :class:`Diagnosis`: a category from
the taxonomy (:data:`CATEGORIES`), a specific likely cause, the evidence that decided
it, config issues, concrete recommendations and a :class:`Fingerprint` that groups
repeats of the same failure.
"""

from __future__ import annotations

from hindsight.diagnose.config_checks import ConfigIssue, check_config
from hindsight.diagnose.diagnose import Diagnosis, diagnose
from hindsight.diagnose.evidence import Evidence, Frame
from hindsight.diagnose.fingerprint import Fingerprint, fingerprint, mask
from hindsight.diagnose.settings import flatten_config
from hindsight.diagnose.taxonomy import CATEGORIES, Category

__all__ = [
    "CATEGORIES",
    "Category",
    "ConfigIssue",
    "Diagnosis",
    "Evidence",
    "Fingerprint",
    "Frame",
    "check_config",
    "diagnose",
    "fingerprint",
    "flatten_config",
    "mask",
]
