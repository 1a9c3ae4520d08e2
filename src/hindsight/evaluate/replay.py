"""Replaying recorded requests against a model service: the machinery of a ``replay`` scenario.

A replay sends a recorded sequence of requests, in order, to a target: a guarded
:class:`~hindsight.serving.Service` (anything with an async
``predict(inputs, *, request_id, key)``), the base URL of its HTTP API, or any
``callable(inputs) -> output``. Each answer becomes a :class:`Reply`, is checked against
the step's ``expect`` and comes back as a :class:`ReplayStep`. Order matters: state (sticky
A/B arms, breakers, rate limits) carries from one step to the next.

:meth:`hindsight.evaluate.scenarios.Scenarios.replay` defines a replay and turns its steps
into a scenario verdict.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import numbers
import os
import threading
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hindsight._plain import plain, plain_fields
from hindsight.errors import ConfigError, DataError

__all__ = ["ReplayStep", "Reply"]

#: What a guarded service's response reports, so a replay step's ``expect`` may check it.
_FIELDS = (
    "id", "request_id", "output", "confidence", "tier", "version", "arm", "reason",
    "fell_back", "abstained", "audited", "review_ticket", "latency_ms",
)  # fmt: skip
_STEP_KEYS = frozenset({"inputs", "key", "request_id", "expect", "name"})
_NO_EXPECT = object()


# -- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What a replay target answered to one step, in one shape whatever the target.

    A callable target reports only ``output``; a service (in process or over HTTP) also
    its tier, confidence, abstention, arm and fallback. ``fields`` holds everything.
    """

    output: Any
    tier: str | None = None
    confidence: float | None = None
    abstained: bool | None = None
    arm: str | None = None
    fell_back: bool | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, fields: Mapping[str, Any]) -> Reply:
        f = plain(dict(fields))
        return cls(
            f.get("output"), f.get("tier"), f.get("confidence"), f.get("abstained"),
            f.get("arm"), f.get("fell_back"), f,
        )  # fmt: skip


@dataclass(frozen=True)
class ReplayStep:
    """One replayed request: what was expected, what came back and whether it matched."""

    index: int
    name: str | None
    key: str | None
    passed: bool
    reason: str
    expected: Any
    response: dict[str, Any] | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


# -- definition ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Replay:
    """A replay scenario as defined: its checked requests, in order, and where they go."""

    name: str
    requests: tuple[dict[str, Any], ...]
    target: Any
    target_kind: str
    token: str | None
    tolerance: float
    timeout: float


# -- running ------------------------------------------------------------------------------


def _target_kind(owner: str, target: Any) -> str:
    if isinstance(target, str):
        if not target.startswith(("http://", "https://")):
            raise ConfigError(
                f"The 'target' URL of {owner} must start with http:// or https://. Got {target!r}."
            )
        return "http"
    if inspect.iscoroutinefunction(getattr(target, "predict", None)):
        return "service"
    if callable(target):
        return "callable"
    raise ConfigError(
        f"The 'target' parameter of {owner} must be a Service, the base URL of its HTTP API "
        f"or a callable(inputs) -> output. Got {type(target).__name__}."
    )


def _load_requests(owner: str, requests: Any) -> tuple[dict[str, Any], ...]:
    # A bad file is bad data; a bad list in code is a bad parameter.
    error: type[DataError] | type[ConfigError]
    if isinstance(requests, str | os.PathLike):
        path = Path(requests)
        if not path.is_file():
            raise DataError(f"The requests file {str(path)!r} of {owner} does not exist.")
        rows: list[Any] = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(
                        f"Line {number} of {str(path)!r} is not JSON: {exc}. One request per line."
                    ) from exc
        where, error = f"{str(path)!r} line", DataError
    elif isinstance(requests, Sequence) and not isinstance(requests, bytes):
        rows, where, error = list(requests), "request", ConfigError
    else:
        raise ConfigError(
            f"The 'requests' of {owner} must be a list of requests or a .jsonl path. "
            f"Got {requests!r}."
        )
    if not rows:
        raise ConfigError(f"The replay {owner} has no requests.")
    steps = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, Mapping) or not isinstance(row.get("inputs"), Mapping):
            raise error(
                f"{where} {i} of {owner} needs 'inputs', a mapping of feature to value. "
                f"Got {row!r}."
            )
        unknown = sorted(set(row) - _STEP_KEYS)
        if unknown:
            raise error(
                f"{where} {i} of {owner} has unknown keys {unknown}; use {sorted(_STEP_KEYS)}."
            )
        for key in ("key", "request_id", "name"):
            if row.get(key) is not None and not isinstance(row[key], str):
                raise error(f"{where} {i} of {owner}: {key!r} must be a string. Got {row[key]!r}.")
        expect = row.get("expect", _NO_EXPECT)
        if isinstance(expect, Mapping) and not set(expect) <= set(_FIELDS):
            raise error(
                f"{where} {i} of {owner}: expect's keys {sorted(set(expect) - set(_FIELDS))} are "
                f"not response fields ({', '.join(_FIELDS)}); to compare a dict output write "
                "{'output': {...}}."
            )
        steps.append(dict(row))
    return tuple(steps)


def _same(got: Any, want: Any, tol: float) -> bool:
    if isinstance(got, bool) or isinstance(want, bool):
        return isinstance(got, bool) and isinstance(want, bool) and got == want
    if isinstance(got, numbers.Real) and isinstance(want, numbers.Real):
        g, w = float(got), float(want)
        return (math.isnan(g) and math.isnan(w)) or g == w or abs(g - w) <= tol
    if isinstance(got, Mapping) and isinstance(want, Mapping):
        return set(got) == set(want) and all(_same(got[k], want[k], tol) for k in want)
    if isinstance(got, list | tuple) and isinstance(want, list | tuple):
        return len(got) == len(want) and all(
            _same(g, w, tol) for g, w in zip(got, want, strict=True)
        )
    return bool(got == want)


def _judge(expect: Any, reply: Reply, tol: float) -> tuple[bool, str]:
    if expect is _NO_EXPECT:
        return True, "answered"
    if callable(expect):
        try:
            ok = bool(expect(reply))
        except Exception as exc:  # a broken expectation fails its step, not the replay
            return False, f"the expect callable raised {type(exc).__name__}: {exc}"
        return ok, "as expected" if ok else f"{_describe(expect)} returned False"
    checks = expect.items() if isinstance(expect, Mapping) else [("output", expect)]
    problems = []
    for name, want in checks:
        if name not in reply.fields:
            problems.append(f"the target does not report {name!r}")
        elif not _same(reply.fields[name], plain(want), tol):
            problems.append(f"{name} was {reply.fields[name]!r}, expected {plain(want)!r}")
    return not problems, "; ".join(problems) or "as expected"


def _describe(value: Any) -> Any:
    if callable(value):
        return f"<{getattr(value, '__qualname__', type(value).__name__)}>"
    return None if value is _NO_EXPECT else plain(value)


def _in_own_loop(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to completion from sync code, even when a loop already runs (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: list[Any] = []

    def target() -> None:
        try:
            box.append(asyncio.run(coro))
        except BaseException as exc:
            box.append(exc)

    thread = threading.Thread(target=target, name="hindsight-replay")
    thread.start()
    thread.join()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def _replay_steps(check: _Replay) -> list[ReplayStep]:
    """Send every request of ``check`` in order and judge each answer, in step order."""
    answers: list[Reply | str]  # a reply, or the error that stopped the step
    if check.target_kind == "service":

        async def replay_all() -> list[Reply | str]:
            out: list[Reply | str] = []
            for step in check.requests:  # in order: state carries from one step to the next
                try:
                    response = await check.target.predict(
                        step["inputs"], request_id=step.get("request_id"), key=step.get("key")
                    )
                except Exception as exc:
                    out.append(f"{type(exc).__name__}: {exc}")
                    continue
                to_dict = getattr(response, "to_dict", None)
                fields = to_dict() if callable(to_dict) else {
                    f: getattr(response, f) for f in _FIELDS if hasattr(response, f)
                }  # fmt: skip
                out.append(Reply.of(fields))
            return out

        answers = _in_own_loop(replay_all())
    elif check.target_kind == "http":
        answers = _replay_http(check)
    else:
        answers = []
        for step in check.requests:
            try:
                answers.append(Reply.of({"output": check.target(step["inputs"])}))
            except Exception as exc:
                answers.append(f"{type(exc).__name__}: {exc}")
    steps = []
    for i, (step, answer) in enumerate(zip(check.requests, answers, strict=True), 1):
        expect = step.get("expect", _NO_EXPECT)
        if isinstance(answer, str):
            ok, reason, response, error = False, f"the target failed: {answer}", None, answer
        else:
            ok, reason = _judge(expect, answer, check.tolerance)
            response, error = answer.fields, None
        steps.append(ReplayStep(i, step.get("name"), step.get("key"), ok, reason,
                                _describe(expect), response, error))  # fmt: skip
    return steps


def _replay_http(check: _Replay) -> list[Reply | str]:
    url = str(check.target).rstrip("/") + "/predict"
    headers = {"Authorization": f"Bearer {check.token}"} if check.token else {}
    out: list[Reply | str] = []
    with httpx.Client(timeout=check.timeout, headers=headers) as client:
        for step in check.requests:  # one client, in order: the server sees one session
            body = {k: step[k] for k in ("inputs", "request_id", "key") if step.get(k) is not None}
            try:
                response = client.post(url, json=body)
            except httpx.HTTPError as exc:
                out.append(f"{type(exc).__name__}: {exc}")
                continue
            if response.status_code != 200:
                try:
                    detail = response.json().get("detail", response.text)
                except (ValueError, AttributeError):
                    detail = response.text
                out.append(f"HTTP {response.status_code}: {detail}")
                continue
            out.append(Reply.of(response.json()))
    return out
