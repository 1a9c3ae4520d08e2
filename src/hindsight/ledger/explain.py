"""A failure report as plain text: diagnosis, similar past failures, lessons, fixes."""

from __future__ import annotations

from hindsight.ledger.records import FailureReport, SimilarFailure

__all__ = ["failure_text", "similar_text"]


def failure_text(report: FailureReport) -> str:
    """What a person reads when a run fails: why, what to do, what happened before."""
    f = report.failure
    d = f.diagnosis
    lines = [
        f"hindsight: recorded failure {f.id}"
        + (f" of experiment {f.experiment_id}" if f.experiment_id else ""),
        f"  {f.title}",
        f"  diagnosis: {d.get('category')} — {d.get('title')} "
        f"(confidence {float(d.get('confidence', 0)):.0%})",
        f"  likely cause: {d.get('likely_cause')}",
    ]
    for issue in d.get("config_issues") or []:
        lines.append(f"  config: {issue.get('message')}")
    recs = d.get("recommendations") or []
    if recs:
        lines.append("  try:")
        lines.extend(f"    - {r}" for r in recs)
    if report.similar:
        lines.append("  similar past failures:")
        lines.extend(similar_text(s, indent="    ") for s in report.similar)
    return "\n".join(lines)


def similar_text(s: SimilarFailure, indent: str = "") -> str:
    """One similar failure with its lessons and the fix that followed it."""
    kind = "same fingerprint" if s.exact else f"similarity {s.score:.2f}"
    out = [
        f"{indent}{s.failure.id} ({kind}, seen {s.occurrences}x): {s.failure.title}",
    ]
    for les in s.lessons:
        out.append(f"{indent}  lesson {les.id}: {les.text}")
    if s.fixed_by:
        out.append(f"{indent}  fixed by {s.fixed_by}" + _change(s))
    return "\n".join(out)


def _change(s: SimilarFailure) -> str:
    c = s.config_change or {}
    parts = [f"{k}: {a!r} -> {b!r}" for k, (a, b) in (c.get("changed") or {}).items()]
    parts += [f"+{k}={v!r}" for k, v in (c.get("added") or {}).items()]
    parts += [f"-{k}" for k in (c.get("removed") or {})]
    return f", which changed {', '.join(parts)}" if parts else ""
