"""The event log on PostgreSQL, through the generated queries of ``queries/events.sql``.

Append-only: this module has no way to change or delete an event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast
from uuid import UUID

from identity_store._generated import events as queries
from identity_store.domain.arguments import (
    MAX_APPEND_MANY,
    check_event_id,
    check_event_types,
    check_instance,
    check_uuid,
    checked_new_events,
)
from identity_store.domain.errors import DatabaseError, EventKeyConflict
from identity_store.domain.models import Event, EventPage, NewEvent
from identity_store.domain.pagination import (
    STREAM_START,
    decode_stream_cursor,
    encode_stream_cursor,
)
from identity_store.infrastructure.persistence._base import Repository, check_limit
from identity_store.infrastructure.persistence._records import Reader, fetch

__all__ = ["MAX_APPEND_MANY", "PostgresEventRepository"]

# The two reads whose rows the generated functions cannot hand over as Events: the
# append's (a CTE, so sqlc sees no table) and the stream's (whose cursor is the last
# row's tx_id, which Event leaves out).
_EVENTS = Reader(Event)


def _same_event(event: Event, new: NewEvent) -> bool:
    # A deleted user leaves user_id NULL on its events; a retry may still name it.
    same_user = event.user_id is None or event.user_id == new.user_id
    return same_user and event.type == new.type and event.payload == new.payload


class PostgresEventRepository(Repository):
    """The :class:`~identity_store.domain.ports.EventRepository` on PostgreSQL."""

    __slots__ = ()

    async def append(self, new: NewEvent) -> Event:
        check_instance(new, NewEvent, "new")
        now = self._now()
        with self._errors(user_id=new.user_id):
            found = await fetch(
                queries.append_event,
                self._db,
                event_key=new.event_key,
                user_id=new.user_id,
                type=new.type,
                payload=dict(new.payload),
                occurred_at=new.occurred_at or now,
                recorded_at=now,
            )
            appended = _EVENTS.one(found)
            if appended is not None:
                return appended
            # ON CONFLICT waited for the other writer to commit, so its row is visible
            # to this next statement.
            existing = await queries.get_event_by_key(self._db, event_key=new.event_key)
        if existing is None:
            # Nothing conflicted and nothing was written: a trigger or rule dropped the row.
            raise DatabaseError("the insert returned no row and no event has its key")
        if not _same_event(existing, new):
            raise EventKeyConflict(new.event_key)
        return existing

    async def append_many(self, events: Iterable[NewEvent]) -> int:
        """One ``COPY`` that draws the events one at a time as it sends them, in a
        transaction of its own (a savepoint inside the caller's), then the counts and
        the consumers' wake-up once."""
        checked = checked_new_events(events)
        now = self._now()
        counts: Counter[str] = Counter()

        def params() -> Iterator[queries.AppendEventsParams]:
            # Drawn by the COPY as it sends: the caller's generator runs while the
            # server stores what was sent before, and each event is garbage as soon as
            # it is encoded (a list of them would be scanned by every collection).
            for new in checked:
                counts[new.type] += 1
                yield queries.AppendEventsParams(
                    event_key=new.event_key,
                    user_id=new.user_id,
                    type=new.type,
                    payload=new.payload,  # validated into a dict of its own: no copy
                    occurred_at=new.occurred_at or now,
                    recorded_at=now,
                )

        with self._errors():
            async with self._transaction() as conn:
                written = await queries.append_events(conn, params=params())
                if counts:
                    types = sorted(counts)
                    await queries.add_event_type_counts(
                        conn, types=types, counts=[counts[name] for name in types]
                    )
                    await queries.notify_events_appended(conn)
        return written

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Any]:
        """Yield a connection in a transaction of its own: on the pool, a pooled
        connection's; on a connection, a savepoint of the caller's transaction (or a
        transaction when it has none), so that a failure undoes only this call."""
        if hasattr(self._db, "acquire"):  # a pool, instrumented (traced) or not
            async with self._db.acquire() as conn, conn.transaction():
                yield conn
        else:
            conn = cast(Any, self._db)
            async with conn.transaction():
                yield conn

    async def get(self, event_id: int) -> Event | None:
        check_event_id(event_id)
        with self._errors():
            return await queries.get_event_by_id(self._db, id=event_id)

    async def list_for_user(
        self, user_id: UUID, *, after_id: int = 0, limit: int = 100
    ) -> list[Event]:
        check_uuid(user_id, "user_id")
        check_event_id(after_id, field="after_id")
        check_limit(limit)
        with self._errors():
            return await queries.list_events_for_user(
                self._db, user_id=user_id, after_id=after_id, max_rows=limit
            )

    async def read_stream(self, *, after: str | None = None, limit: int = 100) -> EventPage:
        # Ordered by (tx_id, id) below the oldest running transaction: every transaction
        # below that horizon has ended, so nothing later appears before a read position.
        after_tx_id, after_id = STREAM_START if after is None else decode_stream_cursor(after)
        check_limit(limit)
        with self._errors():
            found = await fetch(
                queries.read_event_stream,
                self._db,
                after_tx_id=after_tx_id,
                after_id=after_id,
                max_rows=limit,
            )
        if found:
            after_tx_id, after_id = found[-1]["tx_id"], found[-1]["id"]
        return EventPage(
            events=tuple(_EVENTS.all(found)),
            next_cursor=encode_stream_cursor(after_tx_id, after_id),
        )

    async def count_by_type(self, types: Sequence[str] | None = None) -> dict[str, int]:
        names = check_event_types(types)
        # A name PostgreSQL could not store matches no stored event.
        wanted = None if names is None else [name for name in names if "\x00" not in name]
        with self._errors():
            found = await queries.count_events_by_type(self._db, types=wanted)
        return {row.type: row.count for row in found}
