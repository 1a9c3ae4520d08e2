"""The HTTP API of a guarded :class:`~hindsight.serving.service.Service` (FastAPI).

``create_app(service, token=...)`` builds the application; ``serve(service)`` runs it with
uvicorn (``hindsight serve service.yaml`` does both). The interactive OpenAPI docs are at
``/docs`` and the spec at ``/openapi.json``.

Endpoints (JSON in and out, except ``/metrics``):

=======================================  =====  ===============================================
Endpoint                                 Token  What it does
=======================================  =====  ===============================================
``POST /predict``                        no     answer one request (the serving path)
``POST /outcomes``                       yes    record labels and/or rewards of predictions
``GET /review``                          yes    list review items (``status``, ``limit``)
``GET /review/{item_id}``                yes    one review item
``POST /review/{item_id}/claim``         yes    a reviewer takes a pending item
``POST /review/{item_id}/release``       yes    give a claimed item back to the pool
``POST /review/{item_id}/decide``        yes    the reviewer's answer; it becomes the label
``GET /rollout``                         yes    the current (or last) rollout, ``null`` if none
``POST /rollout/canary``                 yes    start a canary of a declared candidate (201)
``POST /rollout/shadow``                 yes    start a shadow of a declared candidate (201)
``POST /rollout/ab``                     yes    start an A/B test of declared candidates (201)
``POST /rollout/stop``                   yes    stop the running rollout
``GET /status``                          yes    everything ``Service.status()`` reports
``GET /health``                          no     ``ok`` or ``degraded`` and each tier's breaker
``GET /metrics``                         no     Prometheus text exposition (format 0.0.4)
=======================================  =====  ===============================================

**Authentication.** Every endpoint marked *yes* needs ``Authorization: Bearer <token>``
(compared in constant time): without one the answer is 401 with ``WWW-Authenticate:
Bearer``, with a wrong one 403. ``/predict`` stays open because it is the serving path;
``/health`` and ``/metrics`` stay open for load balancers and Prometheus, so put the
service behind a network boundary if its request counts are sensitive. ``GET /rollout``
needs the token too (it shows the candidates' versions and analyses); the OpenAPI docs
(``/docs``, ``/redoc``, ``/openapi.json``) are open. The token is required:
``create_app`` refuses to build without one.

**Errors** are JSON ``{"error": code, "detail": message}``:

* 400: a body that cannot be read at all (not UTF-8 text);
* 401 / 403: missing or wrong token (see above);
* 404: no such review item, no such candidate, or the service has no review queue;
* 409: a review item in the wrong state or claimed by another reviewer, a rollout
  already running, no rollout to stop (:class:`~hindsight.errors.ReviewError`,
  :class:`~hindsight.errors.ServingError`);
* 422: an invalid request (the ``detail`` names each field, ``errors`` lists them) or
  a setting the service refused (:class:`~hindsight.errors.ConfigError`);
* 503: every tier of the fallback chain failed (``fallback_exhausted``), or the store
  cannot be reached (``store_unavailable``);
* 500: anything unexpected; the traceback goes to the ``hindsight.serving.app`` logger.

An unknown candidate is a 404 (not a 409) whichever rollout names it.

**Metrics** (``GET /metrics``), read from the service at scrape time, from a registry of
this app's own (never the global one), every metric labelled by ``service``:

==============================================  =========  =========================================
Metric                                          Type       Meaning
==============================================  =========  =========================================
``hindsight_requests_total{arm,tier}``          counter    requests answered, by arm and tier
``hindsight_request_latency_seconds{arm}``      histogram  ``/predict`` latency (answered requests)
``hindsight_fallbacks_total``                   counter    requests a later tier answered
``hindsight_abstentions_total``                 counter    requests the service abstained on
``hindsight_audits_total``                      counter    requests sampled for an audit review
``hindsight_reviews_submitted_total``           counter    review items created
``hindsight_reviews_refused_total``             counter    review items the full/late queue refused
``hindsight_exhausted_total``                   counter    requests every tier failed (503)
``hindsight_outcomes_total``                    counter    outcomes recorded (labels, rewards)
``hindsight_review_decisions_total``            counter    reviewers' decisions
``hindsight_review_overrides_total``            counter    decisions that changed the served answer
``hindsight_breaker_state{tier}``               gauge      0 closed, 1 half-open, 2 open
``hindsight_tier_p99_seconds{tier}``            gauge      recent p99 latency (once known)
``hindsight_review_pending``                    gauge      pending review items (with a queue)
``hindsight_prediction_log_pending``            gauge      log records not yet written (with a log)
``hindsight_prediction_log_dropped_total``      counter    log records dropped (with a log)
``hindsight_rollout_share{kind}``               gauge      live traffic share of the candidate(s);
                                                           for a shadow, the share mirrored
``hindsight_rollout_active{kind}``              gauge      1 while a rollout of that kind runs
==============================================  =========  =========================================

The latency buckets (1 ms to 1 s) are dense around the default 50 ms deadline. Requests
that every tier failed have no arm and are counted only in ``hindsight_exhausted_total``.
"""

import gc
import hmac
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from hindsight._plain import plain
from hindsight.errors import (
    ConfigError,
    FallbackExhausted,
    ReviewError,
    ReviewNotFound,
    ServingError,
    StoreError,
)
from hindsight.review.queue import ReviewQueue
from hindsight.serving.service import Service

__all__ = ["LATENCY_BUCKETS", "METRICS_CONTENT_TYPE", "create_app", "serve"]

logger = logging.getLogger(__name__)

#: Histogram buckets of ``hindsight_request_latency_seconds``, dense around a 50 ms deadline.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.075, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip

#: The Prometheus text format ``/metrics`` is served in.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_TOKEN_ENV = "HINDSIGHT_SERVE_TOKEN"
_BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
_ROLLOUT_KINDS = ("canary", "shadow", "ab")
_NAME = 200  # longest id, name or reviewer accepted


# -- JSON ---------------------------------------------------------------------------------


class _JSON(JSONResponse):
    """Strict JSON; only content that is not (NaN, NumPy values) pays for a cleaning pass."""

    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError):
            text = json.dumps(
                plain(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")
            )
        return text.encode("utf-8")


# -- request and response bodies ----------------------------------------------------------


class _Body(BaseModel):
    # Strict: ``true`` is no number and ``"3"`` no integer (an int is still a valid float).
    model_config = ConfigDict(extra="forbid", strict=True)


class PredictRequest(_Body):
    """One request to answer."""

    inputs: dict[str, Any] = Field(
        description="The request's features: a JSON object of feature name to value."
    )
    request_id: str | None = Field(
        default=None,
        max_length=_NAME,
        description="Your id of the request, logged with the prediction and used for the "
        "audit draw.",
    )
    key: str | None = Field(
        default=None,
        max_length=1000,
        description="A user or session id: keeps canary and A/B assignment sticky. Without "
        "it the request id (or a fresh one) decides.",
    )


class AttemptOut(BaseModel):
    tier: str = Field(description="The tier tried.")
    outcome: str = Field(
        description="answered, abstained, error, timeout, invalid, circuit_open or too_slow."
    )
    latency_ms: float = Field(description="How long the tier took.")
    detail: str = Field(description="Why the tier did not answer, if it did not.")


class PredictResponse(BaseModel):
    id: str = Field(description="The prediction's id: quote it in POST /outcomes.")
    request_id: str | None = Field(description="The request id you sent.")
    output: Any = Field(description="The answer served.")
    confidence: float | None = Field(description="The answering tier's confidence, if any.")
    tier: str = Field(description="The tier that answered.")
    version: str = Field(description="The version of the model that answered.")
    arm: str = Field(description="baseline, canary, or an A/B arm's name.")
    reason: str = Field(description="Why this tier answered: the earlier tiers' misses.")
    fell_back: bool = Field(description="True when a tier after the first answered.")
    abstained: bool = Field(description="True when the model abstained (fail-safe answer).")
    audited: bool = Field(description="True when the request was sampled for an audit.")
    review_ticket: str | None = Field(description="The review item's id, if one was opened.")
    latency_ms: float = Field(description="Time the fallback chain took.")
    attempts: list[AttemptOut] = Field(description="Every tier tried, in order.")


class OutcomeIn(_Body):
    """A prediction's label and/or reward."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "anyOf": [
                {"required": ["label"], "properties": {"label": {"not": {"type": "null"}}}},
                {"required": ["reward"], "properties": {"reward": {"type": "number"}}},
            ]
        },
    )

    prediction_id: str = Field(
        min_length=1, max_length=_NAME, description="The id POST /predict returned."
    )
    label: Any = Field(default=None, description="The true answer (any JSON value).")
    reward: float | None = Field(
        default=None, allow_inf_nan=False, description="A reward, e.g. 1 for a click."
    )

    @model_validator(mode="after")
    def _needs_label_or_reward(self) -> "OutcomeIn":
        if self.label is None and self.reward is None:
            raise ValueError(
                f"the outcome of {self.prediction_id!r} needs a label, a reward or both"
            )
        return self


class OutcomesRequest(_Body):
    outcomes: list[OutcomeIn] = Field(
        min_length=1,
        max_length=10_000,
        description="1 to 10000 outcomes, written in one transaction (all or none).",
    )


class OutcomesResponse(BaseModel):
    ids: list[str | None] = Field(
        description="The outcomes' ids, in order (null where the service keeps no log)."
    )


class ReviewItemOut(BaseModel):
    id: str = Field(description="The review item's id.")
    prediction_id: str = Field(description="The prediction under review.")
    service: str
    status: str = Field(description="pending, claimed, decided or expired.")
    reason: str = Field(description="Why the request was sent for review.")
    priority: int = Field(description="1 for abstentions, 0 for audit samples.")
    inputs: dict[str, Any] = Field(description="The request's inputs.")
    proposed_output: Any = Field(description="The answer the service served.")
    created_at: float
    due_at: float = Field(description="When the item breaks the queue's SLA.")
    reviewer: str | None = None
    decision: Any = None
    note: str | None = None
    claimed_at: float | None = None
    decided_at: float | None = None


class ReviewListResponse(BaseModel):
    items: list[ReviewItemOut] = Field(description="Highest priority first, then oldest first.")


_NOT_BLANK = r"[^\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_Reviewer = Annotated[
    str,
    Field(
        min_length=1,
        max_length=_NAME,
        # Some character that is not whitespace (as str.isspace() sees it), spelt out so every
        # regex engine (Python, Rust, ECMA) reads it the same.
        pattern=_NOT_BLANK,
        description="Who reviews (a name or e-mail address; not blank).",
    ),
]


class ClaimRequest(_Body):
    reviewer: _Reviewer


class DecideRequest(_Body):
    reviewer: _Reviewer
    output: Any = Field(
        description="The reviewer's answer (any JSON value but null). It overrides the "
        "served answer and becomes the prediction's label.",
        json_schema_extra={"not": {"type": "null"}},
    )
    note: str | None = Field(default=None, max_length=10_000, description="Why, for the record.")

    @field_validator("output")
    @classmethod
    def _not_null(cls, output: Any) -> Any:
        if output is None:
            raise ValueError("a decision needs an output: it becomes the prediction's label")
        return output


class DecisionOut(BaseModel):
    item_id: str
    prediction_id: str
    reviewer: str
    output: Any = Field(description="The reviewer's answer, now the prediction's label.")
    proposed_output: Any = Field(description="The answer the service had served.")
    overridden: bool = Field(description="True when the reviewer's answer differs.")
    note: str | None
    decided_at: float


class CanaryRequest(_Body):
    candidate: str = Field(
        min_length=1, max_length=_NAME, description="A candidate declared on the service."
    )
    steps: list[Annotated[float, Field(gt=0, le=100)]] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Increasing traffic percentages, e.g. [1, 5, 25, 50, 100] (the default).",
    )
    interval_s: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="Seconds per analysis interval."
    )
    min_requests: int | None = Field(
        default=None, ge=1, description="Canary requests an interval needs before it is judged."
    )
    salt: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="What keys are hashed with to pick an arm (default: the rollout's id, "
        "so each rollout reshuffles users); the same salt gives the same assignment.",
    )

    @field_validator("min_requests", mode="before")
    @classmethod
    def _integral(cls, value: Any) -> Any:
        # JSON Schema counts 50.0 as an integer; strict mode would not.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value


class ShadowRequest(_Body):
    candidate: str = Field(
        min_length=1, max_length=_NAME, description="A candidate declared on the service."
    )
    sample: float | None = Field(
        default=None, gt=0, le=1, description="Share of requests mirrored (default 1)."
    )


class ABRequest(_Body):
    arms: dict[str, str] = Field(
        min_length=1,
        description="Treatment arm name -> declared candidate; the service's own model is "
        "the 'control' arm.",
    )
    weights: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] | None = Field(
        default=None, description="Every arm's weight, 'control' included (default: equal)."
    )
    event: Literal["reward", "label"] | None = Field(
        default=None,
        description="What counts as an event: reward > 0 (the default) or a truthy label.",
    )
    salt: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="What keys are hashed with to pick an arm (default: the rollout's id, "
        "so each rollout reshuffles users); the same salt gives the same assignment.",
    )


class StopRequest(_Body):
    reason: str | None = Field(default=None, max_length=4000, description="Why, for the record.")


class RolloutStatus(BaseModel):
    """A rollout's state; each kind adds its own fields (analyses, comparisons, lifts)."""

    model_config = ConfigDict(extra="allow")

    id: str
    kind: str = Field(description="canary, shadow or ab.")
    status: str = Field(description="running, stopped, promoted, rolled_back, ...")
    reason: str
    candidate: str = Field(description="The candidate's version.")


class TierHealth(BaseModel):
    tier: str
    state: str = Field(description="The tier's breaker: closed, half_open or open.")


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="degraded while the breaker of any tier but the last (fail-safe) is open."
    )
    service: str
    version: str = Field(description="The version of the primary model.")
    tiers: list[TierHealth]


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description="Where: body, query or path, then the field.")
    msg: str
    type: str


class ErrorBody(BaseModel):
    error: str = Field(description="A short code, e.g. not_found or fallback_exhausted.")
    detail: str = Field(description="What went wrong and what to do next.")
    errors: list[ValidationIssue] | None = Field(
        default=None, description="422 for an invalid request: every problem found."
    )


_ERROR_TEXT = {
    400: "The body could not be read (not UTF-8 JSON).",
    401: "No bearer token (send Authorization: Bearer <token>).",
    403: "The bearer token is wrong.",
    404: "Not found.",
    409: "Conflict with the current state.",
    422: "Invalid request.",
    503: "Unavailable.",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody, "description": _ERROR_TEXT[code]} for code in codes}


# -- errors -------------------------------------------------------------------------------


class _ApiError(Exception):
    """An error answer decided by the app itself (auth, no review queue, ...)."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


# Most specific first: the first class an exception is an instance of decides.
_STATUS_OF: tuple[tuple[type[Exception], int, str], ...] = (
    (ReviewNotFound, 404, "not_found"),
    (ReviewError, 409, "conflict"),
    (FallbackExhausted, 503, "fallback_exhausted"),
    (ServingError, 409, "conflict"),
    (ConfigError, 422, "invalid_request"),
    (StoreError, 503, "store_unavailable"),
)
_HANDLED: tuple[type[Exception], ...] = (
    _ApiError,
    StarletteHTTPException,
    RequestValidationError,
    *(cls for cls, _, _ in _STATUS_OF),
)


def _error(status: int, code: str, detail: str, **extra: Any) -> _JSON:
    return _JSON({"error": code, "detail": detail, **extra}, status_code=status)


async def _hindsight_error(request: Request, exc: Exception) -> Response:
    for cls, status, code in _STATUS_OF:
        if isinstance(exc, cls):
            if status >= 500 and not isinstance(exc, FallbackExhausted):
                logger.warning("%s %s: %s", request.method, request.url.path, exc)
            return _error(status, code, str(exc))
    raise exc  # pragma: no cover - only registered for the classes above


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _ApiError)
    response = _error(exc.status, exc.code, exc.detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    response = _error(exc.status_code, code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _where(loc: Any) -> str:
    out = ""
    for part in loc or ():
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    issues = []
    parts = []
    for e in exc.errors():
        loc = [p if isinstance(p, int) else str(p) for p in e.get("loc", ())]
        msg = str(e.get("msg", "invalid"))
        kind = str(e.get("type", "invalid"))
        if kind == "value_error" and msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        ctx = e.get("ctx")
        if kind == "json_invalid" and isinstance(ctx, Mapping) and ctx.get("error"):
            msg = f"{msg} ({ctx['error']})"
        issues.append({"loc": loc, "msg": msg, "type": kind})
        where = _where(loc)
        parts.append(f"{where}: {msg}" if where else msg)
    detail = "; ".join(parts) or "invalid request"
    return _error(422, "invalid_request", detail, errors=issues)


class _GuardedRoute(APIRoute):
    """Turns an unexpected exception into a logged 500 JSON answer (nothing swallowed)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except _HANDLED:
                raise
            except Exception as exc:
                logger.exception("%s %s failed", request.method, request.url.path)
                return _error(
                    500,
                    "internal_error",
                    f"An unexpected {type(exc).__name__}; the traceback is in the server log.",
                )

        return guarded


# -- metrics ------------------------------------------------------------------------------

# (metric name without _total, key of Service.counters.snapshot(), help)
_COUNTERS = (
    ("hindsight_fallbacks", "fallbacks", "Requests a tier after the first answered."),
    ("hindsight_abstentions", "abstentions", "Requests the service abstained on."),
    ("hindsight_audits", "audits", "Requests sampled for an audit review."),
    ("hindsight_reviews_submitted", "reviews", "Review items created."),
    ("hindsight_reviews_refused", "review_refused", "Review items the queue refused."),
    ("hindsight_exhausted", "exhausted", "Requests every tier failed (answered 503)."),
    ("hindsight_outcomes", "outcomes", "Outcomes (labels, rewards) recorded."),
    ("hindsight_review_decisions", "decisions", "Reviewers' decisions."),
    ("hindsight_review_overrides", "overrides", "Decisions that changed the served answer."),
)


class _ServiceCollector(Collector):
    """Reads the service's counters, breakers, queue, log and rollout at scrape time."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        svc = self.service
        name = svc.name
        counts = svc.counters.snapshot()
        requests = CounterMetricFamily(
            "hindsight_requests",
            "Requests answered, by arm and the tier that answered.",
            labels=["service", "arm", "tier"],
        )
        for row in counts.get("requests", ()):
            requests.add_metric([name, str(row["arm"]), str(row["tier"])], row["count"])
        yield requests
        for metric, key, text in _COUNTERS:
            family = CounterMetricFamily(metric, text, labels=["service"])
            family.add_metric([name], counts.get(key, 0))
            yield family

        breaker = GaugeMetricFamily(
            "hindsight_breaker_state",
            "Circuit breaker of each tier: 0 closed, 1 half-open, 2 open.",
            labels=["service", "tier"],
        )
        p99 = GaugeMetricFamily(
            "hindsight_tier_p99_seconds",
            "Recent p99 latency of each tier (once enough calls were seen).",
            labels=["service", "tier"],
        )
        for tier in svc.chain.snapshot():
            state = tier.get("breaker", {}).get("state")
            breaker.add_metric([name, tier["tier"]], _BREAKER_STATES.get(state, 2))
            if tier.get("p99_ms") is not None:
                p99.add_metric([name, tier["tier"]], tier["p99_ms"] / 1000.0)
        yield breaker
        yield p99

        if svc.review is not None:
            pending = GaugeMetricFamily(
                "hindsight_review_pending",
                "Review items waiting for a reviewer.",
                labels=["service"],
            )
            pending.add_metric([name], svc.review.stats().get("pending", 0))
            yield pending
        if svc.log is not None:
            log = svc.log.stats()
            waiting = GaugeMetricFamily(
                "hindsight_prediction_log_pending",
                "Prediction log records not yet written to the store.",
                labels=["service"],
            )
            waiting.add_metric([name], log.get("pending", 0))
            yield waiting
            dropped = CounterMetricFamily(
                "hindsight_prediction_log_dropped",
                "Prediction log records dropped (queue full or log closed).",
                labels=["service"],
            )
            dropped.add_metric([name], log.get("dropped", 0))
            yield dropped

        rollout = svc.rollout
        running = rollout is not None and rollout.active
        share = GaugeMetricFamily(
            "hindsight_rollout_share",
            "Share of live traffic the candidate(s) serve; for a shadow, the share mirrored.",
            labels=["service", "kind"],
        )
        active = GaugeMetricFamily(
            "hindsight_rollout_active",
            "1 while a rollout of this kind runs.",
            labels=["service", "kind"],
        )
        for kind in _ROLLOUT_KINDS:
            on = running and rollout is not None and rollout.kind == kind
            value = 0.0
            if on and rollout is not None:
                value = float(
                    getattr(rollout, "sample", 0.0) if kind == "shadow" else rollout.share
                )
            share.add_metric([name, kind], value)
            active.add_metric([name, kind], 1.0 if on else 0.0)
        yield share
        yield active


# -- the app ------------------------------------------------------------------------------


def create_app(service: Service, *, token: str | None, title: str | None = None) -> FastAPI:
    """The FastAPI application serving ``service``; see the module docstring for the API.

    ``token`` is the bearer token of every write and admin endpoint; it is required
    (:class:`~hindsight.errors.ConfigError` without one). On shutdown the app closes the
    service, which flushes its prediction log.
    """
    if not isinstance(service, Service):
        raise ConfigError(f"create_app() needs a Service; got {type(service).__name__}.")
    if not isinstance(token, str) or not token.strip():
        raise ConfigError(
            "The HTTP API needs a bearer token for its write and admin endpoints: pass "
            f"token=... or set {_TOKEN_ENV} (hindsight serve generates one when it is unset)."
        )
    expected = token.encode("utf-8")
    bearer = HTTPBearer(
        auto_error=False,
        scheme_name="bearer",
        description="The token given to `hindsight serve` (--token or HINDSIGHT_SERVE_TOKEN).",
    )

    async def require_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    ) -> None:
        if credentials is None:
            raise _ApiError(
                401,
                "unauthorized",
                "This endpoint needs the service's token: send 'Authorization: Bearer <token>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(credentials.credentials.encode("utf-8"), expected):
            raise _ApiError(403, "forbidden", "The bearer token is wrong.")

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ServiceCollector(service))
    latency = Histogram(
        "hindsight_request_latency_seconds",
        "Time POST /predict took to answer, by arm.",
        labelnames=["service", "arm"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    by_arm: dict[str, Any] = {}

    def observe(arm: str, seconds: float) -> None:
        child = by_arm.get(arm)
        if child is None:
            child = by_arm[arm] = latency.labels(service.name, arm)
        child.observe(seconds)

    def queue() -> ReviewQueue:
        if service.review is None:
            raise _ApiError(
                404,
                "no_review_queue",
                f"Service {service.name!r} has no review queue: give it an abstention policy "
                "(or review=ReviewQueue(...)) to route cases to reviewers.",
            )
        return service.review

    def check_candidates(*names: str) -> None:
        for candidate in names:
            try:
                service.candidate(candidate)
            except ServingError as exc:
                raise _ApiError(404, "unknown_candidate", str(exc)) from None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title=title or f"hindsight service {service.name}",
        version=_version(),
        description=(
            f"Guarded model service **{service.name}**: a fallback chain under a deadline, "
            "abstention with human review, canary / shadow / A/B rollouts. Write and admin "
            "endpoints need `Authorization: Bearer <token>`; /predict, /health and /metrics "
            "are open."
        ),
        lifespan=lifespan,
        default_response_class=_JSON,
        redirect_slashes=False,
    )
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(_ApiError, _api_error)
    for cls, _, _ in _STATUS_OF:
        app.add_exception_handler(cls, _hindsight_error)

    open_ = APIRouter(route_class=_GuardedRoute)
    admin = APIRouter(
        route_class=_GuardedRoute,
        dependencies=[Depends(require_token)],
        responses=_errors(401, 403),
    )

    # -- serving --------------------------------------------------------------------
    @open_.post(
        "/predict",
        response_model=PredictResponse,
        responses=_errors(400, 422, 503),
        summary="Answer one request",
        tags=["serving"],
    )
    async def predict(body: PredictRequest) -> Response:
        """Answer within the deadline through the fallback chain; 503 only if every tier
        failed. The answer says which tier gave it and why the earlier ones did not."""
        start = time.perf_counter()
        response = await service.predict(body.inputs, request_id=body.request_id, key=body.key)
        observe(response.arm, time.perf_counter() - start)
        return _JSON(response.to_dict())

    @admin.post(
        "/outcomes",
        response_model=OutcomesResponse,
        responses=_errors(400, 422, 503),
        summary="Record labels and rewards",
        tags=["serving"],
    )
    def outcomes(body: OutcomesRequest) -> Response:
        """Labels and/or rewards of earlier predictions, all in one transaction."""
        ids = service.record_outcomes([o.model_dump() for o in body.outcomes])
        return _JSON({"ids": ids})

    # -- review ---------------------------------------------------------------------
    item_id_path = Path(
        min_length=1,
        max_length=_NAME,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="A review item's id (rev_...).",
    )

    @admin.get(
        "/review",
        response_model=ReviewListResponse,
        responses=_errors(404, 422),
        summary="List review items",
        tags=["review"],
    )
    def review_list(
        status: Literal["pending", "claimed", "decided", "expired"] = Query(
            "pending", description="Which items to list."
        ),
        limit: int = Query(50, ge=1, le=1000, description="At most this many items."),
    ) -> Response:
        """Items of one status, highest priority (abstentions) first, then oldest first."""
        items = queue().list(status, limit=limit)
        return _JSON({"items": [i.to_dict() for i in items]})

    @admin.get(
        "/review/{item_id}",
        response_model=ReviewItemOut,
        responses=_errors(404, 422),
        summary="One review item",
        tags=["review"],
    )
    def review_get(item_id: str = item_id_path) -> Response:
        return _JSON(queue().get(item_id).to_dict())

    @admin.post(
        "/review/{item_id}/claim",
        response_model=ReviewItemOut,
        responses=_errors(400, 404, 409, 422),
        summary="Claim a pending item",
        tags=["review"],
    )
    def review_claim(body: ClaimRequest, item_id: str = item_id_path) -> Response:
        """Only pending items can be claimed; a second claim is a 409."""
        return _JSON(queue().claim(item_id, body.reviewer).to_dict())

    @admin.post(
        "/review/{item_id}/release",
        response_model=ReviewItemOut,
        responses=_errors(400, 404, 409, 422),
        summary="Give a claimed item back",
        tags=["review"],
    )
    def review_release(body: ClaimRequest, item_id: str = item_id_path) -> Response:
        """Only the reviewer who claimed the item can release it."""
        return _JSON(queue().release(item_id, body.reviewer).to_dict())

    @admin.post(
        "/review/{item_id}/decide",
        response_model=DecisionOut,
        responses=_errors(400, 404, 409, 422),
        summary="Decide a claimed item",
        tags=["review"],
    )
    def review_decide(body: DecideRequest, item_id: str = item_id_path) -> Response:
        """The reviewer's answer overrides the served one and is recorded as its label."""
        queue()
        d = service.decide(item_id, body.reviewer, body.output, note=body.note)
        return _JSON(
            {
                "item_id": d.item_id,
                "prediction_id": d.prediction_id,
                "reviewer": d.reviewer,
                "output": d.output,
                "proposed_output": d.proposed_output,
                "overridden": d.overridden,
                "note": d.note,
                "decided_at": d.decided_at,
            }
        )

    # -- rollouts -------------------------------------------------------------------
    @admin.get(
        "/rollout",
        response_model=RolloutStatus | None,
        summary="The current rollout",
        tags=["rollout"],
    )
    def rollout_get() -> Response:
        """The running rollout, or the last one (finished); null if there was none."""
        rollout = service.rollout
        return _JSON(rollout.status() if rollout is not None else None)

    @admin.post(
        "/rollout/canary",
        responses=_errors(400, 404, 409, 422),
        summary="Start a canary",
        status_code=201,
        response_model=RolloutStatus,
        tags=["rollout"],
    )
    def rollout_canary(body: CanaryRequest) -> Response:
        """Progressive delivery with automatic analysis and rollback. 404: unknown
        candidate; 409: a rollout already runs."""
        check_candidates(body.candidate)
        options = body.model_dump(exclude_none=True, exclude={"candidate"})
        return _JSON(service.start_canary(body.candidate, **options).status(), status_code=201)

    @admin.post(
        "/rollout/shadow",
        responses=_errors(400, 404, 409, 422),
        summary="Start a shadow",
        status_code=201,
        response_model=RolloutStatus,
        tags=["rollout"],
    )
    def rollout_shadow(body: ShadowRequest) -> Response:
        """Mirror a sample of requests to the candidate and compare, serving none."""
        check_candidates(body.candidate)
        options = body.model_dump(exclude_none=True, exclude={"candidate"})
        return _JSON(service.start_shadow(body.candidate, **options).status(), status_code=201)

    @admin.post(
        "/rollout/ab",
        responses=_errors(400, 404, 409, 422),
        summary="Start an A/B test",
        status_code=201,
        response_model=RolloutStatus,
        tags=["rollout"],
    )
    def rollout_ab(body: ABRequest) -> Response:
        """Sticky assignment by ``key``; the service's own model is the control arm."""
        check_candidates(*body.arms.values())
        options = body.model_dump(exclude_none=True, exclude={"arms"})
        return _JSON(service.start_ab(dict(body.arms), **options).status(), status_code=201)

    @admin.post(
        "/rollout/stop",
        response_model=RolloutStatus,
        responses=_errors(400, 409, 422),
        summary="Stop the running rollout",
        tags=["rollout"],
    )
    def rollout_stop(body: StopRequest | None = None) -> Response:
        """All traffic goes back to the baseline. 409 when no rollout runs."""
        reason = body.reason if body is not None else None
        rollout = service.stop_rollout(reason) if reason else service.stop_rollout()
        return _JSON(rollout.status())

    # -- operations -----------------------------------------------------------------
    @admin.get("/status", summary="Everything about the service", tags=["operations"])
    def status() -> Response:
        """Tiers and breakers, abstention policy, review queue, log, counters, rollout,
        candidates (needs the token: it shows the configuration)."""
        return _JSON(service.status())

    @open_.get("/health", response_model=HealthResponse, summary="Liveness", tags=["operations"])
    async def health() -> Response:
        """Always 200 while the process serves; ``degraded`` while the breaker of any tier
        but the last is open (requests still get the fallback's answers)."""
        tiers = service.chain.snapshot()
        states = [{"tier": t["tier"], "state": t["breaker"]["state"]} for t in tiers]
        degraded = any(s["state"] == "open" for s in states[:-1])
        return _JSON(
            {
                "status": "degraded" if degraded else "ok",
                "service": service.name,
                "version": service.version,
                "tiers": states,
            }
        )

    @open_.get(
        "/metrics",
        response_class=PlainTextResponse,
        summary="Prometheus metrics",
        tags=["operations"],
    )
    def metrics() -> Response:
        """Prometheus text format 0.0.4; open so Prometheus can scrape it."""
        return Response(generate_latest(registry), media_type=METRICS_CONTENT_TYPE)

    app.include_router(open_)
    app.include_router(admin)
    app.state.service = service
    app.state.registry = registry
    return app


def _version() -> str:
    from hindsight import __version__

    return __version__


def serve(
    service: Service,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``service`` over HTTP with uvicorn until interrupted; closes it on the way out.

    Without ``token`` (and without ``HINDSIGHT_SERVE_TOKEN`` set) a random token is
    generated and printed once to stderr.
    """
    import uvicorn

    if token is None:
        token = os.environ.get(_TOKEN_ENV) or None
    if token is None:
        token = secrets.token_urlsafe(24)
        print(
            f"hindsight serve: generated the admin token {token}\n"
            f"  send it as 'Authorization: Bearer {token}' to the write and admin endpoints,\n"
            f"  e.g. curl -H 'Authorization: Bearer {token}' http://{host}:{port}/status\n"
            f"  (set {_TOKEN_ENV} or pass --token to choose it).",
            file=sys.stderr,
            flush=True,
        )
    try:
        app = create_app(service, token=token)
        # Everything loaded so far (models, libraries) lives as long as the server: move
        # it out of the collector's reach, or each full collection walks it all and
        # pauses every request (~100 ms with a few hundred thousand objects).
        gc.collect()
        gc.freeze()
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    finally:
        service.close()
