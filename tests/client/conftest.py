"""Each test's server clients are closed at its end, so no sender outlives its test."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from hindsight.errors import HindsightWarning
from hindsight.ledger import remote


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HindsightWarning)
        for client in list(remote._clients.values()):
            if not client.closed:
                client.close(0)
        remote._clients.clear()
