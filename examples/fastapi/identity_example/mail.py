"""The password-reset mail, sent by a consumer of the event log rather than by the request.

``POST /password-resets`` only records the intent: it appends
``user.password_reset_requested`` (the user's id, an empty payload) and answers 202.
The consumer (:func:`reset_mail_consumer`, started in the application's lifespan)
receives the event, issues the single-use token and mails its secret:

- **No secret and no address in the log.** The event log is kept, replicated and read
  by every subscriber and operator; a reset secret stored there would be a live
  credential in plain text. The secret exists only in the consumer's memory and in the
  mail (the token table keeps its SHA-256 digest). The address is read from the user
  when the mail goes out, so the mail reaches the account's current address.
- **The token commits before the mail goes out**, in a transaction of its own: a mail
  never carries the secret of a token that was rolled back. If the consumer stops after
  the mail and before its batch commits, the batch is delivered again: the event gets a
  second token and a second mail with the same idempotency key, the event's
  ``event_key``. A mailer that honours the key drops that mail (the first one's token is
  live: exactly one working mail); one that does not sends a duplicate, and either
  secret works (using one revokes the other). A token issued for a mail that was never
  sent nobody knows; it expires. So: one mail per request, except for a batch in flight
  when the consumer stops, which is mailed again unless the mailer deduplicates.
- **A mailer that fails** (raises) leaves the batch unacknowledged: it is delivered
  again with backoff, so an outage of the mail API delays the mail (with a new token,
  the same key); after about 14 minutes of failures the request is parked.
- **Several instances.** Each instance of the service runs a consumer; one batch of the
  subscription is handled at a time (the library locks the subscription's row), so
  instances share the mail without sending it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any, Protocol
from uuid import UUID

import asyncpg

from identity_store import (
    Event,
    Handler,
    NewToken,
    PostgresUnitOfWork,
    SubscriptionExists,
    TokenKind,
    UserStatus,
    consume,
)

__all__ = [
    "RESET_REQUESTED",
    "SUBSCRIPTION",
    "ConsoleMailer",
    "Mailer",
    "create_subscription",
    "reset_mail_consumer",
    "reset_mail_handler",
    "run_reset_mail",
]

RESET_REQUESTED = "user.password_reset_requested"
SUBSCRIPTION = "example.reset-mail"
# The batch's transaction, the LISTEN connection and the token's own transaction.
_CONNECTIONS = 3
# A mailer that fails is retried after 1, 2, 4 ... 60, 60 ... seconds: 20 attempts take
# about 14 minutes, close to a reset token's 15, after which the mail is pointless; then
# the request is parked (``uow.subscriptions.list_parked``) and the others go on.
_MAX_ATTEMPTS = 20
_MAX_BACKOFF = 60.0
_STOP_TIMEOUT = 10.0

_log = logging.getLogger("identity_example.mail")


class Mailer(Protocol):
    """Delivers password-reset secrets to their owner."""

    async def send_password_reset(self, email: str, secret: str, *, idempotency_key: UUID) -> None:
        """Send the mail. Called again with the same ``idempotency_key`` after a
        redelivery: a mailer that can (most mail APIs take an ``Idempotency-Key``)
        returns without sending, also when the secret differs; else it sends again."""
        ...


class ConsoleMailer:
    """For local development only: prints the reset secret to stderr. A real service
    sends it by e-mail and never writes it anywhere else. It does not deduplicate."""

    async def send_password_reset(self, email: str, secret: str, *, idempotency_key: UUID) -> None:
        print(
            f"[dev mailer] password reset for {email} ({idempotency_key}): {secret}",
            file=sys.stderr,
        )


def reset_mail_handler(pool: asyncpg.Pool[Any], mailer: Mailer, ttl: timedelta) -> Handler:
    """The consumer's handler: for each request of an active user, a token committed in
    a transaction of its own, then the mail keyed by the event's ``event_key``."""

    async def send_reset_mails(events: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        for event in events:
            user = await uow.users.get(event.user_id) if event.user_id else None
            if user is None or user.status is not UserStatus.ACTIVE:
                continue  # deleted or disabled since the request: nothing to mail
            async with PostgresUnitOfWork(pool) as own:
                issued = await own.tokens.issue(
                    NewToken(user_id=user.id, kind=TokenKind.PASSWORD_RESET, ttl=ttl)
                )
            await mailer.send_password_reset(
                user.email, issued.secret.get_secret_value(), idempotency_key=event.event_key
            )

    return send_reset_mails


async def create_subscription(pool: asyncpg.Pool[Any]) -> None:
    """Create the subscription unless it exists. It starts at "now": requests recorded
    before it existed are not mailed (their senders have asked again long since).

    Raises:
        ValueError: the pool is too small for the consumer (DB_POOL_MAX_SIZE below 3).
    """
    if pool.get_max_size() < _CONNECTIONS:
        raise ValueError(f"the reset mail needs a pool of at least {_CONNECTIONS} connections")
    async with PostgresUnitOfWork(pool) as uow:
        if await uow.subscriptions.get(SUBSCRIPTION) is not None:
            return
    with contextlib.suppress(SubscriptionExists):  # another instance was faster
        async with PostgresUnitOfWork(pool) as uow:
            await uow.subscriptions.create(
                SUBSCRIPTION, types=[RESET_REQUESTED], start="now", max_attempts=_MAX_ATTEMPTS
            )


async def run_reset_mail(
    pool: asyncpg.Pool[Any],
    mailer: Mailer,
    ttl: timedelta,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Create the subscription if missing, then mail every request until ``stop`` is set
    or the task is cancelled (a cancelled batch rolls back and is delivered again)."""
    await create_subscription(pool)
    handler = reset_mail_handler(pool, mailer, ttl)
    await consume(pool, SUBSCRIPTION, handler, max_backoff=_MAX_BACKOFF, stop=stop)


def _ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        # The class only: a message may quote data.
        _log.error("the reset mail consumer stopped: %s", type(error).__qualname__)


@contextlib.asynccontextmanager
async def reset_mail_consumer(
    pool: asyncpg.Pool[Any], mailer: Mailer, ttl: timedelta
) -> AsyncIterator[None]:
    """Run :func:`run_reset_mail` beside the block; stop it after the batch in progress
    when the block ends (cancelled if that takes longer than 10 s)."""
    await create_subscription(pool)
    stop = asyncio.Event()
    task = asyncio.create_task(run_reset_mail(pool, mailer, ttl, stop=stop))
    task.add_done_callback(_ended)
    try:
        yield
    finally:
        stop.set()
        _, pending = await asyncio.wait({task}, timeout=_STOP_TIMEOUT)
        if pending:
            task.cancel()
            await asyncio.wait({task})
