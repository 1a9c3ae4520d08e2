"""Fuzz the HTTP API from its own OpenAPI spec with schemathesis: no 5xx, answers as documented."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from hindsight.serving import AbstentionPolicy, MockBackend, RulesBackend
from hindsight.serving.app import create_app
from hindsight.serving.service import Service
from hindsight.store import open_store

TOKEN = "fuzz-token"
_DIR = Path(tempfile.mkdtemp(prefix="hindsight-fuzz-"))
_STORE = open_store(f"sqlite:///{_DIR / 'h.db'}")
_SERVICE = Service(
    "fuzz",
    [
        MockBackend("yes", name="model", confidence=0.6),
        RulesBackend([(lambda x: "amount" in x, "review", 1.0)], "no"),
    ],
    abstention=AbstentionPolicy(min_confidence=0.5, audit_rate=0.5),
    store=_STORE,
    candidates={"v2": MockBackend("yes", name="v2", version="2")},
)
# The token goes through the spec's bearer scheme, so schemathesis also checks that requests
# without it (or with a wrong one) are refused.
_CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {"auth": {"openapi": {"bearer": {"bearer": TOKEN}}}}
)
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(_SERVICE, token=TOKEN), config=_CONFIG
)


def _cleanup() -> None:
    _SERVICE.close()
    _STORE.close()
    shutil.rmtree(_DIR, ignore_errors=True)


# Also at exit: the service and its store exist from import, even if no test here runs.
atexit.register(_cleanup)


@pytest.fixture(scope="module", autouse=True)
def _close_service() -> Iterator[None]:
    yield
    _cleanup()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_endpoint_answers_as_documented(case: schemathesis.Case) -> None:
    # Every built-in check: no 5xx; status code, content type, headers and body as the spec
    # says; valid requests accepted and invalid ones refused; no endpoint ignores its auth.
    case.call_and_validate()
