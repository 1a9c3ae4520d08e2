"""The experiment page: metric curves and the config diff against the last success."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from hindsight.ledger import Ledger, experiment
from hindsight.ledger.views import experiment_detail
from hindsight.web import auth, create_app


def test_curves_and_the_diff_against_the_last_success(any_ledger: Ledger) -> None:
    ledger = any_ledger
    base = {"lr": 0.01, "model": {"layers": 2}, "seed": 1}
    with experiment("ranker", ledger=ledger, quiet=True, config=base,
                    criteria={"loss": "<= 0.5"}) as ok:
        for step in range(30):
            ok.log_metric("loss", 1.0 / (step + 1), step)
    with experiment("other", ledger=ledger, quiet=True, config={"lr": 9}):
        pass
    changed = {"lr": 0.5, "model": {"layers": 2}, "batch": 64}
    exp = experiment("ranker", ledger=ledger, quiet=True, config=changed)
    with pytest.raises(FloatingPointError), exp:
        exp.log_metric("loss", 0.9, 0)
        exp.log_metric("loss", float("inf"), 1)
        raise FloatingPointError("loss became inf")

    detail = experiment_detail(ledger, exp.id)
    assert detail["last_success"]["id"] == ok.id
    assert detail["last_success"]["config_diff"] == {
        "changed": {"lr": [0.01, 0.5]}, "added": {"batch": 64}, "removed": {"seed": 1}
    }
    assert experiment_detail(ledger, ok.id)["last_success"] is None  # nothing before it

    auth.create_user(ledger.store, "vera", role="viewer", password="long enough pw")
    with TestClient(create_app(ledger)) as client:
        client.post("/login", data={"name": "vera", "password": "long enough pw"})
        page = client.get(f"/experiments/{exp.id}").text
        assert f'href="/experiments/{ok.id}"' in page
        assert re.search(r"<td>lr</td><td>0.01</td><td><strong>0.5</strong>", page)
        assert "<td>batch</td>" in page and "<td>seed</td>" in page
        # The infinite point is left out of the curve; the finite ones are drawn.
        assert page.count('<svg class="plot"') == 1 and 'aria-label="loss by step"' in page
        assert "inf" not in re.search(r"<svg.*?</svg>", page, flags=re.S).group(0)  # type: ignore[union-attr]
        ok_page = client.get(f"/experiments/{ok.id}").text
        assert ok_page.count('<svg class="plot"') == 1 and "Against the last success" not in ok_page
