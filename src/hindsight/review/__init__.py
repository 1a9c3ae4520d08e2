"""The human review queue: routing policy, items, decisions, and decisions as labels.

The routing policy (when to abstain and audit) is
:class:`hindsight.serving.abstain.AbstentionPolicy`; this package holds the queue.
"""

from __future__ import annotations

from hindsight.review.queue import (
    STATUSES,
    Decision,
    ReviewError,
    ReviewItem,
    ReviewNotFound,
    ReviewQueue,
)

__all__ = [
    "STATUSES",
    "Decision",
    "ReviewError",
    "ReviewItem",
    "ReviewNotFound",
    "ReviewQueue",
]
