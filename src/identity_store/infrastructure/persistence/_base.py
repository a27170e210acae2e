"""What the three repositories share: a connection or pool, a clock, limits."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from uuid import UUID

from identity_store._generated.db import Executor
from identity_store.domain.clock import Clock, utc_now
from identity_store.domain.errors import InvalidInput
from identity_store.domain.validation import check_timestamp
from identity_store.infrastructure.persistence._errors import translate_errors

__all__ = ["MAX_PAGE_SIZE", "Repository", "check_limit"]

MAX_PAGE_SIZE = 1000


class Repository:
    """Base of the repositories: runs generated queries on ``db`` and never commits.

    ``db`` is a connection (inside a unit of work: the transaction is the caller's) or
    a pool (each statement then runs and commits on its own).
    """

    __slots__ = ("_clock", "_db")

    def __init__(self, db: Executor, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    def _errors(
        self, *, email: str | None = None, user_id: UUID | None = None
    ) -> AbstractContextManager[None]:
        """Translate driver errors raised inside the block into domain errors."""
        return translate_errors(email=email, user_id=user_id, executor=self._db)

    def _now(self) -> datetime:
        now = self._clock()
        if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
            raise InvalidInput("clock", "must return timezone-aware datetimes")
        try:
            return check_timestamp(now)
        except ValueError as exc:
            raise InvalidInput("clock", str(exc)) from None


def check_limit(limit: int, *, field: str = "limit", maximum: int = MAX_PAGE_SIZE) -> int:
    """Return ``limit`` if it is an int from 1 to ``maximum``.

    Raises:
        InvalidInput: it is not.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise InvalidInput(field, f"must be an integer from 1 to {maximum}")
    return limit
