"""The ``hindsight.drift_report/1`` document as a schema, and checking one from elsewhere.

:class:`ReportDocument` states what a stored drift report must hold: the dataset verdict
and its rule, both sides (rows, source), every column's test, figures and verdict, and
its plot (a histogram on shared bins, or shares per category). Everything else a report
carries (``settings``, ``details``, multivariate results) is kept as it is, if it is plain
JSON. The team server's ``POST /api/v1/drift-reports`` takes this same model, so its
OpenAPI schema and the library's check agree.

>>> import numpy as np
>>> from hindsight.drift import drift_report
>>> rng = np.random.default_rng(0)
>>> doc = drift_report({"x": rng.normal(0, 1, 500)}, {"x": rng.normal(0, 1, 500)}).to_dict()
>>> check_report_document(doc) == doc
True
>>> check_report_document({"schema": "hindsight.drift_report/1", "rule": "any"})
Traceback (most recent call last):
...
hindsight.errors.DriftError: The drift report's drift_detected: Field required. Send ...
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from hindsight.drift.report import SCHEMA
from hindsight.errors import DriftError

__all__ = [
    "BarsPlot",
    "ColumnFinding",
    "Count",
    "HistogramPlot",
    "ReportDocument",
    "ReportSide",
    "SchemaChangeEntry",
    "check_report_document",
    "document_of",
]

MAX_COLUMNS = 100_000
MAX_BINS = 10_000
_MAX_DEPTH = 64
# The largest count JSON numbers (doubles) hold exactly.
_MAX_ROWS = 2**53 - 1
_ADVICE = (
    "Send the document DriftReport.to_dict() returns (what `hindsight drift --json` "
    "writes), unchanged."
)

# Strict: a JSON "true" is a boolean, "5" is no number. Unknown fields are kept.
_CONFIG = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)
#: Text that goes into the store's own columns: no NUL (PostgreSQL's text refuses it).
_NO_NUL = r"^[^\x00]*$"


def _whole(value: Any) -> Any:
    """A whole number written as a float (``384.0``) as the int it is."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: A count: a whole number (``384`` or ``384.0``), never ``true`` or ``"384"``.
Count = Annotated[int, Field(ge=0, le=_MAX_ROWS), BeforeValidator(_whole)]


class ReportSide(BaseModel):
    """One side of the comparison: how many rows, and what they were."""

    model_config = _CONFIG
    rows: Count
    source: str = Field(max_length=10_000, pattern=_NO_NUL)


class HistogramPlot(BaseModel):
    """Shares of both sides' rows on shared bins (``edges`` has one more entry)."""

    model_config = _CONFIG
    type: Literal["histogram"]
    edges: list[float] = Field(max_length=MAX_BINS + 1)
    reference: list[float] = Field(max_length=MAX_BINS)
    current: list[float] = Field(max_length=MAX_BINS)


class BarsPlot(BaseModel):
    """Shares of both sides' rows per category label."""

    model_config = _CONFIG
    type: Literal["bars"]
    labels: list[str] = Field(max_length=MAX_BINS)
    reference: list[float] = Field(max_length=MAX_BINS)
    current: list[float] = Field(max_length=MAX_BINS)


class ColumnFinding(BaseModel):
    """One column's test, statistic, p-values, effect size, verdict and plot."""

    model_config = _CONFIG
    column: str = Field(min_length=1)
    kind: str
    test: str
    drifted: bool
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    effect_name: str = "effect"
    effect_size: float | None = None
    effect_threshold: float | None = None
    decided_by: str = ""
    details: dict[str, Any] = Field(default_factory=dict)
    plot: Annotated[HistogramPlot | BarsPlot, Field(discriminator="type")] | None = None


class SchemaChangeEntry(BaseModel):
    """A column missing from, added to, or retyped in the current data."""

    model_config = _CONFIG
    column: str
    change: Literal["missing", "extra", "retyped"]
    reference_kind: str | None = None
    current_kind: str | None = None


class ReportDocument(BaseModel):
    """A drift report's JSON document (``DriftReport.to_dict()``), as it is stored.

    ``drifted_columns``, ``n_columns_tested`` and ``share_drifted`` are recomputed from
    ``columns`` when the document is checked (:func:`document_of`), so a stored report's
    summary always agrees with its columns.
    """

    model_config = _CONFIG
    schema_: Literal["hindsight.drift_report/1"] = Field(alias="schema")
    drift_detected: bool
    rule: str
    reference: ReportSide
    current: ReportSide
    columns: list[ColumnFinding] = Field(max_length=MAX_COLUMNS)
    drifted_columns: list[str] = Field(default_factory=list)
    n_columns_tested: Count | None = None
    share_drifted: float | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    schema_changes: list[SchemaChangeEntry] = Field(default_factory=list)
    skipped_columns: dict[str, Any] = Field(default_factory=dict)
    multivariate: list[dict[str, Any]] = Field(default_factory=list)


def check_report_document(doc: Any) -> dict[str, Any]:
    """``doc`` as a checked ``hindsight.drift_report/1`` document, ready to store.

    Raises :class:`~hindsight.errors.DriftError` naming the first field that is wrong
    and what to send instead. See :func:`document_of` for what the result holds.
    """
    if not isinstance(doc, Mapping):
        raise DriftError(f"A drift report must be a JSON object; got {_type(doc)}. {_ADVICE}")
    if "schema" not in doc:
        raise DriftError(
            f"This JSON object has no 'schema' field, so it is not a {SCHEMA} document. "
            f"{_ADVICE}"
        )
    if doc["schema"] != SCHEMA:
        raise DriftError(
            f"The document's schema is {doc['schema']!r}; this version of hindsight reads "
            f"{SCHEMA!r} drift reports. {_ADVICE}"
        )
    try:
        model = ReportDocument.model_validate(dict(doc))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DriftError(f"The drift report's {_where(first['loc'])}: {first['msg']}. {_ADVICE}") from None
    return document_of(model)


def document_of(model: ReportDocument) -> dict[str, Any]:
    """The document of a validated model: its fields as sent, free-form parts checked to
    be plain JSON, and the summary of the columns recomputed."""
    doc = model.model_dump(by_alias=True, exclude_unset=True)
    _plain_json(doc, "", 0)
    drifted = [c.column for c in model.columns if c.drifted]
    n = len(model.columns)
    doc["drifted_columns"] = drifted
    doc["n_columns_tested"] = n
    doc["share_drifted"] = len(drifted) / n if n else 0.0
    return doc


def _plain_json(value: Any, where: str, depth: int) -> None:
    """Refuse what the model's free-form parts may hold that JSON cannot: NaN, infinity."""
    if depth > _MAX_DEPTH:
        raise _bad(where, f"nests deeper than {_MAX_DEPTH} levels")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _bad(where, f"is {value!r}; JSON has no NaN or infinity (write null)")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise _bad(where, f"has a key {k!r} that is not text")
            _plain_json(v, f"{where}.{k}" if where else k, depth + 1)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _plain_json(v, f"{where}[{i}]", depth + 1)
    elif value is not None and not isinstance(value, str | bool | int):
        raise _bad(where, f"holds a {type(value).__name__}, which is not JSON")


def _where(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a path: ``columns[0].plot.edges``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("histogram", "bars"):  # the plot's tag, not a field
            out += f".{part}" if out else str(part)
    return out or "document"


def _type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "a boolean", type(None): "null"}
    for kind, noun in names.items():
        if isinstance(value, kind):
            return noun
    return type(value).__name__


def _bad(where: str, what: str) -> DriftError:
    return DriftError(f"The drift report's {where or 'document'} {what}. {_ADVICE}")
