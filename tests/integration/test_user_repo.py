"""The user repository against a real PostgreSQL, checked with plain SQL of our own."""

from __future__ import annotations

import asyncio
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from identity_store.domain.errors import (
    ConcurrencyConflict,
    ConstraintViolation,
    EmailAlreadyRegistered,
    InvalidInput,
    UserNotFound,
)
from identity_store.domain.models import NewEvent, NewToken, NewUser, TokenKind, UserStatus
from identity_store.domain.models import UserUpdate as Update
from identity_store.domain.pagination import encode_user_cursor
from identity_store.domain.validation import email_key
from identity_store.infrastructure._errors import translate_errors
from identity_store.infrastructure.db import create_pool
from identity_store.infrastructure.persistence.event_repo import PostgresEventRepository
from identity_store.infrastructure.persistence.token_repo import PostgresTokenRepository
from identity_store.infrastructure.persistence.user_repo import PostgresUserRepository
from tests.conftest import DATABASE_LOCALES, Deploy, app_settings, deploy_with_locale
from tests.pgbouncer import PgBouncer

pytestmark = pytest.mark.integration

if TYPE_CHECKING:
    Pool = asyncpg.Pool[Any]


@pytest.fixture(scope="module", params=sorted(DATABASE_LOCALES))
async def pool(
    request: pytest.FixtureRequest, deploy: Deploy, pgbouncer: PgBouncer | None
) -> AsyncIterator[Pool]:
    """Every test of this module runs on a C-locale database and on UTF-8 ones, where
    lower() and case-insensitive comparison follow Unicode rather than ASCII."""
    deployment = await deploy_with_locale(deploy, request.param)
    url = deployment.app_url if pgbouncer is None else pgbouncer.route(deployment.app_url)
    settings = app_settings(url, through_pgbouncer=pgbouncer is not None, pool_max_size=20)
    pool = await create_pool(settings)
    yield pool
    await pool.close()


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.test"


def new_user(email: str | None = None, name: str = "Ada Lovelace") -> NewUser:
    return NewUser(email=email or unique_email(), display_name=name)


class StepClock:
    """A clock that starts at ``start`` and moves one millisecond per reading."""

    def __init__(self, start: datetime) -> None:
        self._ticks: Iterator[int] = iter(range(10**9))
        self._start = start

    def __call__(self) -> datetime:
        return self._start + timedelta(milliseconds=next(self._ticks))


async def test_registering_a_user_stores_it_active_at_version_one(pool: Pool) -> None:
    users = PostgresUserRepository(pool)
    email = unique_email()

    user = await users.register(NewUser(email=email, display_name="Ada", password_hash="$x$1"))

    row = await pool.fetchrow("SELECT * FROM users WHERE id = $1", user.id)
    assert row is not None
    assert (row["email"], row["display_name"], row["password_hash"]) == (email, "Ada", "$x$1")
    assert (row["status"], row["version"]) == ("active", 1)
    assert user.status is UserStatus.ACTIVE and user.version == 1
    assert user.created_at == row["created_at"] == user.updated_at
    assert user.created_at.tzinfo is not None and user.created_at.utcoffset() == timedelta(0)
    # The application reads the hash to check a password; nothing shows it by accident.
    assert user.password_hash is not None and user.password_hash.get_secret_value() == "$x$1"
    assert "$x$1" not in repr(user) and "$x$1" not in str(dict(user))
    assert "$x$1" not in user.model_dump_json()


async def test_timestamps_come_from_the_injected_clock(pool: Pool) -> None:
    at = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    users = PostgresUserRepository(pool, clock=lambda: at)

    user = await users.register(new_user())

    stored = await pool.fetchval("SELECT created_at FROM users WHERE id = $1", user.id)
    assert stored == at == user.created_at == user.updated_at


async def test_an_email_differing_only_in_case_is_already_registered(pool: Pool) -> None:
    users = PostgresUserRepository(pool)
    local = f"alice-{uuid.uuid4().hex[:8]}"
    await users.register(new_user(f"{local}@x.io"))

    with pytest.raises(EmailAlreadyRegistered) as caught:
        await users.register(new_user(f"{local.capitalize()}@X.IO"))

    assert "@" not in str(caught.value)
    count = await pool.fetchval(
        "SELECT count(*) FROM users WHERE lower(email) = lower($1)", f"{local}@x.io"
    )
    assert count == 1


async def test_get_by_email_ignores_case_and_get_by_id_finds_the_same_user(pool: Pool) -> None:
    users = PostgresUserRepository(pool)
    email = unique_email("Mixed.Case")
    registered = await users.register(new_user(email))

    assert await users.get_by_email(email.upper()) == registered
    assert await users.get_by_email(email.lower()) == registered
    assert await users.get(registered.id) == registered


async def test_looking_up_an_unknown_user_returns_none(pool: Pool) -> None:
    users = PostgresUserRepository(pool)

    assert await users.get(uuid.uuid4()) is None
    assert await users.get_by_email(unique_email()) is None
    assert await users.get_by_email("nul\x00@x.io") is None
    assert await users.get_by_email("caf\udce9@x.io") is None
    assert await users.get_by_email("x" * 100_000) is None


async def test_an_update_with_the_current_version_applies_and_increments_it(pool: Pool) -> None:
    users = PostgresUserRepository(pool)
    user = await users.register(new_user())
    email = unique_email("renamed")

    updated = await users.update(
        user.id, Update(display_name="Grace", email=email), expected_version=1
    )

    assert (updated.display_name, updated.email, updated.version) == ("Grace", email, 2)
    assert updated.updated_at >= user.updated_at
    row = await pool.fetchrow("SELECT * FROM users WHERE id = $1", user.id)
    assert row is not None
    assert (row["display_name"], row["email"], row["version"]) == ("Grace", email, 2)
    assert row["password_hash"] is None

    again = await users.update(
        user.id, Update(password_hash="$argon2id$v=19$abc"), expected_version=2
    )
    assert again.version == 3 and again.display_name == "Grace"
    assert await pool.fetchval("SELECT password_hash FROM users WHERE id = $1", user.id) == (
        "$argon2id$v=19$abc"
    )


async def test_an_update_from_a_stale_version_is_a_conflict_and_changes_nothing(
    pool: Pool,
) -> None:
    users = PostgresUserRepository(pool)
    user = await users.register(new_user())
    await users.update(user.id, Update(display_name="First"), expected_version=1)

    with pytest.raises(ConcurrencyConflict) as caught:
        await users.update(user.id, Update(display_name="Second"), expected_version=1)

    assert (caught.value.expected, caught.value.actual) == (1, 2)
    row = await pool.fetchrow("SELECT display_name, version FROM users WHERE id = $1", user.id)
    assert row is not None and tuple(row) == ("First", 2)


async def test_concurrent_updates_from_one_version_let_exactly_one_win(pool: Pool) -> None:
    users = PostgresUserRepository(pool)
    user = await users.register(new_user())

    results = await asyncio.gather(
        *(
            users.update(user.id, Update(display_name=f"writer {n}"), expected_version=1)
            for n in range(10)
        ),
        return_exceptions=True,
    )

    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, ConcurrencyConflict) for r in results if r not in winners)
    row = await pool.fetchrow("SELECT display_name, version FROM users WHERE id = $1", user.id)
    assert row is not None and tuple(row) == (winners[0].display_name, 2)


async def test_updating_a_missing_user_raises_user_not_found(pool: Pool) -> None:
    users = PostgresUserRepository(pool)

    with pytest.raises(UserNotFound):
        await users.update(uuid.uuid4(), Update(display_name="Nobody"), expected_version=1)


async def test_changing_to_an_email_another_user_has_is_already_registered(pool: Pool) -> None:
    users = PostgresUserRepository(pool)
    taken = await users.register(new_user())
    user = await users.register(new_user())

    with pytest.raises(EmailAlreadyRegistered):
        await users.update(user.id, Update(email=taken.email.upper()), expected_version=1)

    assert await pool.fetchval("SELECT version FROM users WHERE id = $1", user.id) == 1


async def test_disabling_a_user_is_a_versioned_change_and_repeating_it_is_harmless(
    pool: Pool,
) -> None:
    users = PostgresUserRepository(pool)
    user = await users.register(new_user())

    disabled = await users.disable(user.id)
    again = await users.disable(user.id)

    assert (disabled.status, disabled.version) == (UserStatus.DISABLED, 2)
    assert again == disabled
    row = await pool.fetchrow("SELECT status, version FROM users WHERE id = $1", user.id)
    assert row is not None and tuple(row) == ("disabled", 2)
    with pytest.raises(UserNotFound):
        await users.disable(uuid.uuid4())


async def test_users_registered_at_the_same_instant_are_each_listed_once_across_pages(
    pool: Pool,
) -> None:
    """The cursor holds the id as well as the time: a page must not end in the middle of
    a group of users sharing ``created_at`` and lose the rest of the group."""
    instant = datetime(2090, 1, 1, tzinfo=UTC) + timedelta(microseconds=uuid.uuid4().int % 10**12)
    users = PostgresUserRepository(pool, clock=lambda: instant)
    group = sorted([(await users.register(new_user())).id for _ in range(3)])
    cursor: str | None = encode_user_cursor(instant - timedelta(microseconds=1), uuid.UUID(int=0))

    listed: list[uuid.UUID] = []
    for _ in range(3):
        page = await users.list_page(limit=1, cursor=cursor)
        listed += [user.id for user in page.items if user.created_at == instant]
        cursor = page.next_cursor

    assert listed == group


class _CountingRows:
    """An executor that passes every call to the pool and records how many rows each
    ``fetch`` brought back from the server."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.fetched: list[int] = []

    async def fetch(self, query: str, *args: object, **kwargs: Any) -> list[asyncpg.Record]:
        found = await self._pool.fetch(query, *args, **kwargs)
        self.fetched.append(len(found))
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


async def test_a_page_reads_one_row_more_than_it_returns_however_many_users_follow(
    pool: Pool,
) -> None:
    users = PostgresUserRepository(pool)
    for _ in range(4):
        await users.register(new_user())
    counting = _CountingRows(pool)

    page = await PostgresUserRepository(counting).list_page(limit=2)  # type: ignore[arg-type]

    assert len(page.items) == 2 and page.next_cursor is not None
    assert counting.fetched == [3]


async def test_a_page_holds_50_users_unless_asked_otherwise(pool: Pool) -> None:
    users = PostgresUserRepository(pool)
    for _ in range(51):
        await users.register(new_user())

    page = await users.list_page()

    assert len(page.items) == 50
    assert page.next_cursor is not None


async def test_disabling_records_the_time_of_the_repository_clock(pool: Pool) -> None:
    registered_at = datetime(2031, 6, 1, 8, 0, tzinfo=UTC)
    later = registered_at + timedelta(hours=1)
    user = await PostgresUserRepository(pool, clock=lambda: registered_at).register(new_user())

    disabled = await PostgresUserRepository(pool, clock=lambda: later).disable(user.id)

    assert (disabled.created_at, disabled.updated_at) == (registered_at, later)
    assert await pool.fetchval("SELECT updated_at FROM users WHERE id = $1", user.id) == later


async def test_an_update_can_reactivate_a_disabled_user(pool: Pool) -> None:
    users = PostgresUserRepository(pool)
    user = await users.disable((await users.register(new_user())).id)

    active = await users.update(user.id, Update(status=UserStatus.ACTIVE), expected_version=2)

    assert (active.status, active.version) == (UserStatus.ACTIVE, 3)
    assert await pool.fetchval("SELECT status FROM users WHERE id = $1", user.id) == "active"


async def test_deleting_a_user_takes_its_tokens_and_keeps_its_events_without_it(
    pool: Pool,
) -> None:
    users = PostgresUserRepository(pool)
    user = await users.register(new_user())
    issued = await PostgresTokenRepository(pool).issue(
        NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(hours=1))
    )
    event = await PostgresEventRepository(pool).append(
        NewEvent(type="user.registered", user_id=user.id)
    )

    assert await users.delete(user.id) is True
    assert await users.delete(user.id) is False

    assert await users.get(user.id) is None
    assert await pool.fetchval("SELECT count(*) FROM users WHERE id = $1", user.id) == 0
    assert await pool.fetchval("SELECT count(*) FROM tokens WHERE id = $1", issued.token.id) == 0
    kept = await pool.fetchrow("SELECT user_id, type FROM events WHERE id = $1", event.id)
    assert kept is not None and tuple(kept) == (None, "user.registered")


async def test_keyset_pages_visit_every_user_once_in_order_while_rows_are_inserted(
    pool: Pool,
) -> None:
    # A window of time no other test writes in, so the pages hold only our users.
    start = datetime(2300, 1, 1, tzinfo=UTC) + timedelta(days=uuid.uuid4().int % 10**6)
    users = PostgresUserRepository(pool, clock=StepClock(start))
    before = [await users.register(new_user()) for _ in range(7)]
    cursor: str | None = encode_user_cursor(start - timedelta(microseconds=1), uuid.UUID(int=0))

    seen: list[uuid.UUID] = []
    inserted_during: list[uuid.UUID] = []
    pages = 0
    while cursor is not None:
        page = await users.list_page(limit=3, cursor=cursor)
        seen.extend(user.id for user in page.items)
        cursor = page.next_cursor
        pages += 1
        if pages <= 2:
            inserted_during.append((await users.register(new_user())).id)
        assert pages < 20

    assert len(seen) == len(set(seen))
    assert seen[: len(before)] == [user.id for user in before]
    assert set(seen) == {user.id for user in before} | set(inserted_during)
    order = await pool.fetch(
        "SELECT id FROM users WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at, id",
        start,
        start + timedelta(hours=1),
    )
    assert [row["id"] for row in order] == seen


async def test_the_last_page_has_no_next_cursor(pool: Pool) -> None:
    latest = await pool.fetchval("SELECT max(created_at) FROM users")
    start = max(latest or datetime.now(UTC), datetime.now(UTC)) + timedelta(days=1)
    users = PostgresUserRepository(pool, clock=StepClock(start))
    made = [await users.register(new_user()) for _ in range(2)]

    page = await users.list_page(
        limit=2, cursor=encode_user_cursor(start - timedelta(microseconds=1), uuid.UUID(int=0))
    )

    assert [user.id for user in page.items] == [user.id for user in made]
    assert page.next_cursor is None


async def test_the_first_page_starts_at_the_oldest_user(pool: Pool) -> None:
    users = PostgresUserRepository(pool)
    await users.register(new_user())

    page = await users.list_page(limit=1)

    oldest = await pool.fetchval("SELECT id FROM users ORDER BY created_at, id LIMIT 1")
    assert [user.id for user in page.items] == [oldest]


@pytest.mark.parametrize("cursor", ["", "not-a-cursor", "Zm9vfGJhcg", "x" * 5000, "\x00"])
async def test_a_cursor_we_did_not_make_is_rejected_before_the_database(
    pool: Pool, cursor: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await PostgresUserRepository(pool).list_page(cursor=cursor)
    assert caught.value.field == "cursor"


@pytest.mark.parametrize("limit", [0, -1, 1001, True])
async def test_a_page_size_out_of_range_is_rejected(pool: Pool, limit: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        await PostgresUserRepository(pool).list_page(limit=limit)
    assert caught.value.field == "limit"


@pytest.mark.parametrize(
    "display_name",
    [
        "Robert'); DROP TABLE users;--",
        "' OR 1=1 --",
        "$1 $2 ::text",
        "Zoë Ångström 李小龙 🦄",
        "\u202eevil\u202c",
        "x" * 200,
        'back\\slash and "quotes"',
    ],
)
async def test_hostile_but_valid_text_is_stored_and_read_back_verbatim(
    pool: Pool, display_name: str
) -> None:
    users = PostgresUserRepository(pool)
    email = f"o'brien+{uuid.uuid4().hex[:8]}@example.test"

    user = await users.register(NewUser(email=email, display_name=display_name))

    row = await pool.fetchrow("SELECT email, display_name FROM users WHERE id = $1", user.id)
    assert row is not None and tuple(row) == (email, display_name)
    assert (await users.get(user.id)) == user
    assert await pool.fetchval("SELECT to_regclass('users') IS NOT NULL")


def _clock_returning(value: datetime) -> Callable[[], datetime]:
    return lambda: value


async def test_a_clock_without_a_time_zone_is_refused(pool: Pool) -> None:
    users = PostgresUserRepository(pool, clock=_clock_returning(datetime(2030, 1, 1)))

    with pytest.raises(InvalidInput) as caught:
        await users.register(new_user())
    assert caught.value.field == "clock"


async def test_a_host_whose_clock_is_behind_can_update_and_disable_and_time_never_goes_back(
    pool: Pool,
) -> None:
    """Application servers' clocks differ: one behind the host that registered the user
    must still be able to change it, and updated_at must not move before created_at
    (nor before an earlier update)."""
    registered_at = datetime(2031, 5, 5, 12, 0, tzinfo=UTC)
    ahead = PostgresUserRepository(pool, clock=_clock_returning(registered_at))
    behind = PostgresUserRepository(
        pool, clock=_clock_returning(registered_at - timedelta(minutes=5))
    )
    user = await ahead.register(new_user())

    updated = await behind.update(user.id, Update(display_name="Skewed"), expected_version=1)
    disabled = await behind.disable(user.id)

    assert (updated.version, updated.display_name) == (2, "Skewed")
    assert (disabled.version, disabled.status) == (3, UserStatus.DISABLED)
    assert updated.updated_at == disabled.updated_at == registered_at == user.created_at
    later = registered_at + timedelta(seconds=1)
    moved_on = await PostgresUserRepository(pool, clock=_clock_returning(later)).update(
        user.id, Update(status=UserStatus.ACTIVE), expected_version=3
    )
    assert moved_on.updated_at == later


KELVIN_SIGN = "\u212a"
CAPITAL_I_WITH_DOT = "\u0130"


@pytest.mark.parametrize(
    ("registered", "looked_up"),
    [
        ("kate", f"{KELVIN_SIGN}ate"),
        ("admin", f"adm{CAPITAL_I_WITH_DOT}n"),
        ("admin", "adm\u0131n"),  # dotless i
        ("sam", "\u017fam"),  # long s
        ("kate", "\uff4bate"),  # fullwidth k
        ("office", "o\ufb03ce"),  # the ffi ligature
        ("strasse", "stra\u00dfe"),  # sharp s
        ("ohm", "\u2126hm"),  # ohm sign, which NFKC makes an omega, not o
    ],
)
async def test_a_look_alike_address_never_finds_another_account(
    pool: Pool, registered: str, looked_up: str
) -> None:
    """On a UTF-8 server lower() maps the Kelvin sign to k and İ to i: an address
    spelled with them found someone else's account."""
    users = PostgresUserRepository(pool)
    domain = f"{uuid.uuid4().hex[:10]}.example.test"
    user = await users.register(new_user(f"{registered}@{domain}"))

    assert await users.get_by_email(f"{looked_up}@{domain}") is None
    # (Not looked_up.upper(): Python's upper() itself turns the long s into S.)
    assert await users.get_by_email(f"{looked_up}@{domain.upper()}") is None
    assert await users.get_by_email(f"{registered.upper()}@{domain.upper()}") == user


async def test_the_stored_key_is_the_python_email_key_on_every_code_point(pool: Pool) -> None:
    """users.email_key (SQL) and email_key (Python) are one definition written twice:
    they must agree on every character, whatever the server's locale."""
    changed_by_sql = await pool.fetchval(
        "SELECT array_agg(cp ORDER BY cp) FROM generate_series(1, 1114111) AS cp"
        " WHERE cp NOT BETWEEN 55296 AND 57343"
        ' AND lower(chr(cp) COLLATE "C") <> chr(cp)'
    )
    changed_by_python = [
        cp
        for cp in range(1, 0x110000)
        if not 0xD800 <= cp <= 0xDFFF and email_key(chr(cp)) != chr(cp)
    ]
    assert changed_by_sql == changed_by_python == list(range(ord("A"), ord("Z") + 1))
    odd = f"Ab{KELVIN_SIGN}{CAPITAL_I_WITH_DOT}Z\u00c9"
    assert await pool.fetchval('SELECT lower($1::text COLLATE "C")', odd) == email_key(odd)
    user = await PostgresUserRepository(pool).register(new_user(unique_email("Key.CASE")))
    stored = await pool.fetchval("SELECT email_key FROM users WHERE id = $1", user.id)
    assert stored == email_key(user.email) == user.email.lower()
    generation = await pool.fetchval(
        "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d"
        " JOIN pg_attribute a ON (a.attrelid, a.attnum) = (d.adrelid, d.adnum)"
        " WHERE d.adrelid = 'users'::regclass AND a.attname = 'email_key'"
    )
    assert generation == 'lower((email COLLATE "C"))'


async def test_a_row_the_database_refuses_leaves_no_row_data_in_the_error_or_its_chain(
    pool: Pool,
) -> None:
    """PostgreSQL's detail for a failed check quotes the whole row ("Failing row contains
    (..., <password hash>, ...)"); what the package raises must carry none of it, in
    its message, its chain or a logged traceback."""
    password_hash = f"$scrypt$ln=14,r=8,p=1$secret{uuid.uuid4().hex}"
    user = await PostgresUserRepository(pool).register(
        NewUser(email=unique_email("leak"), display_name="Leak", password_hash=password_hash)
    )

    with pytest.raises(ConstraintViolation) as caught, translate_errors(executor=pool):
        # What a clock behind the registering host's did before update/disable kept
        # updated_at from moving back.
        await pool.execute(
            "UPDATE users SET updated_at = created_at - interval '5 minutes' WHERE id = $1",
            user.id,
        )

    error = caught.value
    assert error.constraint == "users_updated_after_created"
    assert error.__cause__ is None and error.__context__ is None
    logged = "".join(traceback.format_exception(error))
    for private in (password_hash, user.email, "Failing row"):
        assert private not in logged
        assert private not in repr(error)
