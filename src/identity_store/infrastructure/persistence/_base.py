"""What the three repositories share: a connection or pool, a clock, limits."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from uuid import UUID

from identity_store._generated.db import Executor
from identity_store.domain.arguments import MAX_PAGE_SIZE, check_limit, read_clock
from identity_store.domain.clock import Clock, utc_now
from identity_store.infrastructure._errors import translate_errors
from identity_store.infrastructure._pool import BoundedPool
from identity_store.infrastructure._telemetry import traced

__all__ = ["MAX_PAGE_SIZE", "Repository", "check_limit"]


class Repository:
    """Base of the repositories: runs generated queries on ``db`` and never commits.

    ``db`` is a connection (inside a unit of work: the transaction is the caller's) or
    a pool (each statement then runs and commits on its own).
    """

    __slots__ = ("_clock", "_db", "_on_server_error")

    def __init__(
        self,
        db: Executor,
        *,
        clock: Clock = utc_now,
        on_server_error: Callable[[], None] | None = None,
    ) -> None:
        # A span per statement on an instrumented pool (a connection: the unit of work's).
        self._db = traced(db) if isinstance(db, BoundedPool) else db
        self._clock = clock
        self._on_server_error = on_server_error

    def _errors(
        self, *, email: str | None = None, user_id: UUID | None = None
    ) -> AbstractContextManager[None]:
        """Translate driver errors raised inside the block into domain errors."""
        return translate_errors(
            email=email,
            user_id=user_id,
            executor=self._db,
            on_server_error=self._on_server_error,
        )

    def _now(self) -> datetime:
        return read_clock(self._clock)
