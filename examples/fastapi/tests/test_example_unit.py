"""The example on the in-memory fakes of the ports: no database, for fast unit tests of
route logic (the plugin's ``identity_store_store``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from argon2 import PasswordHasher
from httpx import ASGITransport, AsyncClient
from identity_example import Config, create_app

from identity_store.dev import FakeUnitOfWork, Store

pytestmark = pytest.mark.unit


@pytest.fixture
async def client(identity_store_store: Store) -> AsyncIterator[AsyncClient]:
    config = Config(
        hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
        new_uow=lambda: FakeUnitOfWork(identity_store_store),
    )
    app = create_app(config)
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://identity.test") as client:
            yield client


async def test_register_sign_in_and_read_yourself_on_the_fakes(
    client: AsyncClient, identity_store_store: Store
) -> None:
    body = {"email": "ada@example.com", "display_name": "Ada", "password": "long enough"}
    created = await client.post("/users", json=body)
    assert created.status_code == 201
    assert (
        await client.post("/users", json=body | {"email": "ADA@example.com"})
    ).status_code == 409
    session = await client.post(
        "/sessions", json={"email": "ada@example.com", "password": "long enough"}
    )
    auth = {"Authorization": f"Bearer {session.json()['token']}"}
    me = await client.get(f"/users/{created.json()['id']}", headers=auth)
    assert me.status_code == 200 and me.json()["email"] == "ada@example.com"
    assert [e.type for e in identity_store_store.events] == ["user.registered", "session.started"]


async def test_a_failed_request_keeps_nothing_on_the_fakes(
    client: AsyncClient, identity_store_store: Store
) -> None:
    body = {"email": "ada@example.com", "display_name": "Ada", "password": "long enough"}
    await client.post("/users", json=body)
    events_before = list(identity_store_store.events)
    assert (await client.post("/users", json=body)).status_code == 409
    assert identity_store_store.events == events_before
    assert len(identity_store_store.users) == 1
