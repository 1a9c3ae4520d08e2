"""Blameless post-mortems, drafted from a failure's evidence and edited as Markdown.

A draft is filled from the records: the timeline from the experiment and its
metrics, the diagnosis, similar past failures and their lessons, the config
change since the last good run. People edit it through the API or as Markdown
(``hindsight postmortem edit`` opens ``$EDITOR``); lessons written in its Lessons
section are recorded as ledger lessons linked to the post-mortem and the failure.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hindsight.errors import LedgerError
from hindsight.ledger.failures import config_diff, similar_failures
from hindsight.ledger.ids import new_id
from hindsight.ledger.lessons import add_lesson
from hindsight.ledger.records import ExperimentRecord, FailureRecord, PostMortem, iso
from hindsight.store.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from hindsight.ledger.core import Ledger

__all__ = [
    "SECTIONS",
    "draft_postmortem",
    "parse_markdown",
    "postmortem_markdown",
    "update_postmortem",
]

#: Editable text sections, in the order they are rendered.
SECTIONS = {
    "summary": "What happened",
    "impact": "Impact",
    "root_cause": "Root cause",
    "trigger": "Trigger",
    "detection": "Detection",
    "went_well": "What went well",
    "went_wrong": "What went wrong",
}
_LIST_SECTIONS = {"timeline": "Timeline", "action_items": "Action items", "lessons": "Lessons"}
STATUSES = ("draft", "reviewed", "final")
ACTION_STATUSES = ("open", "done")
# The field a plain string stands for in each list section.
_LIST_FIELDS = {"timeline": ("event",), "action_items": ("text",), "lessons": ("text",)}


def draft_postmortem(ledger: Ledger, failure_id: str) -> PostMortem:
    """Draft a blameless post-mortem from a failure and everything recorded around it."""
    failure = ledger.failure_record(failure_id)
    exp = (
        ledger.experiment_record(failure.experiment_id) if failure.experiment_id else None
    )
    d = failure.diagnosis
    similar = similar_failures(ledger, failure, k=5)
    timeline = _timeline(ledger, failure, exp, similar)
    last_good = _last_good(ledger, exp) if exp else None
    body: dict[str, Any] = {
        "summary": _summary(failure, exp),
        "impact": _impact(ledger, failure, exp, similar),
        "root_cause": f"{d.get('likely_cause') or 'Unknown.'} (Diagnosed as {d.get('category')}, "
        f"confidence {float(d.get('confidence') or 0):.0%}; confirm or correct.)",
        "trigger": _trigger(d, exp, last_good),
        "detection": f"Captured automatically by hindsight from the {failure.source} at "
        f"{iso(failure.created_at)}; fingerprint {failure.fingerprint}.",
        "went_well": "; ".join(
            x for x in [
                "The failure was recorded with its traceback, config and last metrics",
                "an earlier lesson exists for this failure" if any(s.lessons for s in similar) else "",
                f"a later run fixed a similar failure ({similar[0].fixed_by})"
                if similar and similar[0].fixed_by else "",
            ] if x
        ) + ".",
        "went_wrong": _went_wrong(d, similar, exp),
        "timeline": timeline,
        "action_items": [
            {"text": r, "owner": "", "status": "open"} for r in d.get("recommendations") or []
        ],
        "lessons": [
            {"id": les.id, "text": les.text} for s in similar for les in s.lessons
        ],
        "evidence": {
            "failure_id": failure.id,
            "experiment_id": failure.experiment_id,
            "category": failure.category,
            "exception": failure.title,
            "last_metrics": failure.evidence.get("last_metrics") or (exp.summary if exp else {}),
            "config_issues": d.get("config_issues") or [],
            "similar": [
                {"id": s.failure.id, "score": round(s.score, 3), "occurrences": s.occurrences,
                 "fixed_by": s.fixed_by}
                for s in similar
            ],
        },
    }
    now = time.time()
    title = f"{exp.name if exp else failure.source}: {d.get('title') or failure.category}"
    row = {
        "id": new_id("postmortem"),
        "failure_id": failure.id,
        "experiment_id": failure.experiment_id,
        "project": failure.project,
        "title": title,
        "status": "draft",
        "body": body,
        "created_at": now,
        "updated_at": now,
        "schema_version": SCHEMA_VERSION,
    }
    ledger.store.insert("postmortem", row)
    return PostMortem.from_row(row)


def update_postmortem(
    ledger: Ledger,
    postmortem_id: str,
    *,
    title: str | None = None,
    status: str | None = None,
    sections: Mapping[str, Any] | None = None,
) -> PostMortem:
    """Change a post-mortem's title, status or sections; new lessons are recorded."""
    pm = ledger.postmortem(postmortem_id)
    body = dict(pm.body)
    for key, value in (sections or {}).items():
        if key not in SECTIONS and key not in _LIST_SECTIONS:
            raise LedgerError(
                f"Unknown post-mortem section {key!r}. Sections: "
                f"{', '.join([*SECTIONS, *_LIST_SECTIONS])}."
            )
        body[key] = _checked(key, value)
    if status is not None and status not in STATUSES:
        raise LedgerError(f"status must be one of {', '.join(STATUSES)}. Got {status!r}.")
    # Everything is checked before the first new lesson is written.
    lessons = []
    for item in body.get("lessons") or []:
        item = dict(item)
        if not item.get("id"):
            sources = [pm.id] + [x for x in (pm.failure_id, pm.experiment_id) if x]
            item["id"] = add_lesson(ledger, item["text"], sources=sources, project=pm.project).id
        lessons.append(item)
    body["lessons"] = lessons
    ledger.store.update(
        "postmortem",
        pm.id,
        title=title or pm.title,
        status=status or pm.status,
        body=body,
        updated_at=time.time(),
    )
    return ledger.postmortem(pm.id)


def _checked(key: str, value: Any) -> Any:
    """A section's value in its stored shape, or a LedgerError that says what is wrong."""
    if key in SECTIONS:
        if value is not None and not isinstance(value, str):
            raise LedgerError(f"Section {key!r} is text. Got {type(value).__name__}.")
        return value or ""
    if isinstance(value, (str, Mapping)) or not isinstance(value, (list, tuple)):
        raise LedgerError(f"Section {key!r} is a list. Got {type(value).__name__}.")
    items = [{_LIST_FIELDS[key][0]: x} if isinstance(x, str) else x for x in value]
    if not all(isinstance(x, Mapping) for x in items):
        raise LedgerError(f"Items of {key!r} are strings or dicts with {_LIST_FIELDS[key]}.")
    out = []
    for item in items:
        item = dict(item)
        main = _LIST_FIELDS[key][0]
        if not isinstance(item.get(main), str) or not item[main].strip():
            raise LedgerError(f"Every item of {key!r} needs a non-empty {main!r}. Got {item!r}.")
        if key == "action_items":
            item.setdefault("owner", "")
            item.setdefault("status", "open")
            if item["status"] not in ACTION_STATUSES:
                raise LedgerError(
                    f"An action item's status must be one of {', '.join(ACTION_STATUSES)}. "
                    f"Got {item['status']!r}."
                )
        elif key == "timeline":
            item.setdefault("at", "")
        out.append(item)
    return out


def postmortem_markdown(pm: PostMortem) -> str:
    """The post-mortem as Markdown (the format ``parse_markdown`` reads back)."""
    b = pm.body
    out = [
        f"# {pm.title}",
        "",
        f"<!-- hindsight postmortem {pm.id} · status: {pm.status} · failure {pm.failure_id}"
        f" · experiment {pm.experiment_id} -->",
        "",
        "_Blameless: this describes what happened and what the system allowed, not who erred._",
        "",
    ]
    for key, heading in SECTIONS.items():
        out += [f"## {heading}", "", str(b.get(key) or "").strip() or "_(to fill in)_", ""]
    out += ["## Timeline", ""]
    out += [
        f"- {e['at']} — {e.get('event')}" if e.get("at") else f"- {e.get('event')}"
        for e in b.get("timeline") or []
    ] or ["_(none)_"]
    out += ["", "## Action items", ""]
    for a in b.get("action_items") or []:
        box = "x" if a.get("status") == "done" else " "
        owner = f" (owner: {a['owner']})" if a.get("owner") else ""
        out.append(f"- [{box}] {a.get('text')}{owner}")
    out += ["", "## Lessons", ""]
    for les in b.get("lessons") or []:
        suffix = f" ({les['id']})" if les.get("id") else ""
        out.append(f"- {les.get('text')}{suffix}")
    ev = b.get("evidence") or {}
    if ev:
        out += ["", "## Evidence", ""]
        out.append(f"- failure: {ev.get('failure_id')} — {ev.get('exception')}")
        out.append(f"- category: {ev.get('category')}")
        metrics = ev.get("last_metrics") or {}
        if metrics:
            out.append("- last metrics: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
        for issue in ev.get("config_issues") or []:
            out.append(f"- config issue: {issue.get('message')}")
        for s in ev.get("similar") or []:
            fixed = f", fixed by {s['fixed_by']}" if s.get("fixed_by") else ""
            out.append(
                f"- similar: {s['id']} (score {s['score']}, seen {s['occurrences']}x{fixed})"
            )
    return "\n".join(out).rstrip() + "\n"


_HEADING = re.compile(r"^##\s+(.+?)\s*$")
# Bullets may be -, * or +; an action item without a checkbox is an open one.
_ACTION = re.compile(r"^[-*+]\s+(?:\[( |x|X)\]\s+)?(.*?)(?:\s+\(owner:\s*([^)]*)\))?\s*$")
_LESSON = re.compile(r"^[-*+]\s+(.*?)(?:\s+\((les_[0-9a-f]+)\))?\s*$")
_EVENT = re.compile(r"^[-*+]\s+(?:(.*?) — )?(.*)$")


def parse_markdown(text: str) -> dict[str, Any]:
    """Read an edited post-mortem back: title and sections (Evidence is not editable)."""
    by_heading = {v: k for k, v in {**SECTIONS, **_LIST_SECTIONS}.items()}
    title = None
    current: str | None = None
    chunks: dict[str, list[str]] = {}
    for line in text.splitlines():
        if title is None and line.startswith("# "):
            title = line[2:].strip()
            continue
        m = _HEADING.match(line)
        if m:
            current = by_heading.get(m.group(1).strip())
            if current is None and m.group(1).strip() != "Evidence":
                raise LedgerError(
                    f"Unknown section '## {m.group(1)}'. Keep the headings of the draft: "
                    f"{', '.join([*SECTIONS.values(), *_LIST_SECTIONS.values()])}."
                )
            if current is not None:
                chunks[current] = []
            continue
        if current is not None:
            chunks[current].append(line)
    sections: dict[str, Any] = {}
    for key, lines in chunks.items():
        body = "\n".join(lines).strip()
        if body in ("_(to fill in)_", "_(none)_"):
            body = ""
        if key in SECTIONS:
            sections[key] = body
        elif key == "action_items":
            items = []
            for ln in body.splitlines():
                am = _ACTION.match(ln.strip())
                if am and am.group(2).strip():
                    items.append({
                        "text": am.group(2).strip(),
                        "owner": (am.group(3) or "").strip(),
                        "status": "done" if (am.group(1) or "").lower() == "x" else "open",
                    })
            sections[key] = items
        elif key == "lessons":
            lessons = []
            for ln in body.splitlines():
                lm = _LESSON.match(ln.strip())
                if lm and lm.group(1).strip():
                    lessons.append({"text": lm.group(1).strip(), "id": lm.group(2)})
            sections[key] = lessons
        elif key == "timeline":
            sections[key] = [
                {"at": (em.group(1) or "").strip(), "event": em.group(2).strip()}
                for em in (_EVENT.match(ln.strip()) for ln in body.splitlines())
                if em and em.group(2).strip()
            ]
    return {"title": title, "sections": sections}


def _summary(failure: FailureRecord, exp: ExperimentRecord | None) -> str:
    if exp is None:
        return f"A failure was recorded from the {failure.source}: {failure.title}."
    took = f" after {exp.duration_s:.1f} s" if exp.duration_s is not None else ""
    hyp = f" It was testing the hypothesis: {exp.hypothesis}" if exp.hypothesis else ""
    return (
        f"Experiment '{exp.name}' ({exp.id}) ended {exp.status}{took} with {failure.title}.{hyp}"
    )


def _impact(
    ledger: Ledger, failure: FailureRecord, exp: ExperimentRecord | None, similar: list[Any]
) -> str:
    parts = []
    if exp is not None:
        parts.append(
            f"No verdict on the hypothesis; {exp.duration_s or 0:.1f} s of compute spent. "
            f"{len(exp.summary)} metric(s) recorded before the failure were kept."
        )
    total = sum(s.occurrences for s in similar if s.exact)
    if total:
        parts.append(f"The same failure happened {total} time(s) before.")
    return " ".join(parts) or "To assess."


def _timeline(
    ledger: Ledger, failure: FailureRecord, exp: ExperimentRecord | None, similar: list[Any]
) -> list[dict[str, str]]:
    events: list[tuple[float, str]] = []
    for s in similar:
        if s.exact:
            events.append((s.failure.created_at, f"Earlier occurrence {s.failure.id}"))
    if exp is not None:
        events.append((exp.started_at, f"Experiment {exp.id} started (git {exp.git_commit or '?'})"))
        for key, (steps, _vals, times) in ledger.store.metric_series(exp.id).items():
            if len(times):
                events.append((float(times[-1]), f"Last '{key}' logged at step {int(steps[-1])}"))
        for note in ledger.store.notes(exp.id):
            events.append((note["created_at"], f"Next step noted: {note['text']}"))
    events.append((failure.created_at, f"Failure {failure.id} recorded: {failure.title}"))
    events.sort(key=lambda e: e[0])
    return [{"at": iso(t) or "", "event": text} for t, text in events]


def _last_good(ledger: Ledger, exp: ExperimentRecord) -> tuple[ExperimentRecord, str] | None:
    """The run to diff the config against, and what it is: the last success of the same
    name, else the newest run this one builds on that finished (the run it changed)."""
    rows = ledger.store.list_experiments(project=exp.project, outcomes=["success"])
    before = [r for r in rows if r["started_at"] < exp.started_at and r["name"] == exp.name]
    if before:
        return ExperimentRecord.from_row(before[0]), "the last good run"
    parents = ledger.store.list_experiments(ids=ledger.store.parents(exp.id), statuses=["finished"])
    if parents:
        return ExperimentRecord.from_row(parents[0]), "the run it builds on"
    return None


def _trigger(
    d: Mapping[str, Any],
    exp: ExperimentRecord | None,
    baseline: tuple[ExperimentRecord, str] | None,
) -> str:
    parts = []
    if exp is not None and baseline is not None:
        good, what = baseline
        diff = config_diff(good.config, exp.config)
        changed = [f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff["changed"].items()]
        changed += [f"+{k}={v!r}" for k, v in diff["added"].items()]
        changed += [f"-{k}" for k in diff["removed"]]
        if changed:
            parts.append(f"Config changed since {what} {good.id}: {', '.join(changed)}.")
    issues = [i.get("message") for i in d.get("config_issues") or []]
    if issues:
        parts.append("Config issues found: " + " ".join(str(i) for i in issues))
    return " ".join(parts) or "To determine: what changed right before the failure?"


def _went_wrong(
    d: Mapping[str, Any], similar: list[Any], exp: ExperimentRecord | None
) -> str:
    parts = []
    for s in similar:
        if s.exact and s.lessons:
            # A lesson this very run applied was not ignored: it did not prevent the repeat.
            applied = [les for les in s.lessons if exp is not None and exp.id in les.applied_by]
            unapplied = [les for les in s.lessons if les not in applied]
            if unapplied:
                ids = ", ".join(les.id for les in unapplied)
                parts.append(f"An earlier lesson for this exact failure ({ids}) was not applied.")
            if applied:
                ids = ", ".join(les.id for les in applied)
                parts.append(
                    f"An earlier lesson for this exact failure ({ids}) was applied, yet the "
                    "failure happened again: the lesson is incomplete or was applied wrongly."
                )
            break
    if d.get("config_issues"):
        parts.append("The config had issues that a pre-flight check would have caught.")
    return " ".join(parts) or "To fill in."
