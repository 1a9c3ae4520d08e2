"""The taxonomy is stable data, the rules only name its categories, and the API is curated."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

import hindsight.diagnose as diagnose_pkg
from hindsight.diagnose import CATEGORIES, Category
from hindsight.diagnose.rules import RULES
from hindsight.diagnose.taxonomy import GROUPS, CategoryInfo, category_info
from hindsight.errors import DiagnosisError

EXPECTED_IDS = {
    "env.dependency",
    "env.path",
    "env.config",
    "code.error",
    "data.error",
    "dl.gpu_oom",
    "dl.cpu_oom",
    "dl.shape_mismatch",
    "dl.nan_divergence",
    "dl.api_misuse",
    "train.no_learning",
    "train.overfitting",
    "train.unstable",
    "train.gradient_flow",
    "train.resources",
    "infra.disk_full",
    "infra.network",
    "infra.gpu_driver",
    "infra.distributed",
    "infra.preemption",
    "unknown",
}


def test_category_ids_are_exactly_the_documented_ones() -> None:
    assert {c.value for c in Category} == EXPECTED_IDS
    assert set(CATEGORIES) == set(Category)


def test_categories_are_plain_strings() -> None:
    assert Category.DL_GPU_OOM == "dl.gpu_oom"
    assert str(Category.INFRA_DISK_FULL) == "infra.disk_full"
    assert CATEGORIES["dl.gpu_oom"] is CATEGORIES[Category.DL_GPU_OOM]


@pytest.mark.parametrize("cat", list(Category))
def test_every_category_is_fully_described(cat: Category) -> None:
    info = CATEGORIES[cat]
    assert isinstance(info, CategoryInfo)
    assert info.id is cat
    assert info.group in GROUPS
    assert info.group == cat.value.split(".")[0]
    assert info.title and "\n" not in info.title
    assert len(info.description) > 20
    assert info.likely_cause.endswith(".")
    assert 2 <= len(info.recommendations) <= 5
    assert all(r.strip() and r.endswith(".") for r in info.recommendations)


def test_category_info_is_frozen_and_the_table_read_only() -> None:
    info = CATEGORIES["code.error"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.title = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        CATEGORIES["new.cat"] = info  # type: ignore[index]


def test_category_info_lookup_and_unknown_id() -> None:
    assert category_info("env.path").title == CATEGORIES[Category.ENV_PATH].title
    with pytest.raises(DiagnosisError, match=r"Unknown failure category 'env\.pth'.*env\.path"):
        category_info("env.pth")


def test_every_rule_names_a_real_category_and_has_something_to_match() -> None:
    for rule in RULES:
        assert rule.category in CATEGORIES
        assert rule.category is not Category.UNKNOWN
        assert rule.weight > 0
        assert rule.patterns or rule.exc_types or rule.exit_codes or rule.signals, rule.name


def test_rule_names_are_unique_and_every_category_has_rules() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    covered = {r.category for r in RULES}
    assert covered == set(Category) - {Category.UNKNOWN}


def test_public_api_is_curated_and_importable() -> None:
    expected = {
        "diagnose",
        "Diagnosis",
        "Category",
        "CATEGORIES",
        "Evidence",
        "Frame",
        "Fingerprint",
        "fingerprint",
        "mask",
        "ConfigIssue",
        "check_config",
        "flatten_config",
    }
    assert set(diagnose_pkg.__all__) == expected
    module = importlib.import_module("hindsight.diagnose")
    for name in expected:
        assert getattr(module, name) is not None
