"""The one exception tree of hindsight.

Every error hindsight raises on purpose derives from :class:`HindsightError`, and
also from the built-in exception a caller would already catch::

    HindsightError
    ├── ConfigError (ValueError)            bad settings or hindsight.toml
    ├── StoreError (RuntimeError)           the store cannot be used
    │   ├── StoreUnavailable                cannot connect / open
    │   ├── StoreCorrupt                    the file or schema is damaged
    │   └── StoreVersionError               written by a newer hindsight
    ├── LedgerError (RuntimeError)          the ledger refused an operation
    │   ├── NotFound (KeyError)             no record with that id
    │   ├── AmbiguousId                     a short id matches several records
    │   └── InvalidCriteria (ValueError)    a criterion cannot be parsed
    ├── DiagnosisError (ValueError)         diagnose() got something it cannot read
    ├── MlflowBridgeError (RuntimeError)    MLflow unreachable or refused a call
    ├── ServerError (RuntimeError)          the team server refused a client's request
    ├── DataError (ValueError)              data that cannot be read, profiled or compared
    │   └── DriftError                      a drift test or detector got unusable input
    ├── DataQualityError (ValueError)       data failed its checks (carries the report)
    ├── ServingError (RuntimeError)
    │   └── FallbackExhausted               every tier failed within the budget
    └── ReviewError (RuntimeError)          the review queue refused an operation
        └── ReviewNotFound (KeyError)       no review item with that id

Messages say what was wrong and what to do next. Trouble beside the caller's work (a
mirror that failed, records spooled while the server is away) is a
:class:`HindsightWarning`, never an exception.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousId",
    "ConfigError",
    "DataError",
    "DataQualityError",
    "DiagnosisError",
    "DriftError",
    "FallbackExhausted",
    "HindsightError",
    "HindsightWarning",
    "InvalidCriteria",
    "LedgerError",
    "MlflowBridgeError",
    "NotFound",
    "ReviewError",
    "ReviewNotFound",
    "ServerError",
    "ServingError",
    "StoreCorrupt",
    "StoreError",
    "StoreUnavailable",
    "StoreVersionError",
]


class HindsightError(Exception):
    """Root of every error hindsight raises on purpose."""


class ConfigError(HindsightError, ValueError):
    """A setting (environment variable or hindsight.toml) is invalid."""


class StoreError(HindsightError, RuntimeError):
    """The store cannot be used."""


class StoreUnavailable(StoreError):
    """The store cannot be opened or reached."""


class StoreCorrupt(StoreError):
    """The store's file or schema is damaged."""


class StoreVersionError(StoreError):
    """The store was written by a newer version of hindsight."""


class ServerError(HindsightError, RuntimeError):
    """The team server refused a client's request (a bad token, a rejected record)."""


class HindsightWarning(UserWarning):
    """Something went wrong beside the caller's work (a mirror, a background send)."""


class LedgerError(HindsightError, RuntimeError):
    """The ledger refused an operation."""


class NotFound(LedgerError, KeyError):
    """No record with the given id exists."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class AmbiguousId(LedgerError):
    """A short id matches several records; the message lists them."""


class InvalidCriteria(LedgerError, ValueError):
    """A success criterion cannot be parsed or evaluated."""


class DiagnosisError(HindsightError, ValueError):
    """diagnose() was given something it cannot read."""


class MlflowBridgeError(HindsightError, RuntimeError):
    """MLflow could not be reached or refused a call."""


class DataError(HindsightError, ValueError):
    """Data that cannot be read, profiled or compared (empty, mixed types, no such column)."""


class DriftError(DataError):
    """A drift test, report or streaming detector got input it cannot use."""


class DataQualityError(HindsightError, ValueError):
    """A dataset failed its checks; ``report`` holds every check with its numbers."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class ServingError(HindsightError, RuntimeError):
    """The guarded service could not answer."""


class FallbackExhausted(ServingError):
    """Every fallback tier failed or ran out of the latency budget."""


class ReviewError(HindsightError, RuntimeError):
    """The review queue refused an operation (wrong state, wrong reviewer)."""


class ReviewNotFound(ReviewError, KeyError):
    """No review item with the given id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"
