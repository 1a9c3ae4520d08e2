"""Seeded data for the boosting callbacks' tests: one healthy split, one that overfits."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.model_selection import train_test_split

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="hindsight.training")


def healthy_data() -> Arrays:
    x, y = load_breast_cancer(return_X_y=True)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.5, random_state=0)
    return x_tr, x_va, y_tr, y_va


def noisy_data(n_train: int = 100) -> Arrays:
    """20% flipped labels and only ``n_train`` training rows: deep trees memorise them."""
    x, y = make_classification(
        n_samples=2000, n_features=20, n_informative=5, flip_y=0.2, random_state=0
    )
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.5, random_state=0)
    return x_tr[:n_train], x_va, y_tr[:n_train], y_va
