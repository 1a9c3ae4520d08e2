"""Dataset profiles: computed once, merged, stored by name, reused as references.

Dataset checks live in :mod:`hindsight.data.checks` (``hindsight.check_dataset``); they
use the drift engine, which builds on this package, so this package does not import them.
"""

from __future__ import annotations

from hindsight.data.columns import CategoricalColumnProfile, ColumnProfile, NumericColumnProfile
from hindsight.data.profile import DatasetProfile, ProfileOptions, profile, profile_table
from hindsight.data.reference import list_profiles, load_profile, save_profile

__all__ = [
    "CategoricalColumnProfile",

    "ColumnProfile",
    "DatasetProfile",
    "NumericColumnProfile",
    "ProfileOptions",
    "list_profiles",
    "load_profile",
    "profile",
    "profile_table",
    "save_profile",
]
