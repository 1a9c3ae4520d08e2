"""Experiments as Markdown pages, and the export of one page per experiment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hindsight.ledger import (
    Ledger,
    add_lesson,
    experiment,
    experiment_markdown,
    export_markdown,
)


def _forward(users: int, dim: int) -> np.ndarray:
    return np.ones((users, dim)) @ np.ones((dim + 1, 4))


def _runs(ledger: Ledger) -> tuple[str, str, str, str]:
    with pytest.raises(ValueError), experiment(
        "mf-first-try", config={"lr": 0.3}, quiet=True, ledger=ledger
    ) as first:
        _forward(8, 16)
    first_failure = first.record.failure_id
    assert first_failure is not None
    add_lesson(ledger, "Keep the item matrix in sync with emb_dim", sources=[first_failure])

    with pytest.raises(ValueError), experiment(
        "mf-big-embeddings",
        hypothesis="Doubling emb_dim lifts CTR by 2 points",
        approach="Matrix factorisation with wider embeddings",
        config={"lr": 0.05, "model": {"emb_dim": 64, "layers": 2}},
        criteria={"ctr": ">= 0.6", "latency_p99_ms": "<= 50"},
        tags=["mf", "wide"],
        quiet=True,
        ledger=ledger,
    ) as crashed:
        crashed.log_metric("loss", 0.9)
        crashed.lesson("Shape-check the model on one batch before a sweep")
        crashed.next_step("Add a one-batch smoke test")
        _forward(32, 64)

    with experiment(
        "mf-big-embeddings-fixed",
        hypothesis="With the projection fixed, wide embeddings lift CTR",
        config={"lr": 0.05, "model": {"emb_dim": 64, "layers": 2}},
        criteria={"ctr": ">= 0.6", "latency_p99_ms": "<= 50", "recall": ">= 0.2"},
        tags=["mf"],
        builds_on=[crashed.id],
        quiet=True,
        ledger=ledger,
    ) as ok:
        ok.log_metrics({"ctr": 0.64, "latency_p99_ms": 61.5})
        ok.lesson("Wide embeddings cost latency", tags=["latency"])
        ok.next_step("Distil to emb_dim 32 to win back latency")
    return first.id, first_failure, crashed.id, ok.id


def test_page_of_a_crashed_run(any_ledger: Ledger) -> None:
    _first, first_failure, crashed, _ok = _runs(any_ledger)
    md = experiment_markdown(any_ledger, crashed)
    rec = any_ledger.experiment_record(crashed)
    assert md.startswith("# mf-big-embeddings\n")
    assert f"`{crashed}`" in md and "status **crashed**" in md and "outcome **failure**" in md
    assert "## Hypothesis\n\nDoubling emb_dim lifts CTR by 2 points\n" in md
    assert "## Approach\n\nMatrix factorisation with wider embeddings\n" in md
    assert "Tags: `mf`, `wide`" in md
    config_block = md.split("```json\n", 1)[1].split("\n```", 1)[0]
    assert json.loads(config_block) == {"lr": 0.05, "model": {"emb_dim": 64, "layers": 2}}
    assert "| metric | criterion | value | verdict |" in md
    assert "| ctr | >= 0.6 | — | missing |" in md
    assert "| latency_p99_ms | <= 50 | — | missing |" in md
    assert "| loss | 0.9 |" in md

    failure = any_ledger.failure_record(rec.failure_id or "")
    d = failure.diagnosis
    assert f"## Failure\n\n`{failure.id}` — ValueError: " in md
    assert f"- diagnosis: **{d['category']}** — {d['title']}" in md
    assert f"- likely cause: {d['likely_cause']}" in md
    assert all(f"- try: {r}" in md for r in d["recommendations"])
    assert "### Similar past failures" in md
    assert f"- `{first_failure}` (score 1.00, seen 1x)" in md
    assert "  - lesson: Keep the item matrix in sync with emb_dim" in md
    assert "## Lessons\n\n- Shape-check the model on one batch before a sweep (`les_" in md
    assert "## Next steps\n\n- Add a one-batch smoke test\n" in md


def test_page_of_a_successful_run(any_ledger: Ledger) -> None:
    _first, _ff, crashed, ok = _runs(any_ledger)
    md = experiment_markdown(any_ledger, ok)
    assert "status **finished**" in md and "outcome **partial**" in md
    assert f"- builds on: {crashed}" in md
    assert "## Hypothesis\n\nWith the projection fixed, wide embeddings lift CTR\n" in md
    assert "| ctr | >= 0.6 | 0.64 | met |" in md
    assert "| latency_p99_ms | <= 50 | 61.5 | missed |" in md
    assert "| recall | >= 0.2 | — | missing |" in md
    assert "Outcome: missed: latency_p99_ms <= 50 (got 61.5); recall >= 0.2 (got nothing)" in md
    assert "## Failure" not in md
    assert "## Lessons\n\n- Wide embeddings cost latency (`les_" in md
    assert "## Next steps\n\n- Distil to emb_dim 32 to win back latency\n" in md


def test_export_writes_one_page_per_experiment_and_an_index(
    ledger: Ledger, tmp_path: Path
) -> None:
    ids = _runs(ledger)
    exp_ids = [ids[0], ids[2], ids[3]]
    out = tmp_path / "wiki"
    written = export_markdown(ledger, out)
    assert [p.name for p in written] == [*(f"{i}.md" for i in exp_ids), "index.md"]
    for exp_id in exp_ids:
        page = (out / f"{exp_id}.md").read_text(encoding="utf-8")
        assert page == experiment_markdown(ledger, exp_id)
    index = (out / "index.md").read_text(encoding="utf-8")
    assert index.startswith("# Experiments\n")
    assert f"| [mf-first-try]({ids[0]}.md) | crashed | failure |" in index
    assert f"| [mf-big-embeddings]({ids[2]}.md) | crashed | failure |" in index
    assert f"| [mf-big-embeddings-fixed]({ids[3]}.md) | finished | partial |" in index

    only = export_markdown(ledger, tmp_path / "other", project="nothing-here")
    assert [p.name for p in only] == ["index.md"]


def test_names_with_table_and_link_characters_are_escaped(ledger: Ledger, tmp_path: Path) -> None:
    with experiment(
        "mf [v2] | wide", criteria={"p@10|all": ">= 0.1"}, quiet=True, ledger=ledger
    ) as exp:
        exp.log_metric("p@10|all", 0.2)
    md = experiment_markdown(ledger, exp.id)
    assert "| p@10\\|all | >= 0.1 | 0.2 | met |" in md
    assert "| p@10\\|all | 0.2 |" in md
    export_markdown(ledger, tmp_path / "wiki")
    index = (tmp_path / "wiki" / "index.md").read_text(encoding="utf-8")
    row = next(ln for ln in index.splitlines() if exp.id in ln)
    assert row.startswith(f"| [mf \\[v2\\] \\| wide]({exp.id}.md) | finished | success |")
