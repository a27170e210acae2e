"""What the repositories do, observed: every public method on a closed pool raises
DatabaseUnavailable (no driver error leaks), errors carry their details, limits are
accepted at the limit, and cursors and batch caps are checked."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from identity_store.domain.errors import (
    ConcurrencyConflict,
    DatabaseError,
    DatabaseUnavailable,
    EmailAlreadyRegistered,
    InvalidInput,
    UserNotFound,
)
from identity_store.domain.models import (
    NewEvent,
    NewToken,
    NewUser,
    TokenKind,
    UserUpdate,
)
from identity_store.infrastructure.db import create_pool
from identity_store.infrastructure.persistence.event_repo import PostgresEventRepository
from identity_store.infrastructure.persistence.token_repo import PostgresTokenRepository
from identity_store.infrastructure.persistence.user_repo import PostgresUserRepository
from tests.conftest import Deploy, Deployment, app_settings

if TYPE_CHECKING:
    Pool = asyncpg.Pool[Any]

pytestmark = pytest.mark.integration


def new_user(tag: str = "obs") -> NewUser:
    return NewUser(email=f"{tag}-{uuid.uuid4().hex[:12]}@example.test", display_name=tag)


async def rows(pool: Pool, sql: str, *args: object) -> int:
    return int(await pool.fetchval(sql, *args))


# --- every public method on a closed pool ----------------------------------------------


@pytest.fixture
async def closed_pool(database_url: str) -> Pool:
    closed = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    await closed.close()
    return closed


def calls(pool: Pool) -> dict[str, Callable[[], Awaitable[object]]]:
    users = PostgresUserRepository(pool)
    tokens = PostgresTokenRepository(pool)
    events = PostgresEventRepository(pool)
    some = uuid.uuid4()
    return {
        "users.register": lambda: users.register(new_user()),
        "users.get": lambda: users.get(some),
        "users.get_by_email": lambda: users.get_by_email("someone@example.test"),
        "users.update": lambda: users.update(
            some, UserUpdate(display_name="x"), expected_version=1
        ),
        "users.disable": lambda: users.disable(some),
        "users.delete": lambda: users.delete(some),
        "users.list_page": lambda: users.list_page(),
        "tokens.issue": lambda: tokens.issue(
            NewToken(user_id=some, kind=TokenKind.SESSION, ttl=timedelta(hours=1))
        ),
        "tokens.get": lambda: tokens.get(some),
        "tokens.verify": lambda: tokens.verify("secret"),
        "tokens.touch": lambda: tokens.touch(some),
        "tokens.revoke": lambda: tokens.revoke(some),
        "tokens.revoke_all_for_user": lambda: tokens.revoke_all_for_user(some),
        "tokens.list_live_for_user": lambda: tokens.list_live_for_user(some),
        "tokens.consume": lambda: tokens.consume("secret", kind=TokenKind.PASSWORD_RESET),
        "tokens.purge_expired": lambda: tokens.purge_expired(),
        "events.append": lambda: events.append(NewEvent(type="a.b")),
        "events.append_many": lambda: events.append_many([NewEvent(type="a.b")]),
        "events.get": lambda: events.get(1),
        "events.list_for_user": lambda: events.list_for_user(some),
        "events.read_stream": lambda: events.read_stream(),
        "events.count_by_type": lambda: events.count_by_type(),
    }


def test_the_list_of_calls_covers_every_public_method() -> None:
    listed = set(calls(None))  # type: ignore[arg-type]
    for prefix, cls in (
        ("users", PostgresUserRepository),
        ("tokens", PostgresTokenRepository),
        ("events", PostgresEventRepository),
    ):
        public = {f"{prefix}.{name}" for name in vars(cls) if not name.startswith(("_", "x"))}
        assert public <= listed, public - listed


@pytest.mark.parametrize("method", sorted(calls(None)))  # type: ignore[arg-type]
async def test_every_public_method_on_a_closed_pool_raises_database_unavailable(
    closed_pool: Pool, method: str
) -> None:
    with pytest.raises(DatabaseUnavailable) as caught:
        await calls(closed_pool)[method]()

    assert caught.value.__cause__ is None and caught.value.__context__ is None


# --- error details --------------------------------------------------------------------


async def test_a_token_for_a_missing_user_names_that_user_and_writes_nothing(pool: Pool) -> None:
    missing = uuid.uuid4()

    with pytest.raises(UserNotFound) as caught:
        await PostgresTokenRepository(pool).issue(
            NewToken(user_id=missing, kind=TokenKind.SESSION, ttl=timedelta(hours=1))
        )

    assert caught.value.user_id == missing
    assert await rows(pool, "SELECT count(*) FROM tokens WHERE user_id = $1", missing) == 0


async def test_an_event_of_a_missing_user_names_that_user_and_writes_nothing(pool: Pool) -> None:
    missing, key = uuid.uuid4(), uuid.uuid4()

    with pytest.raises(UserNotFound) as caught:
        await PostgresEventRepository(pool).append(
            NewEvent(type="user.registered", user_id=missing, event_key=key)
        )

    assert caught.value.user_id == missing
    assert await rows(pool, "SELECT count(*) FROM events WHERE event_key = $1", key) == 0


async def test_updating_or_disabling_a_missing_user_names_that_user(pool: Pool) -> None:
    users = PostgresUserRepository(pool)
    missing = uuid.uuid4()

    with pytest.raises(UserNotFound) as updated:
        await users.update(missing, UserUpdate(display_name="x"), expected_version=1)
    with pytest.raises(UserNotFound) as disabled:
        await users.disable(missing)

    assert updated.value.user_id == missing
    assert disabled.value.user_id == missing


async def test_a_duplicate_address_names_the_address_tried_and_writes_nothing(pool: Pool) -> None:
    users = PostgresUserRepository(pool)
    taken = await users.register(new_user())
    again = NewUser(
        email=taken.email.upper().replace("@EXAMPLE.TEST", "@example.test"), display_name="second"
    )

    with pytest.raises(EmailAlreadyRegistered) as registering:
        await users.register(again)
    other = await users.register(new_user())
    with pytest.raises(EmailAlreadyRegistered) as updating:
        await users.update(other.id, UserUpdate(email=again.email), expected_version=1)

    assert registering.value.email == again.email
    assert updating.value.email == again.email
    assert await rows(pool, "SELECT count(*) FROM users WHERE display_name = 'second'") == 0
    assert (await users.get(other.id)) == other


async def test_a_stale_version_names_both_versions(pool: Pool) -> None:
    users = PostgresUserRepository(pool)
    user = await users.register(new_user())
    await users.update(user.id, UserUpdate(display_name="v2"), expected_version=1)

    with pytest.raises(ConcurrencyConflict) as caught:
        await users.update(user.id, UserUpdate(display_name="v3"), expected_version=1)

    assert (caught.value.user_id, caught.value.expected, caught.value.actual) == (user.id, 1, 2)
    assert (await users.get(user.id)).display_name == "v2"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda p: PostgresUserRepository(p).list_page(limit=0), "limit"),
        (lambda p: PostgresUserRepository(p).list_page(limit=1001), "limit"),
        (lambda p: PostgresUserRepository(p).list_page(cursor="not-ours"), "cursor"),
        (
            lambda p: PostgresUserRepository(p).update(
                uuid.uuid4(), UserUpdate(display_name="x"), expected_version=0
            ),
            "expected_version",
        ),
        (
            lambda p: PostgresUserRepository(p).update(
                uuid.uuid4(), UserUpdate(display_name="x"), expected_version=2147483648
            ),
            "expected_version",
        ),
        (lambda p: PostgresTokenRepository(p).purge_expired(batch_size=0), "batch_size"),
        (lambda p: PostgresTokenRepository(p).purge_expired(batch_size=10001), "batch_size"),
        (lambda p: PostgresTokenRepository(p).purge_expired(max_batches=0), "max_batches"),
        (lambda p: PostgresEventRepository(p).list_for_user(uuid.uuid4(), after_id=-1), "after_id"),
        (
            lambda p: PostgresEventRepository(p).list_for_user(uuid.uuid4(), after_id=2**63),
            "after_id",
        ),
        (
            lambda p: PostgresEventRepository(p).list_for_user(uuid.uuid4(), after_id=True),
            "after_id",
        ),
        (lambda p: PostgresEventRepository(p).list_for_user(uuid.uuid4(), limit=1001), "limit"),
        (lambda p: PostgresEventRepository(p).read_stream(after="not-ours"), "after"),
        (lambda p: PostgresEventRepository(p).read_stream(limit=0), "limit"),
    ],
)
async def test_invalid_arguments_name_their_field(
    pool: Pool, call: Callable[[Pool], Awaitable[object]], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await call(pool)

    assert caught.value.field == field


# --- limits accepted at the limit -----------------------------------------------------


async def test_a_token_at_every_limit_is_stored_as_given(pool: Pool) -> None:
    user = await PostgresUserRepository(pool).register(new_user())
    scopes = tuple(f"scope:{n:02}" + "s" * 191 for n in range(64))  # 64 scopes of 200 chars

    issued = await PostgresTokenRepository(pool).issue(
        NewToken(user_id=user.id, kind=TokenKind.API_KEY, ttl=timedelta(days=3650), scopes=scopes)
    )

    stored = await PostgresTokenRepository(pool).get(issued.token.id)
    assert stored is not None and stored.scopes == scopes
    assert stored.expires_at - stored.created_at == timedelta(days=3650)


async def test_a_user_at_the_highest_version_can_still_be_addressed(pool: Pool) -> None:
    users = PostgresUserRepository(pool)
    user = await users.register(new_user())
    # A version this high (2**31 - 2) is reached only by direct SQL, not by 2 billion updates.
    await pool.execute("UPDATE users SET version = 2147483646 WHERE id = $1", user.id)

    updated = await users.update(
        user.id, UserUpdate(display_name="top"), expected_version=2147483646
    )
    with pytest.raises(ConcurrencyConflict) as caught:
        await users.update(user.id, UserUpdate(display_name="x"), expected_version=2147483646)

    assert updated.version == 2147483647
    assert caught.value.actual == 2147483647
    # The highest version is a valid expectation (not an InvalidInput): a user at
    # version 1 answers it with a conflict.
    other = await users.register(new_user())
    with pytest.raises(ConcurrencyConflict) as highest:
        await users.update(other.id, UserUpdate(display_name="y"), expected_version=2147483647)
    assert (highest.value.expected, highest.value.actual) == (2147483647, 1)


async def test_the_largest_payload_and_big_integers_are_stored_exactly(pool: Pool) -> None:
    events = PostgresEventRepository(pool)
    largest = {"k": "x" * (65536 - len('{"k":""}'))}
    numbers = {
        "past_2_53": 9007199254740993,
        "negative": -9007199254740993,
        "huge": 10**30,
        "float": 9007199254740991.0,
    }

    big = await events.append(NewEvent(type="test.largest", payload=largest))
    exact = await events.append(NewEvent(type="test.numbers", payload=numbers))

    assert (await events.get(big.id)).payload == largest  # type: ignore[union-attr]
    assert (await events.get(exact.id)).payload == numbers  # type: ignore[union-attr]


# --- cursors, defaults and caps -------------------------------------------------------


@pytest.fixture(scope="module")
async def fresh_pool(
    deploy: Deploy,
) -> AsyncIterator[Pool]:
    """A database of its own, with no event yet: the stream starts at our first one."""
    deployment = await deploy("stream_start")
    pool = await create_pool(app_settings(deployment.app_url, through_pgbouncer=False))
    yield pool
    await pool.close()


async def test_reading_the_stream_without_a_cursor_starts_at_the_very_first_event(
    fresh_pool: Pool,
) -> None:
    events = PostgresEventRepository(fresh_pool)
    first = await events.append(NewEvent(type="stream.first"))
    second = await events.append(NewEvent(type="stream.second"))

    # The stream's horizon is server-wide: a transaction open elsewhere on the server
    # holds it back for a moment. Poll without a cursor, bounded (count and time).
    page = await events.read_stream(limit=10)
    for _ in range(400):
        if len(page.events) >= 2:
            break
        await asyncio.sleep(0.05)
        page = await events.read_stream(limit=10)

    assert [event.id for event in page.events] == [first.id, second.id]
    assert first.id == 1  # the first event of this database, which a default of 1 would skip
    following = await events.read_stream(after=page.next_cursor, limit=10)
    assert following.events == ()
    assert following.next_cursor == page.next_cursor


async def test_a_user_listing_pages_by_after_id_and_limit(pool: Pool) -> None:
    user = await PostgresUserRepository(pool).register(new_user())
    events = PostgresEventRepository(pool)
    appended = [await events.append(NewEvent(type="list.page", user_id=user.id)) for _ in range(3)]

    everything = await events.list_for_user(user.id)
    first_two = await events.list_for_user(user.id, limit=2)
    rest = await events.list_for_user(user.id, after_id=first_two[-1].id, limit=2)

    assert [e.id for e in everything] == [e.id for e in appended]
    assert [e.id for e in first_two] == [e.id for e in appended[:2]]
    assert [e.id for e in rest] == [appended[2].id]
    assert await events.list_for_user(user.id, after_id=appended[2].id) == []


async def test_append_many_refuses_one_event_past_the_cap_and_writes_nothing(
    pool: Pool,
) -> None:
    tag = f"cap.t{uuid.uuid4().hex[:10]}"
    produced = 0

    def generate() -> Any:
        nonlocal produced
        for _ in range(100_001 + 50):
            produced += 1
            yield NewEvent(type=tag)

    with pytest.raises(InvalidInput) as caught:
        await PostgresEventRepository(pool).append_many(generate())

    assert caught.value.field == "events"
    assert "100000" in str(caught.value)
    assert produced == 100_001  # it stopped reading one past the cap
    assert await rows(pool, "SELECT count(*) FROM events WHERE type = $1", tag) == 0


async def test_append_many_of_nothing_writes_nothing_and_says_zero(pool: Pool) -> None:
    assert await PostgresEventRepository(pool).append_many([]) == 0
    assert await PostgresEventRepository(pool).append_many(iter(())) == 0


async def test_purging_goes_on_batch_after_batch_up_to_the_limit(pool: Pool) -> None:
    user = await PostgresUserRepository(pool).register(new_user())
    past = datetime(2020, 1, 1, tzinfo=UTC)
    tokens = PostgresTokenRepository(pool, clock=lambda: past)
    for _ in range(5):
        await tokens.issue(
            NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(seconds=1))
        )
    now_repo = PostgresTokenRepository(pool, clock=lambda: past + timedelta(days=1))

    # Other tests' expired tokens may be purged too; ours are gone either way.
    first = await now_repo.purge_expired(batch_size=2, max_batches=1)
    assert first == 2
    rest = await now_repo.purge_expired(batch_size=2, max_batches=10000)
    assert rest >= 3
    assert await rows(pool, "SELECT count(*) FROM tokens WHERE user_id = $1", user.id) == 0


async def test_the_first_page_of_users_starts_at_the_earliest_storable_instant(
    fresh_pool: Pool,
) -> None:
    # On a database of its own: the answer cannot depend on rows other tests left.
    earliest = datetime(1, 1, 2, tzinfo=UTC)
    first = await PostgresUserRepository(fresh_pool, clock=lambda: earliest).register(new_user())
    later = await PostgresUserRepository(fresh_pool).register(new_user())

    page = await PostgresUserRepository(fresh_pool).list_page(limit=1)
    rest = await PostgresUserRepository(fresh_pool).list_page(limit=5, cursor=page.next_cursor)

    assert [user.id for user in page.items] == [first.id]
    assert page.items[0].created_at == earliest
    assert [user.id for user in rest.items] == [later.id]
    assert rest.next_cursor is None


# --- an insert that returns no row -----------------------------------------------------


@pytest.fixture
async def swallowing_deployment(deploy: Deploy) -> AsyncIterator[Deployment]:
    """A database whose tokens and events (and, once the test asks, users) have a
    BEFORE INSERT trigger that drops every row, as one added behind the application's
    back can."""
    deployment = await deploy("swallow")
    owner = await asyncpg.connect(deployment.owner_url)
    try:
        await owner.execute(
            """CREATE FUNCTION swallow() RETURNS trigger LANGUAGE plpgsql AS
                   'BEGIN RETURN NULL; END';
               CREATE TRIGGER swallow BEFORE INSERT ON tokens
                   FOR EACH ROW EXECUTE FUNCTION swallow();
               CREATE TRIGGER swallow BEFORE INSERT ON events
                   FOR EACH ROW EXECUTE FUNCTION swallow();"""
        )
    finally:
        await owner.close()
    yield deployment


async def test_an_insert_that_returns_no_row_is_a_database_error_not_a_missing_value(
    swallowing_deployment: Deployment,
) -> None:
    pool = await create_pool(app_settings(swallowing_deployment.app_url, through_pgbouncer=False))
    try:
        user = await PostgresUserRepository(pool).register(new_user("swallow"))
        owner = await asyncpg.connect(swallowing_deployment.owner_url)
        try:
            await owner.execute(
                "CREATE TRIGGER swallow BEFORE INSERT ON users"
                " FOR EACH ROW EXECUTE FUNCTION swallow()"
            )
        finally:
            await owner.close()

        with pytest.raises(DatabaseError) as token_error:
            await PostgresTokenRepository(pool).issue(
                NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(hours=1))
            )
        with pytest.raises(DatabaseError) as user_error:
            await PostgresUserRepository(pool).register(new_user("swallow"))

        with pytest.raises(DatabaseError) as event_error:
            await PostgresEventRepository(pool).append(
                NewEvent(type="swallowed.event", event_key=uuid.uuid4())
            )

        for caught in (token_error, user_error):
            assert type(caught.value) is DatabaseError
            assert str(caught.value) == "the insert returned no row"
        assert type(event_error.value) is DatabaseError
        assert str(event_error.value) == "the insert returned no row and no event has its key"
        assert await rows(pool, "SELECT count(*) FROM tokens") == 0
        assert await rows(pool, "SELECT count(*) FROM events") == 0
        assert await rows(pool, "SELECT count(*) FROM users") == 1
    finally:
        await pool.close()
