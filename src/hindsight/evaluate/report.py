"""The evaluation report: one JSON-first dict (schema ``hindsight.evaluation/1``), and its page.

It gathers an :class:`~hindsight.evaluate.core.Evaluation`, the criteria's verdicts, and,
when they were run, the scenario tests and the false-positive analysis, so the CLI, a CI
job and the dashboard read one shape; :func:`write_evaluation_html` renders it offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hindsight._plain import plain
from hindsight.evaluate.core import Evaluation
from hindsight.reports.evaluate_html import render_evaluation_html

__all__ = ["SCHEMA", "evaluation_report", "write_evaluation_html"]

SCHEMA = "hindsight.evaluation/1"


def evaluation_report(
    evaluation: Evaluation,
    *,
    criteria: Mapping[str, Any] | None = None,
    scenarios: Any = None,
    false_positives: Any = None,
    source: str | None = None,
) -> dict[str, Any]:
    """The report dict; ``passed`` is None when nothing was judged, else every verdict's AND."""
    verdicts = evaluation.judge(criteria) if criteria else []
    judged: list[bool] = [v.met for v in verdicts]
    if scenarios is not None:
        judged.append(bool(scenarios.passed))
    return {
        "schema": SCHEMA,
        "source": source,
        "passed": all(judged) if judged else None,
        "criteria": [v.to_dict() for v in verdicts],
        "evaluation": evaluation.to_dict(),
        "scenarios": None if scenarios is None else plain(scenarios.to_dict()),
        "false_positives": None if false_positives is None else plain(false_positives.to_dict()),
    }


def write_evaluation_html(report: Mapping[str, Any], path: str | Path) -> Path:
    """Write the report's page to ``path`` (parents created); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_evaluation_html(report), encoding="utf-8")
    return out
