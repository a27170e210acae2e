"""What ``make bench`` times: each workload, its contenders and how it builds its inputs."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from bench._database import PAYLOAD, Data, Scale, insert_tokens, insert_users, new_events
from bench.contenders import (
    EVENT_COLUMNS,
    Contender,
    PlainEvent,
    event_records,
)
from identity_store import (
    NewUser,
    UserUpdate,
)

SINGLE = ("baseline", "generated", "repository", "sqla_orm", "sqla_core")
BULK = ("baseline", "executemany", "generated", "repository", "sqla_orm")
LABELS = {
    "baseline": "hand-written asyncpg + pydantic",
    "generated": "generated functions",
    "repository": "repositories",
    "sqla_orm": "SQLAlchemy ORM",
    "sqla_core": "SQLAlchemy Core",
    "executemany": "asyncpg executemany",
}
BULK_LABELS = {**LABELS, "baseline": "raw COPY (copy_records_to_table)"}


# ------------------------------------------------------------------------- workloads

Inputs = list[list[Any]]  # one list of inputs per worker


@dataclass
class Workload:
    name: str
    title: str
    kind: str  # "read", "write" (single row), "page", "bulk"
    contenders: tuple[str, ...]
    call: Callable[[Contender, Any], Awaitable[Any]]
    inputs: Callable[[Data, asyncpg.Connection, str, int, int], Awaitable[Inputs]]
    ops: Callable[[Scale], int]
    # Run on connections opened after `ALTER DATABASE ... SET synchronous_commit = off`:
    # a commit then does not wait for the disk, so what is left is the layers' work.
    sync_off: bool = False


def split(items: list[Any], workers: int) -> Inputs:
    return [items[w::workers] for w in range(workers)]


def single_ops(scale: Scale) -> int:
    return scale.ops


def read_ops(scale: Scale) -> int:
    # A read is ~150 µs: 200 of them (30 ms) left the per-round ratios spread from
    # 0.5 to 1.2, too coarse for goals of 0.97.
    return scale.read_ops


async def pick_ids(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    return split([data.rng.choice(data.user_ids) for _ in range(n)], workers)


async def pick_emails(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    # Another case than stored: the lookup ignores case.
    return split([data.rng.choice(data.emails).upper() for _ in range(n)], workers)


async def make_new_users(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    tag = secrets.token_hex(4)
    return split(
        [
            NewUser(email=f"{who}.{tag}.{i}@bench.example", display_name="New User")
            for i in range(n)
        ],
        workers,
    )


async def make_updates(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    # Each worker updates a user of its own, so versions never conflict.
    owned = await insert_users(
        conn, [f"upd.{who}.{secrets.token_hex(4)}.{w}@bench.example" for w in range(workers)]
    )
    for user_id in owned:
        data.versions[user_id] = 1
    return [
        [(owned[w], UserUpdate(display_name=f"Name {w}.{i}")) for i in range(n // workers)]
        for w in range(workers)
    ]


async def pick_secrets(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    return split([data.rng.choice(data.token_secrets) for _ in range(n)], workers)


async def make_consumable(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    fresh = [f"consume-{secrets.token_hex(12)}" for _ in range(n)]
    await insert_tokens(
        conn, [data.rng.choice(data.user_ids) for _ in fresh], fresh, "email_verification"
    )
    return split(fresh, workers)


async def make_events(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    return split(new_events(n, data.user_ids), workers)


async def make_recorded_events(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    events = new_events(n, data.user_ids)
    await conn.copy_records_to_table(
        "events", records=event_records(events, datetime.now(UTC)), columns=EVENT_COLUMNS
    )
    return split(events, workers)


async def make_bulk(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    return [[new_events(n, data.event_user_ids)]]


async def pick_event_users(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    return split([data.rng.choice(data.event_user_ids) for _ in range(n)], workers)


async def pick_positions(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    return split([data.rng.choice(data.positions) for _ in range(n)], workers)


async def plain_new_users(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    tag = secrets.token_hex(4)
    return split([(f"{who}.{tag}.{i}@bench.example", "New User") for i in range(n)], workers)


async def plain_updates(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    owned = await insert_users(
        conn, [f"upd.{who}.{secrets.token_hex(4)}.{w}@bench.example" for w in range(workers)]
    )
    for user_id in owned:
        data.versions[user_id] = 1
    return [[(owned[w], f"Name {w}.{i}") for i in range(n // workers)] for w in range(workers)]


def plain_events(n: int, user_ids: Sequence[UUID]) -> list[PlainEvent]:
    return [(uuid4(), user_ids[i % len(user_ids)], "user.signed_in", PAYLOAD) for i in range(n)]


async def make_plain_events(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    return split(plain_events(n, data.user_ids), workers)


async def make_plain_bulk(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    return [[plain_events(n, data.event_user_ids)]]


async def call_update_plain(c: Contender, inp: tuple[UUID, str]) -> Any:
    user_id, name = inp
    versions: dict[UUID, int] = c.versions  # type: ignore[attr-defined]
    user = await c.update_user_plain(user_id, name, versions[user_id])
    versions[user_id] = user.version
    return user


async def call_update(c: Contender, inp: tuple[UUID, UserUpdate]) -> Any:
    user_id, changes = inp
    # versions lives on the contender's Data, set by make_updates.
    versions: dict[UUID, int] = c.versions  # type: ignore[attr-defined]
    user = await c.update_user(user_id, changes, versions[user_id])
    versions[user_id] = user.version
    return user


WORKLOADS = [
    Workload(
        "get_user",
        "get user by id",
        "read",
        SINGLE,
        lambda c, x: c.get_user(x),
        pick_ids,
        read_ops,
    ),
    Workload(
        "get_user_by_email",
        "get user by e-mail",
        "read",
        SINGLE,
        lambda c, x: c.get_user_by_email(x),
        pick_emails,
        read_ops,
    ),
    Workload(
        "register",
        "register user",
        "write",
        SINGLE,
        lambda c, x: c.register(x),
        make_new_users,
        single_ops,
    ),
    Workload(
        "register_e2e",
        "register user, end to end (built from plain values)",
        "write",
        SINGLE,
        lambda c, x: c.register_plain(*x),
        plain_new_users,
        single_ops,
    ),
    Workload(
        "update_user",
        "update user (expected version)",
        "write",
        SINGLE,
        call_update,
        make_updates,
        single_ops,
    ),
    Workload(
        "update_user_e2e",
        "update user, end to end",
        "write",
        SINGLE,
        call_update_plain,
        plain_updates,
        single_ops,
    ),
    Workload(
        "verify_token",
        "verify token",
        "read",
        SINGLE,
        lambda c, x: c.verify_token(x),
        pick_secrets,
        read_ops,
    ),
    Workload(
        "consume_token",
        "consume token",
        "write",
        SINGLE,
        lambda c, x: c.consume_token(x),
        make_consumable,
        single_ops,
    ),
    Workload(
        "append_event",
        "append one event",
        "write",
        SINGLE,
        lambda c, x: c.append_event(x),
        make_events,
        single_ops,
    ),
    Workload(
        "append_event_e2e",
        "append one event, end to end",
        "write",
        SINGLE,
        lambda c, x: c.append_event_plain(x),
        make_plain_events,
        single_ops,
    ),
    Workload(
        "append_event_again",
        "append one event, key already recorded (idempotent path)",
        "write",
        SINGLE,
        lambda c, x: c.append_event(x),
        make_recorded_events,
        single_ops,
    ),
    Workload(
        "list_user_events",
        "list a user's events (100)",
        "page",
        SINGLE,
        lambda c, x: c.list_user_events(x, 100),
        pick_event_users,
        lambda s: s.page_ops * 5,
    ),
    Workload(
        "stream_page",
        "read the event stream, one page of 1,000",
        "page",
        SINGLE,
        lambda c, x: c.stream_page(x, 1000),
        pick_positions,
        lambda s: s.page_ops,
    ),
    Workload(
        "append_bulk",
        "append events in bulk",
        "bulk",
        BULK,
        lambda c, x: c.append_events(x),
        make_bulk,
        lambda s: s.bulk_rows,
    ),
    Workload(
        "append_bulk_e2e",
        "append events in bulk, end to end",
        "bulk",
        BULK,
        lambda c, x: c.append_events_plain(x),
        make_plain_bulk,
        lambda s: s.bulk_rows,
    ),
    Workload(
        "register_sync_off",
        "register user, synchronous_commit = off",
        "write",
        SINGLE,
        lambda c, x: c.register(x),
        make_new_users,
        single_ops,
        sync_off=True,
    ),
    Workload(
        "register_e2e_sync_off",
        "register user, end to end, synchronous_commit = off",
        "write",
        SINGLE,
        lambda c, x: c.register_plain(*x),
        plain_new_users,
        single_ops,
        sync_off=True,
    ),
]
