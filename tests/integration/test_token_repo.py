"""The token repository against a real PostgreSQL, checked with plain SQL of our own."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from identity_store.domain.clock import utc_now
from identity_store.domain.errors import InvalidInput, TokenInvalid, UserNotFound
from identity_store.domain.models import IssuedToken, NewToken, NewUser, TokenKind, User
from identity_store.infrastructure.persistence.token_repo import PostgresTokenRepository
from identity_store.infrastructure.persistence.user_repo import PostgresUserRepository

if TYPE_CHECKING:
    import asyncpg

    Pool = asyncpg.Pool[Any]

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)


async def a_user(pool: Pool) -> User:
    email = f"token-owner-{uuid.uuid4().hex[:12]}@example.test"
    return await PostgresUserRepository(pool).register(
        NewUser(email=email, display_name="Token Owner")
    )


async def a_token(
    pool: Pool,
    kind: TokenKind = TokenKind.SESSION,
    *,
    ttl: timedelta = HOUR,
    scopes: tuple[str, ...] = (),
    at: datetime | None = None,
    user: User | None = None,
) -> IssuedToken:
    owner = user or await a_user(pool)
    tokens = PostgresTokenRepository(pool, clock=(lambda: at) if at else utc_now)
    return await tokens.issue(NewToken(user_id=owner.id, kind=kind, ttl=ttl, scopes=scopes))


async def test_issuing_stores_only_the_sha256_of_the_secret(pool: Pool) -> None:
    issued = await a_token(pool, TokenKind.API_KEY, scopes=("read:users", "write:events"))
    secret = issued.secret.get_secret_value()

    row = await pool.fetchrow("SELECT * FROM tokens WHERE id = $1", issued.token.id)
    assert row is not None
    assert bytes(row["token_hash"]) == hashlib.sha256(secret.encode()).digest()
    assert all(secret not in str(value) for value in row.values())
    assert row["scopes"] == ["read:users", "write:events"]
    assert row["expires_at"] - row["created_at"] == HOUR
    assert len(secret) >= 43
    assert secret not in repr(issued) and secret not in str(issued)


async def test_two_issued_tokens_never_share_a_secret(pool: Pool) -> None:
    user = await a_user(pool)
    first = await a_token(pool, user=user)
    second = await a_token(pool, user=user)

    assert first.secret.get_secret_value() != second.secret.get_secret_value()


async def test_issuing_for_an_unknown_user_raises_user_not_found(pool: Pool) -> None:
    missing = uuid.uuid4()
    tokens = PostgresTokenRepository(pool)

    with pytest.raises(UserNotFound):
        await tokens.issue(NewToken(user_id=missing, kind=TokenKind.SESSION, ttl=HOUR))

    assert await pool.fetchval("SELECT count(*) FROM tokens WHERE user_id = $1", missing) == 0


async def test_verify_returns_the_live_token_for_its_secret(pool: Pool) -> None:
    issued = await a_token(pool)

    found = await PostgresTokenRepository(pool).verify(issued.secret.get_secret_value())

    assert found == issued.token


async def test_verify_answers_none_for_unknown_expired_and_revoked_alike(pool: Pool) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    expired = await a_token(pool, at=past)
    revoked = await a_token(pool)
    tokens = PostgresTokenRepository(pool)
    assert await tokens.revoke(revoked.token.id)

    answers = [
        await tokens.verify(secret)
        for secret in (
            "never-issued-" + uuid.uuid4().hex,
            expired.secret.get_secret_value(),
            revoked.secret.get_secret_value(),
        )
    ]

    assert answers == [None, None, None]


async def test_a_token_stops_verifying_the_moment_it_expires(pool: Pool) -> None:
    issued_at = datetime(2030, 1, 1, tzinfo=UTC)
    issued = await a_token(pool, at=issued_at)
    secret = issued.secret.get_secret_value()

    just_before = PostgresTokenRepository(pool, clock=lambda: issued_at + HOUR - timedelta(0, 0, 1))
    at_expiry = PostgresTokenRepository(pool, clock=lambda: issued_at + HOUR)

    assert await just_before.verify(secret) == issued.token
    assert await at_expiry.verify(secret) is None


async def test_verify_with_another_kind_answers_none(pool: Pool) -> None:
    issued = await a_token(pool, TokenKind.REFRESH)
    tokens = PostgresTokenRepository(pool)
    secret = issued.secret.get_secret_value()

    assert await tokens.verify(secret, kind=TokenKind.SESSION) is None
    assert await tokens.verify(secret, kind=TokenKind.REFRESH) == issued.token


@pytest.mark.parametrize(
    "secret",
    ["", "\x00", "' OR 1=1 --", "x" * 1_000_000, "🦄" * 100],
)  # a lone surrogate is no text: InvalidInput (the ports' contract suite)
async def test_verify_of_hostile_input_answers_none_without_error(pool: Pool, secret: str) -> None:
    assert await PostgresTokenRepository(pool).verify(secret) is None


async def test_touch_records_the_last_use_and_never_moves_it_backwards(pool: Pool) -> None:
    issued = await a_token(pool)
    later = datetime.now(UTC) + timedelta(minutes=5)

    assert await PostgresTokenRepository(pool, clock=lambda: later).touch(issued.token.id)
    assert await PostgresTokenRepository(pool, clock=lambda: later - HOUR).touch(issued.token.id)

    stored = await pool.fetchval("SELECT last_used_at FROM tokens WHERE id = $1", issued.token.id)
    assert stored == later
    assert await PostgresTokenRepository(pool).touch(uuid.uuid4()) is False


async def test_verify_does_not_write(pool: Pool) -> None:
    issued = await a_token(pool)

    await PostgresTokenRepository(pool).verify(issued.secret.get_secret_value())

    stored = await pool.fetchval("SELECT last_used_at FROM tokens WHERE id = $1", issued.token.id)
    assert stored is None


async def test_revoking_a_token_stops_it_verifying_and_reports_only_the_first_time(
    pool: Pool,
) -> None:
    issued = await a_token(pool)
    tokens = PostgresTokenRepository(pool)

    assert await tokens.revoke(issued.token.id) is True
    assert await tokens.revoke(issued.token.id) is False
    assert await tokens.revoke(uuid.uuid4()) is False

    assert await tokens.verify(issued.secret.get_secret_value()) is None
    revoked = await tokens.get(issued.token.id)
    assert revoked is not None and revoked.revoked_at is not None
    stored = await pool.fetchval("SELECT revoked_at FROM tokens WHERE id = $1", issued.token.id)
    assert stored == revoked.revoked_at


async def test_revoking_all_of_a_users_tokens_counts_only_live_ones(pool: Pool) -> None:
    user = await a_user(pool)
    other = await a_token(pool)
    live = [await a_token(pool, kind, user=user) for kind in TokenKind]
    await a_token(pool, at=datetime.now(UTC) - timedelta(days=2), user=user)
    tokens = PostgresTokenRepository(pool)
    await tokens.revoke(live[0].token.id)

    assert await tokens.revoke_all_for_user(user.id) == len(live) - 1
    assert await tokens.revoke_all_for_user(user.id) == 0

    assert await tokens.list_live_for_user(user.id) == []
    still_live = await pool.fetchval(
        "SELECT count(*) FROM tokens"
        " WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()",
        user.id,
    )
    assert still_live == 0
    assert await tokens.verify(other.secret.get_secret_value()) == other.token


async def test_listing_a_users_live_tokens_leaves_out_revoked_and_expired(pool: Pool) -> None:
    user = await a_user(pool)
    first = await a_token(pool, user=user)
    second = await a_token(pool, TokenKind.API_KEY, user=user)
    revoked = await a_token(pool, user=user)
    await a_token(pool, at=datetime.now(UTC) - timedelta(days=2), user=user)
    tokens = PostgresTokenRepository(pool)
    await tokens.revoke(revoked.token.id)

    assert await tokens.list_live_for_user(user.id) == [first.token, second.token]


async def test_consuming_a_single_use_token_works_once(pool: Pool) -> None:
    issued = await a_token(pool, TokenKind.PASSWORD_RESET)
    tokens = PostgresTokenRepository(pool)
    secret = issued.secret.get_secret_value()

    consumed = await tokens.consume(secret, kind=TokenKind.PASSWORD_RESET)

    assert consumed.id == issued.token.id and consumed.revoked_at is not None
    with pytest.raises(TokenInvalid):
        await tokens.consume(secret, kind=TokenKind.PASSWORD_RESET)
    assert await tokens.verify(secret) is None
    row = await pool.fetchrow(
        "SELECT revoked_at, last_used_at FROM tokens WHERE id = $1", issued.token.id
    )
    assert row is not None and row["revoked_at"] == row["last_used_at"] == consumed.revoked_at


async def test_fifty_concurrent_consumers_of_one_token_have_exactly_one_winner(
    pool: Pool,
) -> None:
    issued = await a_token(pool, TokenKind.EMAIL_VERIFICATION)
    tokens = PostgresTokenRepository(pool)
    secret = issued.secret.get_secret_value()

    results = await asyncio.gather(
        *(tokens.consume(secret, kind=TokenKind.EMAIL_VERIFICATION) for _ in range(50)),
        return_exceptions=True,
    )

    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1 and winners[0].id == issued.token.id
    assert len(losers) == 49 and all(isinstance(r, TokenInvalid) for r in losers)
    assert await pool.fetchval(
        "SELECT revoked_at IS NOT NULL FROM tokens WHERE id = $1", issued.token.id
    )


async def test_consuming_with_the_wrong_kind_or_after_expiry_is_invalid(pool: Pool) -> None:
    reset = await a_token(pool, TokenKind.PASSWORD_RESET)
    expired = await a_token(
        pool, TokenKind.PASSWORD_RESET, at=datetime.now(UTC) - timedelta(days=1)
    )
    tokens = PostgresTokenRepository(pool)

    with pytest.raises(TokenInvalid):
        await tokens.consume(reset.secret.get_secret_value(), kind=TokenKind.EMAIL_VERIFICATION)
    with pytest.raises(TokenInvalid):
        await tokens.consume(expired.secret.get_secret_value(), kind=TokenKind.PASSWORD_RESET)
    with pytest.raises(TokenInvalid):
        await tokens.consume("nothing-" + uuid.uuid4().hex, kind=TokenKind.PASSWORD_RESET)

    assert await pool.fetchval(
        "SELECT revoked_at IS NULL FROM tokens WHERE id = $1", reset.token.id
    )


async def test_a_session_token_cannot_be_consumed(pool: Pool) -> None:
    session = await a_token(pool, TokenKind.SESSION)

    with pytest.raises(InvalidInput) as caught:
        await PostgresTokenRepository(pool).consume(
            session.secret.get_secret_value(), kind=TokenKind.SESSION
        )

    assert caught.value.field == "kind"
    assert await pool.fetchval(
        "SELECT revoked_at IS NULL FROM tokens WHERE id = $1", session.token.id
    )


async def test_purging_deletes_expired_tokens_in_bounded_batches(pool: Pool) -> None:
    tokens = PostgresTokenRepository(pool)
    await tokens.purge_expired(batch_size=10_000, max_batches=10_000)
    user = await a_user(pool)
    long_ago = datetime.now(UTC) - timedelta(days=3)
    expired = [await a_token(pool, at=long_ago, user=user) for _ in range(5)]
    live = await a_token(pool, user=user)
    mine = [issued.token.id for issued in [*expired, live]]
    count_mine = "SELECT count(*) FROM tokens WHERE id = ANY($1::uuid[])"

    assert await tokens.purge_expired(batch_size=2, max_batches=2) == 4
    assert await pool.fetchval(count_mine, mine) == 2
    assert await tokens.purge_expired(batch_size=2, max_batches=2) == 1
    assert await tokens.purge_expired(batch_size=2, max_batches=2) == 0

    assert await pool.fetchval(count_mine, mine) == 1
    assert await tokens.get(live.token.id) == live.token


async def test_purging_with_the_defaults_deletes_at_most_100_batches_of_1000(pool: Pool) -> None:
    """The defaults bound one call's work: 100,000 tokens; the rest wait for the next."""
    tokens = PostgresTokenRepository(pool)
    await tokens.purge_expired(batch_size=10_000, max_batches=10_000)
    user = await a_user(pool)
    await pool.execute(
        """INSERT INTO tokens (user_id, kind, token_hash, created_at, expires_at)
           SELECT $1, 'session', sha256(int8send(n)), now() - interval '3 days',
                  now() - interval '2 days'
           FROM generate_series(1, 100001) AS n""",
        user.id,
    )

    assert await tokens.purge_expired() == 100_000
    assert await tokens.purge_expired() == 1
    assert await pool.fetchval("SELECT count(*) FROM tokens WHERE user_id = $1", user.id) == 0


@pytest.mark.parametrize(("batch_size", "max_batches"), [(0, 1), (1, 0), (10_001, 1), (-5, 3)])
async def test_purge_limits_out_of_range_are_rejected(
    pool: Pool, batch_size: int, max_batches: int
) -> None:
    with pytest.raises(InvalidInput):
        await PostgresTokenRepository(pool).purge_expired(
            batch_size=batch_size, max_batches=max_batches
        )
