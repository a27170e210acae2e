"""Where "now" comes from.

Every timestamp the package writes or compares against is taken from a :data:`Clock`
in Python and passed to the queries, never ``now()`` in SQL: one clock decides
``created_at``, ``expires_at`` and each expiry check, so the values returned to the
caller are exactly those stored, and tests can move time instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "utc_now"]

Clock = Callable[[], datetime]
"""A function returning the current time as a timezone-aware UTC datetime."""


def utc_now() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)
