"""Fuzz the team server's JSON API from its own OpenAPI spec: no 5xx, answers as documented."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from hindsight.config import Settings
from hindsight.ledger import Ledger, add_lesson, draft_postmortem, experiment
from hindsight.web import auth, create_app

_DIR = Path(tempfile.mkdtemp(prefix="hindsight-web-fuzz-"))
_LEDGER = Ledger(Settings(home=_DIR, store=f"sqlite:///{_DIR / 'h.db'}"))
auth.create_user(_LEDGER.store, "fuzz", role="editor", password="fuzzing password")
TOKEN = auth.create_token(_LEDGER.store, "fuzz", "fuzz")
for i in range(3):
    _exp = experiment(f"run-{i}", ledger=_LEDGER, quiet=True, criteria={"acc": ">= 0.5"})
    try:
        with _exp:
            _exp.log_metric("acc", 0.4)
            if i == 2:
                raise ValueError("shapes (3,4) and (5,6) not aligned")
    except ValueError:
        pass
    add_lesson(_LEDGER, f"lesson {i}", tags=["fuzz"], sources=[_exp.id])
assert _exp.failure is not None
draft_postmortem(_LEDGER, _exp.failure.failure.id)

# The token goes through the spec's bearer scheme, so schemathesis also checks that requests
# without it (or with a wrong one) are refused.
_CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {"auth": {"openapi": {"HTTPBearer": {"bearer": TOKEN}}}}
)
schema = schemathesis.openapi.from_asgi("/api/openapi.json", create_app(_LEDGER), config=_CONFIG)


def _cleanup() -> None:
    _LEDGER.close()
    shutil.rmtree(_DIR, ignore_errors=True)


atexit.register(_cleanup)


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_endpoint_answers_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate()
