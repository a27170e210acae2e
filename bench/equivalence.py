"""Before timing anything: every contender gives the same results for the same inputs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from bench._database import Data, insert_users, new_events
from bench.contenders import (
    Contender,
    digest,
)
from bench.workloads import BULK, SINGLE
from identity_store import (
    Event,
    NewEvent,
    NewUser,
    Token,
    User,
    UserUpdate,
)
from identity_store.domain.clock import utc_now

# ----------------------------------------------------------------------- equivalence


def norm(value: Any) -> Any:
    """A comparable form of what a contender returned, whatever its model class."""
    if value is None or isinstance(value, bool | int | float | str | bytes | datetime):
        return value.value if hasattr(value, "value") else value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [norm(v) for v in value]
    fields = USER_FIELDS if hasattr(value, "email") else None
    if fields is None:
        fields = TOKEN_FIELDS if hasattr(value, "expires_at") else EVENT_FIELDS
    return {name: norm(getattr(value, name)) for name in fields}


# What the equivalence checks compare: the models' fields (a user's secret hash aside).
USER_FIELDS = tuple(name for name, info in User.model_fields.items() if not info.exclude)
TOKEN_FIELDS = tuple(Token.model_fields)
EVENT_FIELDS = tuple(Event.model_fields)


def without(value: Any, *names: str) -> Any:
    return {k: v for k, v in value.items() if k not in names}


async def check_equivalence(
    url: str, data: Data, contenders: dict[str, Contender], conn: asyncpg.Connection
) -> dict[str, str]:
    """Give every contender the same inputs and compare what comes back.

    Writes are undone between contenders so each starts from the same rows; values
    the database generates (ids of new rows) are left out of the comparison of writes.
    """
    now = datetime.now(UTC) + timedelta(minutes=1)
    for contender in contenders.values():
        contender.set_clock(lambda: now)
    outcome: dict[str, str] = {}

    async def compare(name: str, make: Callable[[Contender], Awaitable[Any]], names: Any) -> None:
        results = {}
        for who in names:
            results[who] = await make(contenders[who])
        first = results[names[0]]
        bad = [who for who, got in results.items() if got != first]
        outcome[name] = "same" if not bad else f"DIFFERENT: {', '.join(bad)} vs {names[0]}"

    sample_ids = [*data.user_ids[:3], uuid4()]
    await compare(
        "get_user", lambda c: _all(c.get_user, sample_ids), [n for n in SINGLE if n in contenders]
    )
    sample_emails = [data.emails[0].upper(), data.emails[1], "nobody@bench.example"]
    await compare(
        "get_user_by_email",
        lambda c: _all(c.get_user_by_email, sample_emails),
        [n for n in SINGLE if n in contenders],
    )

    email = "check.register@bench.example"

    async def register(c: Contender) -> Any:
        await conn.execute("DELETE FROM users WHERE email_key = $1", email)
        got = norm(await c.register(NewUser(email=email, display_name="Check")))
        return without(got, "id")

    async def register_e2e(c: Contender) -> Any:
        await conn.execute("DELETE FROM users WHERE email_key = $1", email)
        return without(norm(await c.register_plain(email, "Check")), "id")

    await compare("register", register, [n for n in SINGLE if n in contenders])
    await compare("register_e2e", register_e2e, [n for n in SINGLE if n in contenders])

    (update_id,) = await insert_users(conn, ["check.update@bench.example"])

    async def update(c: Contender, *, plain: bool = False) -> Any:
        await conn.execute(
            "UPDATE users SET display_name = 'Before', version = 3, updated_at = created_at"
            " WHERE id = $1",
            update_id,
        )
        if plain:
            return norm(await c.update_user_plain(update_id, "After", 3))
        return norm(await c.update_user(update_id, UserUpdate(display_name="After"), 3))

    await compare("update_user", update, [n for n in SINGLE if n in contenders])
    await compare(
        "update_user_e2e",
        lambda c: update(c, plain=True),
        [n for n in SINGLE if n in contenders],
    )
    await compare(
        "verify_token",
        lambda c: _all(c.verify_token, [*data.token_secrets[:3], "unknown"]),
        [n for n in SINGLE if n in contenders],
    )
    token_id = uuid4()

    async def consume(c: Contender) -> Any:
        secret = "check-consume"
        await conn.execute("DELETE FROM tokens WHERE id = $1", token_id)
        await conn.execute(
            "INSERT INTO tokens (id, user_id, kind, token_hash, created_at, expires_at)"
            " VALUES ($1, $2, 'email_verification', $3, $4, $5)",
            token_id,
            data.user_ids[0],
            digest(secret),
            now - timedelta(hours=1),
            now + timedelta(hours=1),
        )
        first = norm(await c.consume_token(secret))
        again = await c.consume_token(secret)
        return first, again

    await compare("consume_token", consume, [n for n in SINGLE if n in contenders])
    new = NewEvent(type="user.checked", payload={"n": 1, "tags": ["a"]}, user_id=data.user_ids[1])

    async def append(c: Contender) -> Any:
        await conn.execute("DELETE FROM events WHERE event_key = $1", new.event_key)
        return without(norm(await c.append_event(new)), "id")

    await compare("append_event", append, [n for n in SINGLE if n in contenders])
    plain = (uuid4(), data.user_ids[1], "user.checked", {"n": 1, "tags": ["a"]})

    async def append_e2e(c: Contender) -> Any:
        await conn.execute("DELETE FROM events WHERE event_key = $1", plain[0])
        return without(norm(await c.append_event_plain(plain)), "id")

    await compare("append_event_e2e", append_e2e, [n for n in SINGLE if n in contenders])
    again = NewEvent(type="user.checked", payload={"n": 2}, user_id=data.user_ids[2])
    await contenders["baseline"].append_event(again)
    await compare(
        "append_event_again",
        lambda c: _norm_call(c.append_event(again)),
        [n for n in SINGLE if n in contenders],
    )
    batch = new_events(200, data.user_ids)
    keys = [e.event_key for e in batch]

    async def bulk(c: Contender, *, plain: bool = False) -> Any:
        await conn.execute("DELETE FROM events WHERE event_key = ANY($1::uuid[])", keys)
        if plain:
            count = await c.append_events_plain(
                [(e.event_key, e.user_id, e.type, e.payload) for e in batch]
            )
        else:
            count = await c.append_events(batch)
        rows = await conn.fetch(
            "SELECT event_key, user_id, type, payload, occurred_at, recorded_at FROM events"
            " WHERE event_key = ANY($1::uuid[]) ORDER BY event_key",
            keys,
        )
        return count, [norm(dict(row)) for row in rows]

    await compare("append_bulk", bulk, [n for n in BULK if n in contenders])
    await compare(
        "append_bulk_e2e",
        lambda c: bulk(c, plain=True),
        [n for n in BULK if n in contenders],
    )
    await compare(
        "list_user_events",
        lambda c: _norm_call(c.list_user_events(data.event_user_ids[0], 100)),
        [n for n in SINGLE if n in contenders],
    )
    await compare(
        "stream_page",
        lambda c: _all(lambda p: c.stream_page(p, 1000), data.positions[:2]),
        [n for n in SINGLE if n in contenders],
    )
    for contender in contenders.values():
        contender.set_clock(utc_now)
    return outcome


async def _norm_call(awaitable: Awaitable[Any]) -> Any:
    return norm(await awaitable)


async def _all(fn: Callable[[Any], Awaitable[Any]], inputs: Sequence[Any]) -> list[Any]:
    return [norm(await fn(x)) for x in inputs]
