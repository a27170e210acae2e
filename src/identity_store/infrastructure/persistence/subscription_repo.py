"""Subscriptions to the event stream on PostgreSQL, through ``queries/subscriptions.sql``.

The methods below the port's (``claim``, ``read_batch``, ``save_progress``, ``park``)
are the steps of :mod:`identity_store.infrastructure.consumer`, which calls them on one unit of
work's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal
from uuid import UUID

from identity_store._generated import models as rows
from identity_store._generated import retention as retention_queries
from identity_store._generated import subscriptions as queries
from identity_store.domain.arguments import check_limit, check_uuid
from identity_store.domain.errors import (
    InvalidInput,
    SubscriptionExists,
    SubscriptionNotFound,
)
from identity_store.domain.models import Event
from identity_store.domain.pagination import (
    STREAM_START,
    decode_stream_cursor,
    encode_stream_cursor,
)
from identity_store.domain.subscriptions import (
    MAX_ATTEMPTS,
    ParkedEvent,
    StreamLag,
    Subscription,
    SubscriptionLag,
    check_on_failure,
    check_partition,
    check_subscription_name,
    split_type_patterns,
)
from identity_store.infrastructure.persistence._base import Repository
from identity_store.infrastructure.persistence._records import Reader, fetch

__all__ = ["Position", "PostgresSubscriptionRepository"]

Position = tuple[int, int]
"""A stream position: (tx_id, id) of the last event handled."""

_EVENTS = Reader(Event)

_ERROR_CLASS_MAX = 200
_ERROR_MESSAGE_MAX = 1000


def subscription_from_row(row: rows.Subscription) -> Subscription:
    """Return the domain ``Subscription`` of a stored row."""
    return Subscription(
        name=row.name,
        position=encode_stream_cursor(row.after_tx_id, row.after_id),
        types=(*row.types, *(prefix + "*" for prefix in row.type_prefixes)),
        user_id=row.user_id,
        partition=None if row.partition_count == 1 else (row.partition_index, row.partition_count),
        on_failure=row.on_failure,
        max_attempts=row.max_attempts,
        failures=row.failures,
        retry_at=row.retry_at,
        stopped_at=row.stopped_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _check_start(value: object, field: str) -> str:
    if value not in ("beginning", "now"):
        raise InvalidInput(field, "must be 'beginning' or 'now'")
    return str(value)


class PostgresSubscriptionRepository(Repository):
    """The :class:`~identity_store.domain.ports.SubscriptionRepository` on PostgreSQL."""

    __slots__ = ()

    async def create(
        self,
        name: str,
        *,
        types: Sequence[str] | None = None,
        user_id: UUID | None = None,
        partition: tuple[int, int] | None = None,
        on_failure: str = "park",
        max_attempts: int = 5,
        start: str = "beginning",
    ) -> Subscription:
        """See :meth:`SubscriptionRepository.create`."""
        check_subscription_name(name)
        exact, prefixes = split_type_patterns(types)
        if user_id is not None:
            check_uuid(user_id, "user_id")
        partition_index, partition_count = check_partition(partition)
        policy = check_on_failure(on_failure)
        check_limit(max_attempts, field="max_attempts", maximum=MAX_ATTEMPTS)
        position = await self._start_position(_check_start(start, "start"))
        with self._errors():
            row = await queries.create_subscription(
                self._db,
                name=name,
                after_tx_id=position[0],
                after_id=position[1],
                types=exact,
                type_prefixes=prefixes,
                user_id=user_id,
                partition_index=partition_index,
                partition_count=partition_count,
                on_failure=policy.value,
                max_attempts=max_attempts,
                now=self._now(),
            )
        if row is None:
            raise SubscriptionExists(name)
        return subscription_from_row(row)

    async def get(self, name: str) -> Subscription | None:
        """See :meth:`SubscriptionRepository.get`."""
        check_subscription_name(name)
        with self._errors():
            row = await queries.get_subscription(self._db, name=name)
        return None if row is None else subscription_from_row(row)

    async def delete(self, name: str) -> bool:
        """See :meth:`SubscriptionRepository.delete`."""
        check_subscription_name(name)
        with self._errors():
            return await queries.delete_subscription(self._db, name=name) > 0

    async def reset(self, name: str, *, to: str = "beginning") -> Subscription:
        """See :meth:`SubscriptionRepository.reset`."""
        check_subscription_name(name)
        if to in ("beginning", "now"):
            position = await self._start_position(to)
        else:
            try:
                position = decode_stream_cursor(to)
            except InvalidInput:
                raise InvalidInput("to", "must be 'beginning', 'now' or a stream cursor") from None
            with self._errors():
                status = await queries.stream_horizon_status(self._db)
            assert status is not None
            if position[0] > status.horizon + status.xids_held:
                raise InvalidInput("to", "is a cursor past the end of this database's stream")
        with self._errors():
            row = await queries.lock_subscription(self._db, name=name)
            if row is None:
                raise SubscriptionNotFound(name)
            await self.save_progress(row, position, failures=0, narrow=STREAM_START)
            found = await queries.get_subscription(self._db, name=name)
        assert found is not None
        return subscription_from_row(found)

    async def list_parked(self, name: str, *, limit: int = 100) -> list[ParkedEvent]:
        """See :meth:`SubscriptionRepository.list_parked`."""
        check_subscription_name(name)
        check_limit(limit)
        with self._errors():
            found = await queries.list_parked_events(self._db, subscription=name, max_rows=limit)
        return [ParkedEvent.model_validate(row, from_attributes=True) for row in found]

    async def lag(self) -> StreamLag:
        """See :meth:`SubscriptionRepository.lag`."""
        with self._errors():
            found = await queries.subscription_lag(self._db)
            status = await queries.stream_horizon_status(self._db)
        assert status is not None
        return StreamLag(
            subscriptions=tuple(
                SubscriptionLag(
                    name=row.name,
                    events_behind=row.events_behind,
                    seconds_behind=row.seconds_behind,
                    stopped=row.stopped_at is not None,
                )
                for row in found
            ),
            horizon=status.horizon,
            xids_held=status.xids_held,
            oldest_transaction_seconds=status.oldest_transaction_seconds,
        )

    async def oldest_transaction_seconds(self) -> float:
        """Return the age of the oldest transaction holding back the stream (see
        :class:`StreamLag`): one cheap query, unlike :meth:`lag`."""
        with self._errors():
            status = await queries.stream_horizon_status(self._db)
        assert status is not None
        return status.oldest_transaction_seconds

    async def _start_position(self, start: Literal["beginning", "now"] | str) -> Position:
        if start == "beginning":
            return await self.retained_from()
        # Every event of a transaction below the horizon has been written; those at or
        # above it are still to come (or committed after an older one began).
        return (await self.horizon(), 0)

    # The consumer's steps.

    async def retained_from(self) -> Position:
        """Return the start of the retained range: events at or before it may have been
        purged (``STREAM_START`` while nothing was)."""
        with self._errors():
            row = await retention_queries.retained_from(self._db)
        assert row is not None
        return (row.purged_tx_id, row.purged_id)

    async def horizon(self) -> int:
        """Return the stream's horizon now: every transaction below it has ended."""
        with self._errors():
            horizon = await queries.stream_horizon(self._db)
        assert horizon is not None
        return horizon

    async def claim(self, name: str) -> rows.Subscription | None:
        """Lock the subscription's row for this transaction and return it; None while
        another transaction holds it (a worker busy with a batch).

        Raises:
            SubscriptionNotFound: no subscription has the name.
        """
        with self._errors():
            row = await queries.claim_subscription(self._db, name=name)
            if row is None and await queries.get_subscription(self._db, name=name) is None:
                raise SubscriptionNotFound(name)
        return row

    async def lock(self, name: str) -> rows.Subscription:
        """Lock the subscription's row, waiting for a batch in progress; return it.

        Raises:
            SubscriptionNotFound: no subscription has the name.
        """
        with self._errors():
            row = await queries.lock_subscription(self._db, name=name)
        if row is None:
            raise SubscriptionNotFound(name)
        return row

    async def read_batch(
        self, row: rows.Subscription, *, horizon: int, limit: int
    ) -> tuple[list[Event], Position | None]:
        """Return the next ``limit`` events below ``horizon`` after the position of the
        subscription ``row`` (locked by this transaction) that match its filter, and
        the position of the last one (None when there is none)."""
        with self._errors():
            found = await fetch(
                queries.read_subscription_batch,
                self._db,
                after_tx_id=row.after_tx_id,
                after_id=row.after_id,
                horizon=horizon,
                types=row.types,
                type_prefixes=row.type_prefixes,
                user_id=row.user_id,
                partition_index=row.partition_index,
                partition_count=row.partition_count,
                max_rows=limit,
            )
        if not found:
            return [], None
        return _EVENTS.all(found), (found[-1]["tx_id"], found[-1]["id"])

    async def save_progress(
        self,
        row: rows.Subscription,
        position: Position,
        *,
        failures: int,
        narrow: Position,
        retry_at: datetime | None = None,
        stopped_at: datetime | None = None,
    ) -> None:
        """Store the subscription's position and failure state (its row is locked)."""
        with self._errors():
            await queries.save_subscription_progress(
                self._db,
                name=row.name,
                after_tx_id=position[0],
                after_id=position[1],
                failures=failures,
                narrow_tx_id=narrow[0],
                narrow_id=narrow[1],
                retry_at=retry_at,
                stopped_at=stopped_at,
                now=self._now(),
            )

    async def park(self, name: str, event_id: int, error: BaseException, attempts: int) -> None:
        """Record that the subscription gave up on the event after ``error``."""
        with self._errors():
            await queries.park_event(
                self._db,
                subscription=name,
                event_id=event_id,
                error_class=type(error).__qualname__[:_ERROR_CLASS_MAX],
                error_message=_printable(str(error))[:_ERROR_MESSAGE_MAX],
                attempts=attempts,
                parked_at=self._now(),
            )

    # The steps of purge_events (identity_store.infrastructure.retention).

    async def purge_batch(self, *, before: datetime, keep_unconsumed: bool, limit: int) -> int:
        """Lock every subscription's row, delete up to ``limit`` events recorded before
        ``before`` (only those every subscription has passed, with ``keep_unconsumed``)
        and move the start of the retained range past them; return how many."""
        upto: Position = (_MAX_BIGINT, _MAX_BIGINT)
        with self._errors():
            positions = await retention_queries.lock_subscription_positions(self._db)
            if keep_unconsumed and positions:
                upto = min((row.after_tx_id, row.after_id) for row in positions)
            deleted = await retention_queries.purge_events(
                self._db,
                before=before,
                upto_tx_id=upto[0],
                upto_id=upto[1],
                max_rows=limit,
                now=self._now(),
            )
        assert deleted is not None
        return deleted


_MAX_BIGINT = 2**63 - 1


def _printable(text: str) -> str:
    # text columns cannot hold NUL; a lone surrogate cannot be encoded for the server.
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
