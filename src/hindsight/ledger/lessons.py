"""Lessons: what was learned, where it came from, and who applied it."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hindsight.errors import LedgerError
from hindsight.ledger.ids import new_id
from hindsight.ledger.records import Lesson
from hindsight.ledger.writer import StoreWriter
from hindsight.store.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from hindsight.ledger.core import Ledger

__all__ = ["add_lesson", "apply_lesson", "lesson_row", "list_lessons"]


def add_lesson(
    ledger: Ledger,
    text: str,
    *,
    tags: Iterable[str] = (),
    sources: Iterable[str] = (),
    project: str | None = None,
) -> Lesson:
    """Record a lesson, linked to the experiments, failures or post-mortems it came from."""
    row = lesson_row(text, tags=tags, project=project)  # checks the text before any read
    resolved = [ledger.resolve(s) for s in sources]
    for kind, full in resolved:
        if kind == "lesson":
            raise LedgerError(f"A lesson cannot come from another lesson ({full}).")
    if project is None and resolved:
        kind, full = resolved[0]
        project = str(ledger.store.get(kind, full)["project"])
    row["project"] = project or ledger.settings.project
    StoreWriter(ledger).lesson(row, [full for _kind, full in resolved])
    return ledger.lessons_by_id([row["id"]])[0]


def lesson_row(text: str, *, tags: Iterable[str] = (), project: str | None) -> dict[str, Any]:
    """A new lesson's record (not yet stored); its text must say something."""
    if not isinstance(text, str) or not text.strip():
        raise LedgerError("A lesson needs text: what was learned, in a sentence people can act on.")
    return {
        "id": new_id("lesson"),
        "project": project,
        "text": text.strip(),
        "tags": sorted({str(t).strip() for t in tags if str(t).strip()}),
        "created_at": time.time(),
        "schema_version": SCHEMA_VERSION,
    }


def apply_lesson(ledger: Ledger, lesson_id: str, experiment_id: str) -> None:
    """Record that an experiment applied a lesson."""
    _, les = ledger.resolve(lesson_id, "lesson")
    _, exp = ledger.resolve(experiment_id, "experiment")
    ledger.store.link_lesson(les, exp, "applied", time.time())


def list_lessons(
    ledger: Ledger,
    *,
    project: str | None = None,
    query: str | None = None,
    tag: str | None = None,
    limit: int | None = None,
) -> list[Lesson]:
    """Lessons, newest first; ``query`` matches every word of the text, ``tag`` a tag."""
    rows = ledger.store.list_lessons(project=project, query=query, limit=None if tag else limit)
    if tag:
        rows = [r for r in rows if tag in (r.get("tags") or [])][:limit]
    links = ledger.store.lesson_links(lesson_ids=[r["id"] for r in rows]) if rows else []
    return [Lesson.from_row(r, links) for r in rows]
