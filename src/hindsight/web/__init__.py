"""The team server: the dashboard and a JSON API over one store (needs ``hindsight[serve]``).

``create_app(ledger)`` builds the FastAPI app; ``hindsight server`` runs it. Accounts,
roles, tokens and CSRF are in :mod:`hindsight.web.auth`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from hindsight.web.app import create_app

        return create_app
    raise AttributeError(f"module 'hindsight.web' has no attribute {name!r}")
