"""The example's tests run the ASGI app in-process through httpx, on a fresh migrated
database per test from identity-store's pytest plugin (``identity_store_settings``);
``live_server`` runs it under uvicorn in a process of its own, as clients meet it."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import pytest
from argon2 import PasswordHasher
from httpx import ASGITransport, AsyncClient
from identity_example import Config, create_app

from identity_store import Settings

# Cheap parameters: the tests check behaviour, not the hash's strength.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass
class OutboxMailer:
    """Keeps what the service would have e-mailed, honouring idempotency keys as mail
    APIs do (``dedupe``): a key already sent is not sent again.

    ``before_send`` / ``after_send``, when given, hold each call until they are set:
    before the mail is kept, or after (a mail gone out whose batch has not committed).
    A call that raises sends nothing."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    keys: list[UUID] = field(default_factory=list)  # of every call, duplicates included
    sent_keys: set[UUID] = field(default_factory=set)
    dedupe: bool = True
    before_send: asyncio.Event | None = None
    failures: int = 0  # calls that raise, as a mail API that is down
    after_send: asyncio.Event | None = None

    async def send_password_reset(self, email: str, secret: str, *, idempotency_key: UUID) -> None:
        self.keys.append(idempotency_key)
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("the mail API is down")
        if self.before_send is not None:
            await self.before_send.wait()
        if not (self.dedupe and idempotency_key in self.sent_keys):
            self.sent.append((email, secret))
            self.sent_keys.add(idempotency_key)
        if self.after_send is not None:
            await self.after_send.wait()

    async def wait_for(self, calls: int) -> None:
        """Return once the mailer was called ``calls`` times (the consumer runs apart
        from the request), within 30 s."""
        deadline = time.monotonic() + 30
        while len(self.keys) < calls:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.keys)} of {calls} mails within 30 s")
            await asyncio.sleep(0.02)


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


# The service as `python -m identity_example` builds it (settings from DATABASE_URL),
# with the cheap hasher; uvicorn picks a free port and logs it.
_SERVE = """
import uvicorn
from argon2 import PasswordHasher
from identity_example import Config, create_app

hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
uvicorn.run(create_app(Config(hasher=hasher)), host="127.0.0.1", port=0)
"""
_LISTENING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")
EXAMPLE = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class LiveServer:
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def wait_for_line(
    process: subprocess.Popen[bytes], log: Path, pattern: re.Pattern[str], timeout: float
) -> re.Match[str]:
    """Return the first match of ``pattern`` in ``log`` once the process has written it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := pattern.search(log.read_text(errors="replace")):
            return found
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no {pattern.pattern!r} within {timeout} s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """End ``process`` (SIGTERM, then SIGKILL after 10 s) and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def live_server(identity_store_settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    """The example under uvicorn in its own process on a fresh database, on loopback."""
    env = {
        **os.environ,
        "DATABASE_URL": identity_store_settings.database_url.get_secret_value(),
        "PYTHONPATH": os.pathsep.join([str(EXAMPLE), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("DB_URL", None)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVE], env=env, cwd=tmp_path, stdout=out, stderr=out
        )
    try:
        url = wait_for_line(process, log, _LISTENING, timeout=60).group(1)
        yield LiveServer(url=url, log=log)
    finally:
        stop(process)
