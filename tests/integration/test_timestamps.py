"""Timestamps at the edges of what can be stored, against a real PostgreSQL.

An ``occurred_at`` of 0001-01-01T00:00Z or 9999-12-31T23:59:59.999999Z used to be
stored as -infinity / infinity and read back without a zone, failing every later read
of the stream, the event and the user's events. The domain now refuses instants
outside TIMESTAMP_MIN..TIMESTAMP_MAX before the database, the schema refuses finite ones
from any other writer (it admits -infinity and infinity, which older versions stored),
and rows stored as infinity by older versions still read.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from pydantic import ValidationError

from identity_store.domain.errors import InvalidInput
from identity_store.domain.models import NewEvent, NewToken, NewUser, TokenKind
from identity_store.domain.validation import TIMESTAMP_MAX, TIMESTAMP_MIN
from identity_store.infrastructure.persistence.event_repo import PostgresEventRepository
from identity_store.infrastructure.persistence.token_repo import PostgresTokenRepository
from identity_store.infrastructure.persistence.user_repo import PostgresUserRepository
from tests.integration.test_event_repo import read_until, stream_end

if TYPE_CHECKING:
    Pool = asyncpg.Pool[Any]

pytestmark = pytest.mark.integration

FIRST_INSTANT = datetime.min.replace(tzinfo=UTC)
LAST_INSTANT = datetime.max.replace(tzinfo=UTC)


def a_new_user() -> NewUser:
    return NewUser(email=f"time-{uuid.uuid4().hex[:12]}@example.test", display_name="T")


@pytest.mark.parametrize("append", ["append", "append_many"])
async def test_events_at_both_ends_of_the_range_are_stored_and_read_back_exactly(
    pool: Pool, append: str
) -> None:
    user = await PostgresUserRepository(pool).register(a_new_user())
    events = PostgresEventRepository(pool)
    cursor = await stream_end(pool)
    new = [
        NewEvent(type="test.edge", user_id=user.id, occurred_at=at)
        for at in (TIMESTAMP_MIN, TIMESTAMP_MAX)
    ]

    if append == "append":
        for event in new:
            await events.append(event)
    else:
        assert await events.append_many(new) == 2

    mine = await events.list_for_user(user.id)
    assert [event.occurred_at for event in mine] == [TIMESTAMP_MIN, TIMESTAMP_MAX]
    assert [await events.get(event.id) for event in mine] == mine
    streamed = [e for e in await read_until(events, cursor, 2) if e.user_id == user.id]
    assert streamed == mine
    stored = await pool.fetch(
        "SELECT isfinite(occurred_at) AS finite FROM events WHERE user_id = $1", user.id
    )
    assert [row["finite"] for row in stored] == [True, True]


async def test_rows_stored_as_infinity_by_older_versions_still_read(pool: Pool) -> None:
    """What older versions wrote for 0001-01-01T00:00Z and 9999-12-31T23:59:59.999999Z
    (asyncpg sends those as -infinity and infinity) reads back as those instants, and
    the stream and the user's events read on past such rows."""
    users = PostgresUserRepository(pool)
    user = await users.register(a_new_user())
    events = PostgresEventRepository(pool)
    cursor = await stream_end(pool)
    before = await events.append(NewEvent(type="test.before", user_id=user.id))
    await pool.execute(
        "INSERT INTO events (event_key, user_id, type, occurred_at, recorded_at)"
        " VALUES ($1, $3, 'test.legacy', '-infinity', now()),"
        "        ($2, $3, 'test.legacy', 'infinity', now())",
        uuid.uuid4(),
        uuid.uuid4(),
        user.id,
    )
    after = await events.append(NewEvent(type="test.after", user_id=user.id))

    mine = await events.list_for_user(user.id)
    assert [event.occurred_at for event in mine[1:3]] == [FIRST_INSTANT, LAST_INSTANT]
    assert (mine[0], mine[-1]) == (before, after)
    assert [await events.get(event.id) for event in mine] == mine
    streamed = [e for e in await read_until(events, cursor, 4) if e.user_id == user.id]
    assert streamed == mine


async def test_a_legacy_user_stored_with_infinite_timestamps_still_reads(pool: Pool) -> None:
    users = PostgresUserRepository(pool)
    user = await users.register(a_new_user())
    await pool.execute(
        "UPDATE users SET created_at = '-infinity', updated_at = 'infinity' WHERE id = $1",
        user.id,
    )

    again = await users.get(user.id)

    assert again is not None
    assert (again.created_at, again.updated_at) == (FIRST_INSTANT, LAST_INSTANT)
    assert await users.get_by_email(user.email) == again


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("occurred_at", "10000-01-01 00:00:00+00"),
        ("occurred_at", "0001-01-01 00:00:00+00 BC"),
        ("occurred_at", "0001-01-01 23:59:59.999999+00"),
        ("recorded_at", "9999-12-31 00:00:00+00"),
    ],
)
async def test_the_schema_refuses_instants_the_application_could_not_read(
    pool: Pool, column: str, value: str
) -> None:
    """Another writer (a script, psql) cannot store what would break every read."""
    values = {"occurred_at": "now()", "recorded_at": "now()", column: "$2::text::timestamptz"}
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await pool.execute(
            "INSERT INTO events (event_key, type, occurred_at, recorded_at)"
            f" VALUES ($1, 'test.outside', {values['occurred_at']}, {values['recorded_at']})",
            uuid.uuid4(),
            value,
        )

    assert caught.value.constraint_name == f"events_{column}_range"


@pytest.mark.parametrize(
    "now",
    [
        datetime(1, 1, 1, 12, tzinfo=UTC),
        datetime(9999, 12, 31, tzinfo=UTC),
        LAST_INSTANT,
    ],
)
async def test_a_clock_outside_the_range_is_refused_before_anything_is_written(
    pool: Pool, now: datetime
) -> None:
    users = PostgresUserRepository(pool, clock=lambda: now)
    new = a_new_user()

    with pytest.raises(InvalidInput) as caught:
        await users.register(new)

    assert caught.value.field == "clock"
    assert await PostgresUserRepository(pool).get_by_email(new.email) is None


async def test_a_token_that_would_expire_beyond_the_range_is_refused(pool: Pool) -> None:
    user = await PostgresUserRepository(pool).register(a_new_user())
    tokens = PostgresTokenRepository(pool, clock=lambda: TIMESTAMP_MAX - timedelta(hours=1))

    with pytest.raises(InvalidInput) as caught:
        await tokens.issue(NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(days=1)))

    assert caught.value.field == "ttl"
    assert caught.value.problem == "the token would expire after 9999-12-30T23:59:59.999999Z"
    assert await pool.fetchval("SELECT count(*) FROM tokens WHERE user_id = $1", user.id) == 0
    issued = await tokens.issue(
        NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(hours=1))
    )
    assert issued.token.expires_at == TIMESTAMP_MAX


@pytest.mark.parametrize("now", [FIRST_INSTANT, LAST_INSTANT])
async def test_the_library_never_writes_infinity_which_the_schema_still_admits(
    pool: Pool, now: datetime
) -> None:
    """What the README says of infinity (issue 20 item 4): the schema's range checks
    admit it from any writer, for rows older versions stored; the library refuses the
    instants asyncpg would store as infinity, on every path that writes a timestamp."""
    user = await PostgresUserRepository(pool).register(a_new_user())
    writes = {
        "register": PostgresUserRepository(pool, clock=lambda: now).register(a_new_user()),
        "append": PostgresEventRepository(pool, clock=lambda: now).append(
            NewEvent(type="test.infinite", user_id=user.id)
        ),
        "issue": PostgresTokenRepository(pool, clock=lambda: now).issue(
            NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(hours=1))
        ),
    }
    for name, write in writes.items():
        with pytest.raises(InvalidInput) as caught:
            await write
        assert caught.value.field == "clock", name
    with pytest.raises(ValidationError):
        NewEvent(type="test.infinite", occurred_at=now)

    infinity = "-infinity" if now == FIRST_INSTANT else "infinity"
    await pool.execute(
        "INSERT INTO events (event_key, user_id, type, occurred_at, recorded_at)"
        " VALUES ($1, $2, 'test.infinite', $3::text::timestamptz, $3::text::timestamptz)",
        uuid.uuid4(),
        user.id,
        infinity,
    )
    stored = await pool.fetch(
        "SELECT occurred_at::text, recorded_at::text FROM events WHERE user_id = $1", user.id
    )
    assert [tuple(row.values()) for row in stored] == [(infinity, infinity)]
