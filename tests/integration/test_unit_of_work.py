"""The unit of work against a real PostgreSQL, checked with plain SQL of our own."""

from __future__ import annotations

import inspect
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from identity_store.domain import ports
from identity_store.domain.errors import (
    DatabaseUnavailable,
    EmailAlreadyRegistered,
    TransactionConflict,
    UnitOfWorkError,
)
from identity_store.domain.models import NewEvent, NewToken, NewUser, TokenKind, UserUpdate
from identity_store.domain.ports import UnitOfWork
from identity_store.infrastructure.persistence.unit_of_work import PostgresUnitOfWork, get_uow
from identity_store.infrastructure.persistence.user_repo import PostgresUserRepository

if TYPE_CHECKING:
    Pool = asyncpg.Pool[Any]

pytestmark = pytest.mark.integration


class Boom(Exception):
    """An application failure in the middle of a unit of work."""


def new_user() -> NewUser:
    return NewUser(email=f"uow-{uuid.uuid4().hex[:12]}@example.test", display_name="Unit")


async def count(pool: Pool, sql: str, *args: object) -> int:
    return int(await pool.fetchval(sql, *args))


async def test_a_unit_of_work_satisfies_the_port(pool: Pool) -> None:
    uow: UnitOfWork = PostgresUnitOfWork(pool)

    async with uow:
        # Every method each port declares, with the same parameters (names, kinds,
        # defaults), on the repositories the unit of work hands out.
        for repository, port in (
            (uow.users, ports.UserRepository),
            (uow.tokens, ports.TokenRepository),
            (uow.events, ports.EventRepository),
        ):
            declared = [n for n in vars(port) if not n.startswith("_") and callable(vars(port)[n])]
            assert declared, port
            for name in declared:
                wanted = inspect.signature(getattr(port, name)).parameters
                actual = inspect.signature(getattr(repository, name)).parameters
                assert [(p.name, p.kind, p.default) for p in list(wanted.values())[1:]] == [
                    (p.name, p.kind, p.default) for p in actual.values()
                ], f"{port.__name__}.{name}"
                assert inspect.iscoroutinefunction(inspect.unwrap(getattr(repository, name))), name
        assert await uow.users.get(uuid.uuid4()) is None


async def test_a_state_change_and_its_event_commit_together(pool: Pool) -> None:
    async with PostgresUnitOfWork(pool) as uow:
        user = await uow.users.register(new_user())
        issued = await uow.tokens.issue(
            NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(hours=1))
        )
        event = await uow.events.append(NewEvent(type="user.registered", user_id=user.id))

    assert await count(pool, "SELECT count(*) FROM users WHERE id = $1", user.id) == 1
    assert await count(pool, "SELECT count(*) FROM tokens WHERE id = $1", issued.token.id) == 1
    assert await count(pool, "SELECT count(*) FROM events WHERE id = $1", event.id) == 1


async def test_an_exception_rolls_back_leaving_no_user_and_no_event(pool: Pool) -> None:
    uow = PostgresUnitOfWork(pool)
    new = new_user()
    key = uuid.uuid4()

    with pytest.raises(Boom):
        async with uow:
            user = await uow.users.register(new)
            await uow.events.append(
                NewEvent(type="user.registered", user_id=user.id, event_key=key)
            )
            raise Boom

    assert await count(pool, "SELECT count(*) FROM users WHERE email = $1", new.email) == 0
    assert await count(pool, "SELECT count(*) FROM events WHERE event_key = $1", key) == 0


async def test_a_domain_error_rolls_back_the_writes_before_it(pool: Pool) -> None:
    existing = await PostgresUserRepository(pool).register(new_user())
    key = uuid.uuid4()

    with pytest.raises(EmailAlreadyRegistered):
        async with PostgresUnitOfWork(pool) as uow:
            await uow.events.append(NewEvent(type="user.attempted", event_key=key))
            await uow.users.register(NewUser(email=existing.email.upper(), display_name="Dup"))

    assert await count(pool, "SELECT count(*) FROM events WHERE event_key = $1", key) == 0


async def test_uncommitted_work_is_invisible_to_others_until_the_commit(pool: Pool) -> None:
    async with PostgresUnitOfWork(pool) as uow:
        user = await uow.users.register(new_user())
        seen_inside = await uow.users.get(user.id)
        seen_outside = await PostgresUserRepository(pool).get(user.id)

    assert seen_inside == user
    assert seen_outside is None
    assert await PostgresUserRepository(pool).get(user.id) == user


async def test_entering_an_active_unit_of_work_again_is_an_error(pool: Pool) -> None:
    uow = PostgresUnitOfWork(pool)
    new = new_user()

    with pytest.raises(UnitOfWorkError):
        async with uow:
            await uow.users.register(new)
            async with uow:
                pass

    assert not uow.active
    assert await count(pool, "SELECT count(*) FROM users WHERE email = $1", new.email) == 0


async def test_the_repositories_exist_only_inside_the_block(pool: Pool) -> None:
    uow = PostgresUnitOfWork(pool)

    with pytest.raises(UnitOfWorkError):
        _ = uow.users
    async with uow:
        assert uow.active
    with pytest.raises(UnitOfWorkError):
        _ = uow.events


async def test_a_unit_of_work_can_be_used_again_after_it_ends(pool: Pool) -> None:
    uow = PostgresUnitOfWork(pool)

    async with uow:
        first = await uow.users.register(new_user())
    async with uow:
        second = await uow.users.register(new_user())

    found = await count(
        pool, "SELECT count(*) FROM users WHERE id = ANY($1::uuid[])", [first.id, second.id]
    )
    assert found == 2


async def test_the_connection_goes_back_to_the_pool_after_success_and_failure(
    pool: Pool,
) -> None:
    idle_before = pool.get_idle_size()

    async with PostgresUnitOfWork(pool) as uow:
        await uow.users.get(uuid.uuid4())
    with pytest.raises(Boom):
        async with PostgresUnitOfWork(pool) as uow:
            raise Boom

    assert pool.get_idle_size() >= idle_before
    assert pool.get_size() <= pool.get_max_size()


async def test_repositories_on_a_plain_pool_commit_each_statement(pool: Pool) -> None:
    user = await PostgresUserRepository(pool).register(new_user())

    async with pool.acquire() as other:
        assert await other.fetchval("SELECT count(*) FROM users WHERE id = $1", user.id) == 1


async def test_the_dependency_commits_after_the_endpoint_returns(pool: Pool) -> None:
    dependency = get_uow(pool)
    uow = await anext(dependency)
    user = await uow.users.register(new_user())

    with pytest.raises(StopAsyncIteration):
        await anext(dependency)

    assert await count(pool, "SELECT count(*) FROM users WHERE id = $1", user.id) == 1


async def test_the_dependency_rolls_back_when_the_endpoint_raises(pool: Pool) -> None:
    dependency = get_uow(pool)
    uow = await anext(dependency)
    user = await uow.users.register(new_user())

    with pytest.raises(Boom):
        await dependency.athrow(Boom())

    assert await count(pool, "SELECT count(*) FROM users WHERE id = $1", user.id) == 0


async def test_a_serialization_failure_becomes_a_retryable_transaction_conflict(
    pool: Pool,
) -> None:
    user = await PostgresUserRepository(pool).register(new_user())
    first = PostgresUnitOfWork(pool, isolation="serializable")
    second = PostgresUnitOfWork(pool, isolation="serializable")

    with pytest.raises(TransactionConflict) as caught:
        async with second:
            await second.users.get(user.id)
            async with first:
                await first.users.update(user.id, UserUpdate(display_name="A"), expected_version=1)
            await second.users.update(user.id, UserUpdate(display_name="B"), expected_version=1)

    assert caught.value.sqlstate == "40001"


async def test_a_connection_lost_mid_work_raises_database_unavailable(pool: Pool) -> None:
    new = new_user()

    with pytest.raises(DatabaseUnavailable):
        async with PostgresUnitOfWork(pool) as uow:
            await uow.users.register(new)
            await pool.execute(
                "SELECT pg_terminate_backend($1)",
                await uow.users._db.fetchval("SELECT pg_backend_pid()"),  # type: ignore[attr-defined]
            )
            await uow.users.get(uuid.uuid4())

    assert await count(pool, "SELECT count(*) FROM users WHERE email = $1", new.email) == 0


async def test_a_closed_pool_raises_database_unavailable(database_url: str) -> None:
    closed = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    await closed.close()

    with pytest.raises(DatabaseUnavailable):
        async with PostgresUnitOfWork(closed):
            pass
    with pytest.raises(DatabaseUnavailable):
        await PostgresUserRepository(closed).get(uuid.uuid4())


async def test_an_unreachable_server_raises_database_unavailable() -> None:
    # A port nothing listens on: bind one, note it, and close it again.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    unreachable = await asyncpg.create_pool(
        f"postgresql://nobody@127.0.0.1:{port}/none", min_size=0, max_size=1, timeout=2
    )
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            await PostgresUserRepository(unreachable).get(uuid.uuid4())
        assert str(port) not in str(caught.value)
    finally:
        await unreachable.close()
