"""What every SubscriptionRepository does: the fake of identity_store.dev and the
PostgreSQL adapter pass the same tests (see conftest.py). The PostgreSQL database is
shared by the contract tests: each test uses names and event types of its own."""

from __future__ import annotations

import uuid

import pytest

from identity_store.domain.errors import InvalidInput, SubscriptionExists, SubscriptionNotFound
from identity_store.domain.models import NewEvent, NewUser
from identity_store.domain.pagination import STREAM_START, encode_stream_cursor
from identity_store.domain.subscriptions import OnFailure, SubscriptionLag
from tests.contract.conftest import Backend

pytestmark = [pytest.mark.integration, pytest.mark.contract]


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


async def behind(backend: Backend, name: str) -> int:
    async with backend.uow() as uow:
        lag = await uow.subscriptions.lag()
    found: list[SubscriptionLag] = [s for s in lag.subscriptions if s.name == name]
    assert len(found) == 1
    return found[0].events_behind


async def test_a_created_subscription_is_found_taken_and_deleted(backend: Backend) -> None:
    name = unique("c-")
    async with backend.uow() as uow:
        created = await uow.subscriptions.create(
            name, types=["contract.made", "contract_prefix.*"], on_failure="stop", max_attempts=3
        )
        with pytest.raises(SubscriptionExists) as taken:
            await uow.subscriptions.create(name)
        assert taken.value.name == name
        # Refusing a taken name does not abort the unit of work.
        assert await uow.subscriptions.get(name) == created
    assert created.position == encode_stream_cursor(*STREAM_START)
    assert set(created.types) == {"contract.made", "contract_prefix.*"}
    assert (created.on_failure, created.max_attempts, created.failures) == (OnFailure.STOP, 3, 0)
    assert created.partition is None and created.user_id is None and created.stopped_at is None
    assert created.created_at == created.updated_at == backend.clock()
    async with backend.uow() as uow:
        assert await uow.subscriptions.get(name) == created
        assert await uow.subscriptions.list_parked(name) == []
        assert await uow.subscriptions.delete(name) is True
        assert await uow.subscriptions.delete(name) is False
        assert await uow.subscriptions.get(name) is None
        with pytest.raises(SubscriptionNotFound):
            await uow.subscriptions.reset(name)


async def test_a_subscription_created_in_a_failed_unit_of_work_is_not_kept(
    backend: Backend,
) -> None:
    name = unique("c-")
    with pytest.raises(RuntimeError):
        async with backend.uow() as uow:
            await uow.subscriptions.create(name)
            raise RuntimeError("the block fails")
    async with backend.uow() as uow:
        assert await uow.subscriptions.get(name) is None


async def test_lag_counts_the_matching_events_after_the_position_and_reset_moves_it(
    backend: Backend,
) -> None:
    kind = unique("contract.lag_")
    prefix = unique("contract_p")
    async with backend.uow() as uow:
        user = await uow.users.register(
            NewUser(email=f"{unique('lag-')}@example.test", display_name="Lag")
        )
        exact = await uow.subscriptions.create(unique("c-"), types=[kind], start="now")
        by_prefix = await uow.subscriptions.create(unique("c-"), types=[f"{prefix}.*"], start="now")
        mine = await uow.subscriptions.create(
            unique("c-"), types=[kind], user_id=user.id, start="now"
        )
    async with backend.uow() as uow:
        await uow.events.append_many(
            [
                NewEvent(type=kind),
                NewEvent(type=kind, user_id=user.id),
                NewEvent(type=f"{prefix}.one"),
                NewEvent(type=f"{prefix}x.not_a_match"),
            ]
        )
    assert await behind(backend, exact.name) == 2
    assert await behind(backend, by_prefix.name) == 1
    assert await behind(backend, mine.name) == 1

    async with backend.uow() as uow:
        moved = await uow.subscriptions.reset(exact.name, to="now")
    assert moved.updated_at == backend.clock()
    assert await behind(backend, exact.name) == 0
    async with backend.uow() as uow:
        back = await uow.subscriptions.reset(exact.name, to=exact.position)
    assert back.position == exact.position
    assert await behind(backend, exact.name) == 2


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"name": "Not A Name"}, "name"),
        ({"name": "ok", "types": ["Bad Type"]}, "types"),
        ({"name": "ok", "types": "user.*"}, "types"),
        ({"name": "ok", "on_failure": "retry"}, "on_failure"),
        ({"name": "ok", "max_attempts": 0}, "max_attempts"),
        ({"name": "ok", "partition": (2, 2)}, "partition"),
        ({"name": "ok", "start": "yesterday"}, "start"),
    ],
)
async def test_malformed_arguments_name_the_argument_and_create_nothing(
    backend: Backend, arguments: dict[str, object], field: str
) -> None:
    arguments = {**arguments, "name": str(arguments["name"]).replace("ok", unique("c-"))}
    async with backend.uow() as uow:
        with pytest.raises(InvalidInput) as raised:
            await uow.subscriptions.create(**arguments)  # type: ignore[arg-type]
        assert raised.value.field == field
        if field != "name":
            assert await uow.subscriptions.get(str(arguments["name"])) is None


async def test_reset_to_garbage_names_the_argument_and_moves_nothing(backend: Backend) -> None:
    name = unique("c-")
    async with backend.uow() as uow:
        created = await uow.subscriptions.create(name)
    for garbage in ("yesterday", "", encode_stream_cursor(2**62, 1)):
        async with backend.uow() as uow:
            with pytest.raises(InvalidInput) as raised:
                await uow.subscriptions.reset(name, to=garbage)
            assert raised.value.field == "to"
    async with backend.uow() as uow:
        assert await uow.subscriptions.get(name) == created
        with pytest.raises(InvalidInput) as raised:
            await uow.subscriptions.get("Not A Name")
        assert raised.value.field == "name"
