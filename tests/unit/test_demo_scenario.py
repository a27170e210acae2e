"""The demo scenario, run above the ports on in-memory fakes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from identity_store.dev import FakeUnitOfWork, Store
from identity_store.dev._demo import scenario
from identity_store.domain.errors import UnitOfWorkError
from identity_store.domain.models import NewEvent, NewUser
from identity_store.domain.ports import UnitOfWork

pytestmark = pytest.mark.unit


async def test_the_demo_walks_the_whole_life_cycle_and_every_step_commits() -> None:
    store = Store()
    made: list[FakeUnitOfWork] = []
    lines: list[str] = []

    def new_uow() -> UnitOfWork:
        made.append(FakeUnitOfWork(store))
        return made[-1]

    await scenario(new_uow, lines.append)

    assert all(uow.committed for uow in made[:-2]) and made[-1].committed
    assert [event.type for event in store.events] == [
        "user.registered",
        "token.issued",
        "user.password_reset",
    ]
    (user,) = store.users.values()
    assert user.version == 2 and user.password_hash is not None
    assert user.password_hash.get_secret_value().startswith("$scrypt$")
    assert any("second time is refused" in line for line in lines)
    assert any("stream consumer read 3 events (3 of this user)" in line for line in lines)
    assert not any("BUG" in line or "INVALID" in line for line in lines)


async def test_the_demo_never_prints_a_secret() -> None:
    store = Store()
    lines: list[str] = []

    await scenario(lambda: FakeUnitOfWork(store), lines.append)

    printed = "\n".join(lines)
    assert "$scrypt$" not in printed
    for _, token in store.tokens.values():
        assert str(token.id) not in printed


async def test_a_fake_unit_of_work_rolls_back_on_error_like_the_real_one() -> None:
    uow = FakeUnitOfWork()

    with pytest.raises(RuntimeError):
        async with uow:
            user = await uow.users.register(NewUser(email="a@b.io", display_name="A"))
            await uow.events.append(NewEvent(type="user.registered", user_id=user.id))
            raise RuntimeError

    assert uow.rolled_back and not uow.committed
    assert uow.store.users == {} and uow.store.events == []


async def test_a_fake_unit_of_work_refuses_nesting_and_use_outside_the_block() -> None:
    uow = FakeUnitOfWork()

    with pytest.raises(UnitOfWorkError):
        _ = uow.tokens
    with pytest.raises(UnitOfWorkError):
        async with uow, uow:
            pass


async def test_the_fakes_honour_token_expiry_through_the_injected_clock() -> None:
    from datetime import UTC, datetime

    from identity_store.domain.models import NewToken, TokenKind

    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    uow = FakeUnitOfWork(clock=lambda: now[0])
    async with uow:
        user = await uow.users.register(NewUser(email="t@b.io", display_name="T"))
        issued = await uow.tokens.issue(
            NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(minutes=5))
        )
        secret = issued.secret.get_secret_value()
        assert await uow.tokens.verify(secret) == issued.token
        now[0] += timedelta(minutes=5)
        assert await uow.tokens.verify(secret) is None
