"""Experiments as Markdown pages: one page per experiment, for wikis and reviews."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from hindsight.ledger.criteria import format_value
from hindsight.ledger.failures import similar_failures
from hindsight.ledger.records import ExperimentRecord, iso

if TYPE_CHECKING:
    from hindsight.ledger.core import Ledger

__all__ = ["experiment_markdown", "export_markdown"]


def experiment_markdown(ledger: Ledger, experiment_id: str) -> str:
    """One experiment as a Markdown page: hypothesis to lessons and next steps."""
    e = ledger.experiment_record(experiment_id)
    store = ledger.store
    out = [
        f"# {e.name}",
        "",
        f"`{e.id}` · project **{e.project}** · status **{e.status}** · outcome "
        f"**{e.outcome or 'not judged'}**",
        "",
        f"- started: {iso(e.started_at)}",
        f"- duration: {_duration(e)}",
        f"- code: {e.git_commit or 'unknown'}{' (dirty)' if e.git_dirty else ''}",
    ]
    if e.mlflow_run_id:
        out.append(f"- MLflow run: {e.mlflow_run_id}")
    parents = store.parents(e.id)
    if parents:
        out.append(f"- builds on: {', '.join(parents)}")
    out += ["", "## Hypothesis", "", e.hypothesis or "_(none recorded)_", ""]
    if e.approach or e.tags:
        out += ["## Approach", "", e.approach or "", ""]
        if e.tags:
            out += ["Tags: " + ", ".join(f"`{t}`" for t in e.tags), ""]
    if e.config:
        out += ["## Config", "", "```json", json.dumps(e.config, indent=2, sort_keys=True), "```", ""]
    if e.verdicts:
        out += ["## Criteria", "", "| metric | criterion | value | verdict |", "|---|---|---|---|"]
        for v in e.verdicts:
            value = format_value(v["value"])
            out.append(
                f"| {_cell(v['metric'])} | {v['op']} {v['threshold']:g} | {value} | {v['verdict']} |"
            )
        out.append("")
    if e.outcome_reason:
        out += [f"Outcome: {e.outcome_reason}", ""]
    if e.summary:
        out += ["## Metrics (final values)", "", "| metric | value |", "|---|---|"]
        out += [f"| {_cell(k)} | {v} |" for k, v in sorted(e.summary.items())]
        out.append("")
    if e.failure_id:
        f = ledger.failure_record(e.failure_id)
        d = f.diagnosis
        out += [
            "## Failure",
            "",
            f"`{f.id}` — {f.title}",
            "",
            f"- diagnosis: **{d.get('category')}** — {d.get('title')}",
            f"- likely cause: {d.get('likely_cause')}",
        ]
        out += [f"- config issue: {i.get('message')}" for i in d.get("config_issues") or []]
        out += [f"- try: {r}" for r in d.get("recommendations") or []]
        similar = similar_failures(ledger, f, k=5)
        if similar:
            out += ["", "### Similar past failures", ""]
            for s in similar:
                out.append(f"- `{s.failure.id}` (score {s.score:.2f}, seen {s.occurrences}x): {s.failure.title}")
                out += [f"  - lesson: {les.text}" for les in s.lessons]
                if s.fixed_by:
                    out.append(f"  - fixed by `{s.fixed_by}`")
        out.append("")
    lessons = ledger.lessons_for([e.id] + ([e.failure_id] if e.failure_id else []))
    if lessons:
        out += ["## Lessons", ""] + [f"- {les.text} (`{les.id}`)" for les in lessons] + [""]
    steps = [n["text"] for n in store.notes(e.id) if n["kind"] == "next_step"]
    if steps:
        out += ["## Next steps", ""] + [f"- {s}" for s in steps] + [""]
    arts = store.artifacts(e.id)
    if arts:
        out += ["## Artifacts", ""]
        out += [f"- {a['name']}: `{a['path']}` ({a['size']} bytes, sha256 {a['sha256'][:12]}…)" for a in arts]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def export_markdown(
    ledger: Ledger, directory: str | Path, *, project: str | None = None
) -> list[Path]:
    """Write one Markdown page per experiment plus an index; returns the paths written."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    exps = ledger.experiments(project=project, newest_first=False)
    written = []
    index = ["# Experiments", "", "| experiment | status | outcome | started |", "|---|---|---|---|"]
    for e in exps:
        path = root / f"{e.id}.md"
        path.write_text(experiment_markdown(ledger, e.id), encoding="utf-8")
        written.append(path)
        link = _cell(e.name).replace("[", "\\[").replace("]", "\\]")
        index.append(
            f"| [{link}]({path.name}) | {e.status} | {e.outcome or '—'} | {iso(e.started_at)} |"
        )
    index_path = root / "index.md"
    index_path.write_text("\n".join(index) + "\n", encoding="utf-8")
    return [*written, index_path]


def _cell(text: str) -> str:
    # Names are free text; a bare | would split a table row.
    return str(text).replace("|", "\\|")


def _duration(e: ExperimentRecord) -> str:
    if e.duration_s is None:
        return "running" if e.status == "running" else "unknown"
    return f"{e.duration_s:.2f} s"
