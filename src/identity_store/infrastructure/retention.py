"""Retention of the event stream: :func:`purge_events`.

The application's role may not delete events (the stream is append-only for it; see
scripts/create_roles.py): purging is maintenance, run on a pool connected as the
schema's owner (``DATABASE_OWNER_URL``, as migrations are), for example from a nightly
job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from identity_store.domain.arguments import check_limit
from identity_store.domain.clock import Clock, utc_now
from identity_store.domain.errors import InvalidInput
from identity_store.infrastructure.persistence import PostgresUnitOfWork

__all__ = ["purge_events"]

MAX_PURGE_BATCH = 10_000


async def purge_events(
    pool: asyncpg.Pool[Any],
    *,
    before: datetime,
    keep_unconsumed: bool = True,
    batch_size: int = 1_000,
    max_batches: int | None = None,
    clock: Clock = utc_now,
) -> int:
    """Delete the events recorded before ``before``, in the stream's order, in
    transactions of at most ``batch_size`` events (1..10,000), and return how many.

    With ``keep_unconsumed`` (the default) only events every subscription has passed
    are deleted; without it, also events some subscription has not handled yet: that
    subscription's next read raises :class:`SubscriptionBehindRetention` instead of
    skipping them silently. Every batch locks every subscription's row, so batches in
    progress finish first and none starts meanwhile. After a purge, a subscription
    created or reset ``"beginning"`` starts at the retained range's start.
    ``max_batches`` stops after that many transactions (None: until none is left).

    Needs a pool connected as the schema's owner: the application's role may not
    delete events.

    Raises:
        InvalidInput: ``before`` is not a datetime with a time zone, or a malformed
            ``keep_unconsumed``, ``batch_size`` or ``max_batches``.
        DatabaseError: the pool's role may not delete events (the application's).
        DatabaseUnavailable, DatabaseTimeout, TransactionConflict: the database failed;
            the batches committed before stay deleted.
    """
    if not isinstance(before, datetime) or before.utcoffset() is None:
        raise InvalidInput("before", "must be a datetime with a time zone")
    if not isinstance(keep_unconsumed, bool):
        raise InvalidInput("keep_unconsumed", "must be True or False")
    check_limit(batch_size, field="batch_size", maximum=MAX_PURGE_BATCH)
    if max_batches is not None:
        check_limit(max_batches, field="max_batches", maximum=1_000_000)
    deleted = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        async with PostgresUnitOfWork(pool, clock=clock) as uow:
            count = await uow.subscriptions.purge_batch(
                before=before, keep_unconsumed=keep_unconsumed, limit=batch_size
            )
        deleted += count
        batches += 1
        if count < batch_size:
            break
    return deleted
