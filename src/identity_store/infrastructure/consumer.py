"""Consumers: a handler for every event of a durable subscription.

::

    from identity_store import PostgresUnitOfWork, consume

    async with PostgresUnitOfWork(pool) as uow:
        await uow.subscriptions.create("reset-mail", types=["user.password_reset_requested"])

    async def send_mail(events: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        for event in events:
            await mailer.send(..., idempotency_key=str(event.event_key))

    await consume(pool, "reset-mail", send_mail)   # until cancelled or `stop` is set

**Database effects happen exactly once.** The handler gets a batch and the unit of
work it runs in; the subscription's position advances in that same transaction, after
the handler returns. Either the handler's writes and the new position commit
together, or neither does and the batch is delivered again.

**Effects outside the database happen at least once.** A crash (or a failed COMMIT)
after the handler sent a mail delivers the batch again: pass ``event.event_key`` to
the other system as the idempotency key, or record what was sent through ``uow``.

**Failures.** A handler that raises leaves the batch unacknowledged: its writes roll
back, and the subscription retries after ``backoff`` seconds, doubling up to
``max_backoff``, one event at a time until it is past the failed batch. An event that
failed ``max_attempts`` deliveries on its own is parked (``list_parked`` shows its id,
the error's class and message; never its payload) and the subscription goes on, or the
subscription stops (:class:`SubscriptionStopped`) until ``reset``: the subscription's
``on_failure``. The error's class is logged, not its message.

**Order and workers.** Events arrive in the stream's order (``read_stream``'s). Any
number of workers may consume one subscription: each batch locks the subscription's
row (``FOR UPDATE SKIP LOCKED``), so one batch is in progress at a time and the others
wait; the lock ends with the worker's transaction, also when its process dies. To
handle batches in parallel, split the stream by user into subscriptions created with
``partition=(index, count)`` and consume each of them in every worker.

**Wake-ups.** Appends notify at COMMIT; a consumer ``LISTEN``\\s on one pooled
connection and reads at once, and polls every ``poll_interval`` seconds anyway, so a
lost notification only delays. Behind PgBouncer in transaction mode (which does not
carry ``LISTEN``) pass ``listen=False``: polling only.

**The horizon.** Only events of transactions older than every running one are read
(see ``read_stream``): a transaction left open anywhere on the server holds every
subscription back. ``uow.subscriptions.lag()`` shows by how much and for how long.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from identity_store.domain.clock import Clock, utc_now
from identity_store.domain.errors import (
    DatabaseTimeout,
    DatabaseUnavailable,
    InvalidInput,
    SubscriptionBehindRetention,
    SubscriptionStopped,
    TransactionConflict,
    UnitOfWorkError,
)
from identity_store.domain.models import Event
from identity_store.domain.pagination import STREAM_START
from identity_store.domain.subscriptions import (
    OnFailure,
    check_batch_size,
    check_subscription_name,
)
from identity_store.infrastructure._pool import acquire_timeout_of
from identity_store.infrastructure.persistence import PostgresUnitOfWork
from identity_store.infrastructure.persistence.subscription_repo import Position

__all__ = ["NOTIFY_CHANNEL", "BatchResult", "Handler", "consume", "run_once"]

NOTIFY_CHANNEL = "identity_store_events"
"""The channel appends notify at COMMIT (queries/events.sql)."""

Handler = Callable[[Sequence[Event], PostgresUnitOfWork], Awaitable[None]]
"""An async function of a batch of events and the unit of work they are handled in."""

_log = logging.getLogger("identity_store.consumer")


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one :func:`run_once` did.

    ``handled``: events the handler handled (committed with the new position);
    ``failed``: the handler raised (nothing committed); ``parked``: the id of the
    event parked by this call; ``busy``: another worker holds the subscription;
    ``retry_in``: seconds until a retry of a failed batch is due; ``more``: the batch
    was full, read again at once.
    """

    handled: int = 0
    failed: bool = False
    parked: int | None = None
    busy: bool = False
    retry_in: float | None = None
    more: bool = False


class _HandlerFailedError(Exception):
    def __init__(self, error: Exception) -> None:
        super().__init__(type(error).__qualname__)
        self.error = error


def _check_handler(handler: object) -> None:
    if not callable(handler):
        raise InvalidInput("handler", "must be an async function of (events, uow)")


def _check_seconds(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 86_400:
        raise InvalidInput(field, "must be a number of seconds above 0, at most 86400")
    return float(value)


async def run_once(
    pool: asyncpg.Pool[Any],
    name: str,
    handler: Handler,
    *,
    batch_size: int = 100,
    backoff: float = 1.0,
    max_backoff: float = 300.0,
    clock: Clock = utc_now,
) -> BatchResult:
    """Hand the subscription's next batch (at most ``batch_size`` events, 1..10,000)
    to ``handler`` and commit its writes with the new position; see the module's
    docstring for the guarantees.

    Returns what happened (:class:`BatchResult`); an empty batch is not a call of
    the handler.

    Raises:
        InvalidInput: a malformed argument (the error names it), or the handler is not
            an async function returning None (nothing is committed).
        SubscriptionNotFound: no subscription has the name.
        SubscriptionStopped: the subscription stopped after repeated failures.
        SubscriptionBehindRetention: events after its position were purged.
        DatabaseUnavailable, DatabaseTimeout, TransactionConflict: the database failed;
            nothing is committed (or, for ``CommitOutcomeUnknown``, maybe everything).
    """
    check_subscription_name(name)
    _check_handler(handler)
    check_batch_size(batch_size)
    backoff = _check_seconds(backoff, "backoff")
    max_backoff = _check_seconds(max_backoff, "max_backoff")
    start: Position
    end: Position
    try:
        async with PostgresUnitOfWork(pool, clock=clock) as uow:
            subscriptions = uow.subscriptions
            row = await subscriptions.claim(name)
            if row is None:
                return BatchResult(busy=True)
            if row.stopped_at is not None:
                raise SubscriptionStopped(name)
            start = (row.after_tx_id, row.after_id)
            if start < await subscriptions.retained_from():
                raise SubscriptionBehindRetention(name)
            now = clock()
            if row.retry_at is not None and row.retry_at > now:
                return BatchResult(retry_in=(row.retry_at - now).total_seconds())
            narrow = (row.narrow_tx_id, row.narrow_id)
            narrowing = start < narrow
            horizon = await subscriptions.horizon()
            limit = 1 if narrowing else batch_size
            events, last = await subscriptions.read_batch(row, horizon=horizon, limit=limit)
            if last is None:
                # Nothing matches below the horizon: move up to it, so the next read
                # starts there instead of scanning the unmatched events again.
                if start < (horizon, 0) and not narrowing:
                    await subscriptions.save_progress(
                        row, (horizon, 0), failures=0, narrow=STREAM_START
                    )
                return BatchResult()
            end = last
            try:
                pending: object = handler(events, uow)
            except Exception as error:
                raise _HandlerFailedError(error) from error
            if not inspect.isawaitable(pending):
                raise InvalidInput("handler", "must be an async function of (events, uow)")
            try:
                result = await pending
            except Exception as error:
                raise _HandlerFailedError(error) from error
            if result is not None:
                raise InvalidInput("handler", "must return None")
            try:
                await subscriptions.save_progress(
                    row,
                    end,
                    failures=0,
                    narrow=narrow if end < narrow else STREAM_START,
                )
            except UnitOfWorkError as error:
                # The handler caught a database error: its transaction is aborted.
                raise _HandlerFailedError(error) from error
    except _HandlerFailedError as failed:
        return await _record_failure(
            pool, name, failed.error, start, end, len(events), backoff, max_backoff, clock
        )
    return BatchResult(handled=len(events), more=len(events) == limit)


async def _record_failure(
    pool: asyncpg.Pool[Any],
    name: str,
    error: Exception,
    start: Position,
    end: Position,
    size: int,
    backoff: float,
    max_backoff: float,
    clock: Clock,
) -> BatchResult:
    async with PostgresUnitOfWork(pool, clock=clock) as uow:
        subscriptions = uow.subscriptions
        row = await subscriptions.lock(name)
        if (row.after_tx_id, row.after_id) != start or row.stopped_at is not None:
            return BatchResult(failed=True)  # another worker got past it, or reset it
        failures = row.failures + 1
        narrow = max((row.narrow_tx_id, row.narrow_id), end)
        _log.warning(
            "subscription %s: the handler raised %s on a batch of %d (failure %d of %d)",
            name,
            type(error).__qualname__,
            size,
            failures,
            row.max_attempts,
        )
        if size == 1 and failures >= row.max_attempts:
            if row.on_failure == OnFailure.STOP:
                await subscriptions.save_progress(
                    row, start, failures=failures, narrow=narrow, stopped_at=clock()
                )
                _log.error("subscription %s stopped at event %d", name, end[1])
                return BatchResult(failed=True)
            await subscriptions.park(name, end[1], error, failures)
            await subscriptions.save_progress(
                row, end, failures=0, narrow=narrow if end < narrow else STREAM_START
            )
            _log.error("subscription %s parked event %d", name, end[1])
            return BatchResult(failed=True, parked=end[1])
        delay = min(backoff * 2 ** min(failures - 1, 30), max_backoff)
        await subscriptions.save_progress(
            row,
            start,
            failures=failures,
            narrow=narrow,
            retry_at=clock() + timedelta(seconds=delay),
        )
        return BatchResult(failed=True, retry_in=delay)


class _Listener:
    """LISTEN on one pooled connection; ``wake`` is set on every notification.
    Broken or refused: the consumer polls, and this tries again at most once per
    ``retry_every`` seconds."""

    def __init__(self, pool: asyncpg.Pool[Any], wake: asyncio.Event, retry_every: float) -> None:
        self._pool = pool
        self._wake = wake
        self._retry_every = retry_every
        self._connection: Any = None
        self._tried_at = -float("inf")

    def _notified(self, *_: object) -> None:
        self._wake.set()

    def _lost(self, *_: object) -> None:
        self._connection = None
        self._wake.set()  # read at once: a notification may have been lost

    async def ensure(self) -> None:
        if self._connection is not None and not self._connection.is_closed():
            return
        if time.monotonic() - self._tried_at < self._retry_every:
            return
        self._tried_at = time.monotonic()
        connection = None
        try:
            connection = await self._pool.acquire(timeout=acquire_timeout_of(self._pool))
            await connection.add_listener(NOTIFY_CHANNEL, self._notified)
            connection.add_termination_listener(self._lost)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            _log.warning("LISTEN failed (%s): polling", type(exc).__name__)
            if connection is not None:
                with contextlib.suppress(Exception):
                    await self._pool.release(connection)
            return
        self._connection = connection
        # Events committed before LISTEN took effect sent no notification to us.
        self._wake.set()

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.remove_listener(NOTIFY_CHANNEL, self._notified)
            with contextlib.suppress(Exception):
                await self._pool.release(connection)


async def _warn_if_held_back(pool: asyncpg.Pool[Any], name: str, warn_after: float) -> None:
    try:
        async with PostgresUnitOfWork(pool) as uow:
            age = await uow.subscriptions.oldest_transaction_seconds()
    except (DatabaseUnavailable, DatabaseTimeout, TransactionConflict):
        return  # the next run_once reports the outage
    if age >= warn_after:
        _log.warning(
            "subscription %s: the stream is held back by a transaction open for %.0f s "
            "(delivery resumes when it ends; see pg_stat_activity)",
            name,
            age,
        )


async def _wait(wake: asyncio.Event, stop: asyncio.Event, seconds: float) -> None:
    waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def consume(
    pool: asyncpg.Pool[Any],
    name: str,
    handler: Handler,
    *,
    batch_size: int = 100,
    listen: bool = True,
    poll_interval: float = 1.0,
    backoff: float = 1.0,
    max_backoff: float = 300.0,
    stop: asyncio.Event | None = None,
    horizon_warning_seconds: float = 60.0,
    clock: Clock = utc_now,
) -> None:
    """Hand every event of the subscription to ``handler``, batch by batch
    (:func:`run_once`), until ``stop`` is set or the task is cancelled; see the
    module's docstring for the guarantees.

    With ``listen`` (the default) one pooled connection stays LISTENing while this
    runs (so the pool needs at least two), and new events are read as soon as their
    transaction commits (and every older one has ended); without it (PgBouncer in
    transaction mode) the subscription is polled every ``poll_interval`` seconds,
    which is also the longest a lost notification delays an event. A database outage
    is logged and waited out, one ``poll_interval`` at a time. While idle, it checks
    at most every 30 seconds for a transaction holding the stream back and logs a
    warning when one has been open for ``horizon_warning_seconds``.

    Raises:
        InvalidInput: a malformed argument, a handler that is not an async function
            returning None, or ``listen`` with a pool of one connection.
        SubscriptionNotFound: no subscription has the name (also when it is deleted
            while consuming).
        SubscriptionStopped: the subscription stopped after repeated failures.
        SubscriptionBehindRetention: events after its position were purged.
    """
    check_subscription_name(name)
    _check_handler(handler)
    check_batch_size(batch_size)
    poll_interval = _check_seconds(poll_interval, "poll_interval")
    _check_seconds(backoff, "backoff")
    _check_seconds(max_backoff, "max_backoff")
    warn_after = _check_seconds(horizon_warning_seconds, "horizon_warning_seconds")
    if listen and pool.get_max_size() < 2:
        # LISTEN holds one connection for good; the batches need another.
        raise InvalidInput("listen", "needs a pool of at least 2 connections (or listen=False)")
    checked_at = -float("inf")
    stop = stop or asyncio.Event()
    wake = asyncio.Event()
    listener = _Listener(pool, wake, poll_interval) if listen else None
    try:
        while not stop.is_set():
            if listener is not None:
                await listener.ensure()
            wake.clear()
            try:
                result = await run_once(
                    pool,
                    name,
                    handler,
                    batch_size=batch_size,
                    backoff=backoff,
                    max_backoff=max_backoff,
                    clock=clock,
                )
            except (DatabaseUnavailable, DatabaseTimeout, TransactionConflict) as exc:
                _log.warning("subscription %s: %s; trying again", name, type(exc).__name__)
                await _wait(asyncio.Event(), stop, poll_interval)
                continue
            if result.more or (result.failed and result.retry_in is None):
                continue
            if time.monotonic() - checked_at >= min(30.0, warn_after):
                checked_at = time.monotonic()
                await _warn_if_held_back(pool, name, warn_after)
            if result.retry_in is not None:
                # A notification must not cut a backoff short.
                await _wait(asyncio.Event(), stop, min(result.retry_in, max_backoff))
            else:
                await _wait(wake, stop, poll_interval)
    finally:
        if listener is not None:
            await listener.close()
