"""The example's tests run the ASGI app in-process through httpx, on a fresh migrated
database per test from identity-store's pytest plugin (``identity_store_settings``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

import pytest
from argon2 import PasswordHasher
from httpx import ASGITransport, AsyncClient
from identity_example import Config, create_app

from identity_store import Settings

# Cheap parameters: the tests check behaviour, not the hash's strength.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass
class OutboxMailer:
    """Keeps what the service would have e-mailed."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    async def send_password_reset(self, email: str, secret: str) -> None:
        self.sent.append((email, secret))


@pytest.fixture
def mailer() -> OutboxMailer:
    return OutboxMailer()


Serve = Callable[[Settings], AbstractAsyncContextManager[AsyncClient]]


@pytest.fixture
def serve(mailer: OutboxMailer) -> Serve:
    """Start the app on ``settings`` (its lifespan: pool opened, then closed) and
    yield an HTTP client talking to it in-process."""

    @asynccontextmanager
    async def running(settings: Settings) -> AsyncIterator[AsyncClient]:
        app = create_app(Config(settings=settings, hasher=FAST_HASHER, mailer=mailer))
        async with app.router.lifespan_context(app):
            transport = ASGITransport(app=app)
            async with AsyncClient(transport=transport, base_url="http://identity.test") as client:
                yield client

    return running


@pytest.fixture
async def client(identity_store_settings: Settings, serve: Serve) -> AsyncIterator[AsyncClient]:
    async with serve(identity_store_settings) as client:
        yield client
