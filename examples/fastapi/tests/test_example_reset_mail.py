"""The password-reset mail goes out from a consumer of the event the request appends
(identity_example/mail.py): once per request, also across a consumer stopped or killed
between the append and the mail, and never before the response."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from conftest import FAST_HASHER, OutboxMailer, Serve
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from identity_example import Config, create_app
from identity_example.mail import RESET_REQUESTED, SUBSCRIPTION, create_subscription, run_reset_mail

from identity_store import PostgresUnitOfWork, Settings

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
TTL = timedelta(minutes=15)


@asynccontextmanager
async def without_consumer(
    settings: Settings, mailer: OutboxMailer
) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
    """The app with its consumer left to the test (``mail_consumer=False``), as when
    the consumer runs in a process of its own."""
    app = create_app(
        Config(settings=settings, hasher=FAST_HASHER, mailer=mailer, mail_consumer=False)
    )
    async with app.router.lifespan_context(app):
        await create_subscription(app.state.pool)
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://identity.test") as client:
            yield app, client


class Consumer:
    """One run of the example's consumer as a task: stopped after its batch, or
    cancelled mid-batch (a kill: the batch's transaction rolls back)."""

    def __init__(self, app: FastAPI, mailer: OutboxMailer) -> None:
        self._stop = asyncio.Event()
        self.task = asyncio.create_task(
            run_reset_mail(app.state.pool, mailer, TTL, stop=self._stop)
        )

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.wait_for(self.task, timeout=30)

    async def kill(self) -> None:
        self.task.cancel()
        await asyncio.wait({self.task}, timeout=30)
        assert self.task.cancelled()


async def events_behind(pool: asyncpg.Pool[Any]) -> int:
    async with PostgresUnitOfWork(pool) as uow:
        lag = await uow.subscriptions.lag()
    return next(s.events_behind for s in lag.subscriptions if s.name == SUBSCRIPTION)


async def caught_up(pool: asyncpg.Pool[Any]) -> None:
    for _ in range(1500):  # 30 s at most
        if await events_behind(pool) == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the consumer did not catch up within 30 s")


async def signed_up(client: AsyncClient) -> str:
    email = f"user.{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "display_name": "Ada", "password": PASSWORD}
    created = await client.post("/users", json=body)
    assert created.status_code == 201, created.text
    return email


async def request_reset(client: AsyncClient, email: str) -> None:
    response = await asyncio.wait_for(
        client.post("/password-resets", json={"email": email}), timeout=30
    )
    assert response.status_code == 202, response.text


async def confirm(client: AsyncClient, secret: str) -> int:
    body = {"token": secret, "new_password": f"new passphrase {uuid.uuid4().hex[:6]}"}
    return (await client.post("/password-resets/confirm", json=body)).status_code


async def reset_events(pool: asyncpg.Pool[Any]) -> list[Any]:
    async with pool.acquire() as conn:
        return list(
            await conn.fetch(
                "SELECT event_key, payload::text AS payload FROM events WHERE type = $1 "
                "ORDER BY id",
                RESET_REQUESTED,
            )
        )


async def test_each_request_is_mailed_once_by_the_consumer_and_the_log_holds_no_secret(
    identity_store_settings: Settings,
    identity_store_pool: asyncpg.Pool[Any],
    serve: Serve,
    mailer: OutboxMailer,
) -> None:
    async with serve(identity_store_settings) as client:
        email = await signed_up(client)
        for _ in range(3):
            await request_reset(client, email)
        await request_reset(client, "nobody@example.com")
        await mailer.wait_for(3)
        await caught_up(identity_store_pool)
        assert await confirm(client, mailer.sent[-1][1]) == 204
    # The lifespan stopped the consumer: nothing more can arrive.
    events = await reset_events(identity_store_pool)
    assert [key for key, _ in events] == mailer.keys
    assert len(set(mailer.keys)) == 3
    assert [address for address, _ in mailer.sent] == [email] * 3
    for _, payload in events:
        assert payload == "{}"  # neither the secret nor the address
    assert len({secret for _, secret in mailer.sent}) == 3


async def test_the_response_does_not_wait_for_the_mail(
    identity_store_settings: Settings, serve: Serve, mailer: OutboxMailer
) -> None:
    mailer.before_send = asyncio.Event()  # the mail cannot go out until the test says so
    async with serve(identity_store_settings) as client:
        email = await signed_up(client)
        await request_reset(client, email)  # answered while the mailer is held
        await mailer.wait_for(1)
        assert mailer.sent == []
        mailer.before_send.set()
    # Shutdown waited for the batch in progress.
    assert [address for address, _ in mailer.sent] == [email]


async def test_a_request_made_while_the_consumer_is_stopped_is_mailed_once_it_starts(
    identity_store_settings: Settings, mailer: OutboxMailer
) -> None:
    async with without_consumer(identity_store_settings, mailer) as (app, client):
        email = await signed_up(client)
        first = Consumer(app, mailer)
        await request_reset(client, email)
        await mailer.wait_for(1)
        await first.stop()

        await request_reset(client, email)  # appended; nobody consumes
        assert await events_behind(app.state.pool) == 1
        assert len(mailer.keys) == 1

        second = Consumer(app, mailer)
        await mailer.wait_for(2)
        await caught_up(app.state.pool)
        await second.stop()
        assert [key for key, _ in await reset_events(app.state.pool)] == mailer.keys
        assert len(mailer.sent) == 2
        assert await confirm(client, mailer.sent[1][1]) == 204


async def test_a_user_disabled_before_delivery_gets_no_mail(
    identity_store_settings: Settings, mailer: OutboxMailer
) -> None:
    async with without_consumer(identity_store_settings, mailer) as (app, client):
        email = await signed_up(client)
        await request_reset(client, email)
        session = await client.post("/sessions", json={"email": email, "password": PASSWORD})
        auth = {"Authorization": f"Bearer {session.json()['token']}"}
        user_id = (await client.get("/sessions/current", headers=auth)).json()["user_id"]
        disabled = await client.post(f"/users/{user_id}/disable", headers=auth)
        assert disabled.status_code == 200
        consumer = Consumer(app, mailer)
        await caught_up(app.state.pool)
        await consumer.stop()
    assert mailer.keys == []


@pytest.mark.parametrize("dedupe", [True, False], ids=["idempotent-mailer", "plain-mailer"])
async def test_a_consumer_killed_after_mailing_mails_that_batch_again_with_the_same_key(
    identity_store_settings: Settings, dedupe: bool
) -> None:
    mailer = OutboxMailer(dedupe=dedupe, after_send=asyncio.Event())
    async with without_consumer(identity_store_settings, mailer) as (app, client):
        email = await signed_up(client)
        killed = Consumer(app, mailer)
        await request_reset(client, email)
        await mailer.wait_for(1)  # the mail is out; its batch has not committed
        await killed.kill()
        assert await events_behind(app.state.pool) == 1  # the batch was not acknowledged

        mailer.after_send = None
        restarted = Consumer(app, mailer)
        await mailer.wait_for(2)
        await caught_up(app.state.pool)
        await restarted.stop()

        [(key, _)] = await reset_events(app.state.pool)
        assert mailer.keys == [key, key]  # delivered twice, with the same idempotency key
        assert len(mailer.sent) == (1 if dedupe else 2)
        # The first mail's token committed before it went out: its secret works, and
        # using it revokes the duplicate's.
        assert await confirm(client, mailer.sent[0][1]) == 204
        if not dedupe:
            assert await confirm(client, mailer.sent[1][1]) == 401


async def test_a_mailer_that_fails_gets_the_request_again_until_it_is_sent(
    identity_store_settings: Settings,
    identity_store_pool: asyncpg.Pool[Any],
    serve: Serve,
    mailer: OutboxMailer,
) -> None:
    mailer.failures = 1
    async with serve(identity_store_settings) as client:
        email = await signed_up(client)
        await request_reset(client, email)
        await mailer.wait_for(2)  # the first call raised; the retry (after 1 s) sent
        await caught_up(identity_store_pool)
        assert await confirm(client, mailer.sent[0][1]) == 204
    [(key, _)] = await reset_events(identity_store_pool)
    assert mailer.keys == [key, key]
    assert [address for address, _ in mailer.sent] == [email]
    async with PostgresUnitOfWork(identity_store_pool) as uow:
        assert await uow.subscriptions.list_parked(SUBSCRIPTION) == []


async def test_a_pool_too_small_for_the_consumer_fails_at_start_naming_it(
    identity_store_settings: Settings, serve: Serve
) -> None:
    small = identity_store_settings.model_copy(update={"pool_max_size": 2})
    with pytest.raises(ValueError, match="pool of at least 3"):
        async with serve(small):
            pass
