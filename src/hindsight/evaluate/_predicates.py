"""Slices written as predicates: parse ``"age < 25 and channel == 'web'"`` and compute its rows.

The text is read with :mod:`ast` (``mode="eval"``) and only a whitelist of nodes is
accepted; nothing is ever evaluated as Python. The language:

* comparisons of a column with a literal: ``== != < <= > >=``, chains (``7 <= age < 30``),
  ``in`` / ``not in`` a list or tuple of literals, ``is None`` / ``is not None``;
* ``and``, ``or``, ``not``, and ``&``, ``|``, ``~`` as synonyms (with the precedence of
  ``and``/``or``/``not``, as in pandas' ``query``), parentheses;
* columns as bare names, or in backticks for other names (`` `unit price` ``,
  `` `a.b` ``; a backtick inside a name is written twice); a bare boolean column means
  ``col == True``;
* literals: numbers, strings, ``True``/``False`` and ``None``. ``x == None`` selects the
  missing values (nulls, and NaN in float columns), ``x != None`` the present ones.

Every comparison with a missing value is false (``x != 5`` does not select nulls), and
``not`` negates the result, so ``not x > 5`` does select them. Timestamp and date columns
compare with ISO 8601 strings (naive strings are read as UTC for zoned columns).
"""

from __future__ import annotations

import ast
import difflib
import keyword
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from hindsight.data.frames import to_arrow
from hindsight.errors import ConfigError, DataError

__all__ = ["Slice", "parse_slice", "quote_name", "slice_mask"]

Literal = int | float | str | bool | None
_Mask = NDArray[np.bool_]

_HELP = (
    "only comparisons of columns with numbers, strings, True/False or None, joined by "
    "and/or/not, are supported, e.g. 'amount > 1000 and country == \"FR\"' "
    "(quote column names with spaces or dots in backticks: `unit price` > 3)"
)
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_OPS: dict[type, str] = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "==", ast.IsNot: "!=",
}
_PC = {"==": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal,
       ">": pc.greater, ">=": pc.greater_equal}
_WHAT: dict[type, str] = {
    ast.Call: "a function call", ast.Attribute: "an attribute (a.b)",
    ast.BinOp: "arithmetic", ast.Subscript: "indexing", ast.Lambda: "a lambda",
    ast.IfExp: "an if-expression", ast.Dict: "a dict", ast.Set: "a set",
    ast.JoinedStr: "an f-string", ast.NamedExpr: "an assignment",
}


@dataclass(frozen=True)
class _Cmp:
    column: str
    op: str  # one of _PC's keys, "in" or "not in"
    value: Literal | tuple[Literal, ...]


@dataclass(frozen=True)
class _Bool:
    op: str  # "and" or "or"
    parts: tuple[_Node, ...]


@dataclass(frozen=True)
class _Not:
    part: _Node


_Node = _Cmp | _Bool | _Not


def quote_name(name: str) -> str:
    """A column name as the slice language writes it: bare when it can be, else in backticks."""
    plain = (name.isidentifier() and not keyword.iskeyword(name)
             and unicodedata.normalize("NFKC", name) == name)
    return name if plain else "`" + name.replace("`", "``") + "`"


def _unsupported(expr: str, detail: str) -> ConfigError:
    return ConfigError(f"Cannot read slice {expr!r} ({detail}): {_HELP}.")


def _prepare(expr: str) -> tuple[str, dict[str, str]]:
    """``expr`` with backtick names as placeholder identifiers and ``& | ~`` as words."""
    base = "_hs_col"
    while base in expr:  # a placeholder must not clash with a name the user wrote
        base += "_"
    out: list[str] = []
    names: dict[str, str] = {}
    i, n = 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch in "'\"":  # copy a string literal through untouched
            j = i + 1
            while j < n and expr[j] != ch:
                j += 2 if expr[j] == "\\" else 1
            out.append(expr[i:j + 1])
            i = j + 1
        elif ch == "`":
            parts, j = [], i + 1
            while True:
                k = expr.find("`", j)
                if k < 0:
                    raise _unsupported(expr, "a backtick is not closed")
                if expr[k + 1:k + 2] == "`":
                    parts.append(expr[j:k + 1])
                    j = k + 2
                    continue
                parts.append(expr[j:k])
                break
            name = "".join(parts)
            if not name:
                raise _unsupported(expr, "empty backticks")
            placeholder = f"{base}{len(names)}"
            names[placeholder] = name
            out.append(f" {placeholder} ")
            i = k + 1
        else:
            out.append({"&": " and ", "|": " or ", "~": " not "}.get(ch, ch))
            i += 1
    return "".join(out), names


def _literal(node: ast.expr, expr: str) -> Literal:
    if isinstance(node, ast.Constant) and (node.value is None
                                           or isinstance(node.value, int | float | str)):
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd)
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float)
            and not isinstance(node.operand.value, bool)):
        value = node.operand.value
        return -value if isinstance(node.op, ast.USub) else value
    raise _unsupported(expr, f"{ast.unparse(node)} is not a number, string, True/False or None")


def _compare(left: ast.expr, op: ast.cmpop, right: ast.expr, expr: str,
             names: dict[str, str]) -> _Cmp:
    sym = _OPS.get(type(op))
    if sym is None:
        raise _unsupported(expr, f"the operator {type(op).__name__} is not allowed")
    if isinstance(left, ast.Name) and isinstance(right, ast.Name):
        raise _unsupported(expr, f"{ast.unparse(left)} and {ast.unparse(right)} are both columns")
    if isinstance(right, ast.Name):
        if sym in ("in", "not in"):
            raise _unsupported(expr, "'in' needs a column on the left and a list on the right")
        left, right, sym = right, left, _FLIP[sym]
    if not isinstance(left, ast.Name):
        odd = next((n for n in (left, right) if type(n) in _WHAT), None)
        detail = (_WHAT[type(odd)] if odd is not None
                  else f"{ast.unparse(left)} {sym} {ast.unparse(right)} reads no column")
        raise _unsupported(expr, detail)
    column = names.get(left.id, left.id)
    if isinstance(op, ast.Is | ast.IsNot) and not (
            isinstance(right, ast.Constant) and right.value is None):
        raise _unsupported(expr, "'is' compares only with None")
    if sym in ("in", "not in"):
        if not isinstance(right, ast.List | ast.Tuple) or not right.elts:
            raise _unsupported(expr, f"'{sym}' needs a non-empty list of literals, e.g. [1, 2]")
        values = tuple(_literal(e, expr) for e in right.elts)
        kinds = {_kind_of(v) for v in values} - {"null"}
        if len(kinds) > 1:
            raise _unsupported(expr, f"the list {ast.unparse(right)} mixes {' and '.join(sorted(kinds))}")
        return _Cmp(column, sym, values)
    value = _literal(right, expr)
    if value is None and sym not in ("==", "!="):
        raise _unsupported(expr, "None compares only with == or !=; x == None selects the missing values")
    return _Cmp(column, sym, value)


def _convert(node: ast.expr, expr: str, names: dict[str, str]) -> _Node:
    if isinstance(node, ast.BoolOp):
        op = "and" if isinstance(node.op, ast.And) else "or"
        return _Bool(op, tuple(_convert(v, expr, names) for v in node.values))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return _Not(_convert(node.operand, expr, names))
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        parts = tuple(_compare(operands[i], op, operands[i + 1], expr, names)
                      for i, op in enumerate(node.ops))
        return parts[0] if len(parts) == 1 else _Bool("and", parts)
    if isinstance(node, ast.Name):  # a bare boolean column
        return _Cmp(names.get(node.id, node.id), "==", True)
    detail = _WHAT.get(type(node), f"{ast.unparse(node)!r} is not a comparison")
    raise _unsupported(expr, detail)


def _columns(node: _Node, out: dict[str, None]) -> None:
    if isinstance(node, _Cmp):
        out.setdefault(node.column)
    elif isinstance(node, _Not):
        _columns(node.part, out)
    else:
        for part in node.parts:
            _columns(part, out)


class _Renamer(ast.NodeTransformer):
    """Write columns back as the language quotes them and fold ``-5`` into one constant."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.Name(id=quote_name(self.names.get(node.id, node.id)), ctx=node.ctx)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        node = self.generic_visit(node)  # type: ignore[assignment]
        if isinstance(node.op, ast.USub | ast.UAdd) and isinstance(node.operand, ast.Constant):
            value = node.operand.value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return ast.Constant(-value if isinstance(node.op, ast.USub) else value)
        return node


def _parse(expr: str) -> tuple[_Node, str, tuple[str, ...]]:
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigError(f"A slice must be a non-empty string, e.g. 'age < 30'. Got {expr!r}.")
    text, names = _prepare(expr)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise _unsupported(expr, f"not valid syntax: {exc.msg}") from None
    node = _convert(tree.body, expr, names)
    cols: dict[str, None] = {}
    _columns(node, cols)
    normal = ast.unparse(_Renamer(names).visit(tree))
    return node, normal, tuple(cols)


@dataclass(frozen=True)
class Slice:
    """A subset of rows written as a predicate; ``Slice("age < 30").mask(table)`` gives its rows.

    ``expr`` is normalised on construction (``"age<30"`` becomes ``"age < 30"``) and
    ``columns`` lists the columns it reads, in order of first use.

    >>> import pyarrow as pa
    >>> s = Slice("7 <= age < 30 & country in ['FR', 'BR']")
    >>> s.expr, s.columns
    ("7 <= age < 30 and country in ['FR', 'BR']", ('age', 'country'))
    >>> s.mask(pa.table({"age": [5, 20, 25], "country": ["FR", "BR", "US"]})).tolist()
    [False, True, False]
    """

    expr: str
    columns: tuple[str, ...] = field(init=False)
    _tree: _Node = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tree, normal, cols = _parse(self.expr)
        object.__setattr__(self, "expr", normal)
        object.__setattr__(self, "columns", cols)
        object.__setattr__(self, "_tree", tree)

    def mask(self, table: pa.Table) -> _Mask:
        """One boolean per row of ``table``: whether the row is in the slice."""
        cache: dict[str, pa.ChunkedArray] = {}
        return _evaluate(self._tree, table, self.expr, cache)

    def to_dict(self) -> dict[str, Any]:
        return {"expr": self.expr, "columns": list(self.columns)}


def parse_slice(expr: str) -> Slice:
    """Read a slice from its text (see the module docstring for the language)."""
    return Slice(expr)


def slice_mask(data: Any, expr_or_slice: str | Slice) -> _Mask:
    """The rows of ``data`` (any frame :func:`hindsight.data.frames.to_arrow` reads) in a slice."""
    s = expr_or_slice if isinstance(expr_or_slice, Slice) else Slice(expr_or_slice)
    return s.mask(to_arrow(data, what="data"))


# ----------------------------------------------------------------------------- masks


def _kind_of(value: Literal) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return "string" if isinstance(value, str) else "number"


def _column_kind(dtype: pa.DataType) -> str | None:
    if pa.types.is_boolean(dtype):
        return "bool"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "number"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "string"
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return "time"
    return "null" if pa.types.is_null(dtype) else None


def _get(table: pa.Table, name: str, expr: str, cache: dict[str, pa.ChunkedArray]) -> pa.ChunkedArray:
    if name in cache:
        return cache[name]
    names = table.column_names
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        shown = ", ".join(map(repr, names[:8])) + (", ..." if len(names) > 8 else "")
        raise DataError(
            f"Slice {expr!r} reads column {name!r}, which the data does not have.{hint} "
            f"Its {len(names)} columns: {shown}. Quote names with spaces or dots in backticks."
        )
    col = table.column(name)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_decimal(col.type):
        col = col.cast(pa.float64())
    elif pa.types.is_string_view(col.type):
        col = col.cast(pa.string())
    cache[name] = col
    return col


def _scalar(value: Literal, col: pa.ChunkedArray, kind: str, name: str, expr: str) -> pa.Scalar:
    lit = _kind_of(value)
    ok = lit == kind or (kind == "time" and lit == "string")
    if not ok:
        example = {"number": f"{quote_name(name)} > 3", "string": f"{quote_name(name)} == 'FR'",
                   "bool": f"{quote_name(name)} == True",
                   "time": f"{quote_name(name)} >= '2024-01-31'"}[kind]
        raise DataError(
            f"Slice {expr!r} compares column {name!r} ({col.type}) with a {lit} ({value!r}); "
            f"compare it with a {'ISO date string' if kind == 'time' else kind}, e.g. {example}."
        )
    if kind != "time":
        try:
            return pa.scalar(value)
        except (pa.ArrowInvalid, OverflowError) as exc:
            raise DataError(f"Slice {expr!r}: {value!r} cannot be compared: {exc}.") from exc
    dtype = col.type
    try:
        return pa.scalar(value).cast(dtype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if pa.types.is_timestamp(dtype) and dtype.tz is not None:
        try:  # a naive string against a zoned column: read it as UTC
            naive = pa.scalar(value).cast(pa.timestamp(dtype.unit))
            return pa.scalar(naive.value, type=dtype)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    raise DataError(
        f"Slice {expr!r}: {value!r} is not a date or time column {name!r} ({dtype}) can read; "
        "write it as ISO 8601, e.g. '2024-01-31' or '2024-01-31T12:00:00'."
    )


def _np(arr: pa.ChunkedArray) -> _Mask:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _compare_mask(node: _Cmp, table: pa.Table, expr: str,
                  cache: dict[str, pa.ChunkedArray]) -> _Mask:
    col = _get(table, node.column, expr, cache)
    kind = _column_kind(col.type)
    if kind is None:
        raise DataError(
            f"Slice {expr!r}: column {node.column!r} has type {col.type}, which slices cannot "
            "compare; use numeric, string, boolean, date or timestamp columns."
        )
    missing = _np(pc.is_null(col, nan_is_null=True))
    values = node.value if isinstance(node.value, tuple) else (node.value,)
    present = [v for v in values if v is not None]
    if node.op in ("==", "!=") and node.value is None:
        return missing if node.op == "==" else ~missing
    if kind == "bool" and node.op not in ("==", "!=", "in", "not in"):
        raise DataError(f"Slice {expr!r}: column {node.column!r} is boolean; compare it with "
                        f"== True or == False, not {node.op}.")
    hit = np.zeros(len(table), dtype=bool)
    if kind != "null":
        scalars = [_scalar(v, col, kind, node.column, expr) for v in present]
        if node.op in ("in", "not in"):
            for s in scalars:  # lists are short; one vectorised pass per value
                hit |= _np(pc.equal(col, s))
        else:
            hit = _np(_PC[node.op](col, scalars[0]))
    if node.op == "in":
        return hit | missing if None in values else hit & ~missing
    if node.op == "not in":
        return ~hit & ~missing
    return hit & ~missing


def _evaluate(node: _Node, table: pa.Table, expr: str,
              cache: dict[str, pa.ChunkedArray]) -> _Mask:
    if isinstance(node, _Cmp):
        return _compare_mask(node, table, expr, cache)
    if isinstance(node, _Not):
        return ~_evaluate(node.part, table, expr, cache)
    masks = [_evaluate(p, table, expr, cache) for p in node.parts]
    out = masks[0].copy()
    for m in masks[1:]:
        if node.op == "and":
            out &= m
        else:
            out |= m
    return out
