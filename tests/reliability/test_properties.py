"""Properties of the public API under hostile input (Hypothesis), on the real database.

For any input: building the input model either works or raises pydantic's
``ValidationError`` (the documented refusal at the boundary); a repository call then
either succeeds and reads back exactly what was written, or raises a domain error
(``IdentityStoreError``) and writes nothing. Nothing else may come out: no driver
exception, no ``TypeError``/``OverflowError``.

Inputs: arbitrary Unicode (NUL, lone combining marks, the Kelvin sign, right-to-left
marks), over-long strings, JSON payloads nested and with huge or tiny numbers, instants
in every zone and at the edges, token lifetimes from negative to centuries, limits and
cursors of every shape. The counts are printed at the end of the run
(``reliability figures``).

Runs are reproducible (``derandomize``); ``HYPOTHESIS_PROFILE=explore`` searches anew.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity_store import (
    IdentityStoreError,
    NewEvent,
    NewToken,
    NewUser,
    PostgresEventRepository,
    PostgresTokenRepository,
    PostgresUnitOfWork,
    PostgresUserRepository,
    TokenKind,
    UserUpdate,
)
from tests.reliability.conftest import FIGURES

pytestmark = pytest.mark.reliability

settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("IDENTITY_STORE_PROPERTY_EXAMPLES", "200")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
settings.register_profile(
    "explore",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TRICKY = [
    "\x00",
    "\u212a",  # Kelvin sign: lower() makes it k on UTF-8 servers
    "\u0130",  # I with dot above
    "\u200f",  # right-to-left mark
    "\u0301",  # combining acute accent, alone
    "\ufeff",
    "'; DROP TABLE users; --",
    "%",
    "_",
    "\\",
    "\U0001f600",
]
hostile_text = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from([*TRICKY, *"aZ9@.-+ "]), max_size=12).map("".join),
    st.text(min_size=300, max_size=1200),
)
plain_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), min_size=1, max_size=60
)
emails = st.one_of(
    st.emails(),
    st.emails(),
    st.builds(lambda a, b: f"{a}@{b}", hostile_text, hostile_text),
    hostile_text,
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(hostile_text, inner, max_size=5)
    ),
    max_leaves=30,
)
payloads = st.dictionaries(plain_text | hostile_text, json_values, max_size=6)
event_types = st.one_of(
    st.from_regex(r"\A[a-z][a-z0-9_]{0,10}(\.[a-z][a-z0-9_]{0,10}){1,3}\Z"),
    st.from_regex(r"\A[a-z][a-z0-9_]{0,10}(\.[a-z][a-z0-9_]{0,10}){1,3}\Z"),
    hostile_text,
)
instants = st.one_of(
    st.none(),
    st.datetimes(timezones=st.timezones()),
    st.datetimes(),  # naive
    st.sampled_from(
        [
            datetime.min.replace(tzinfo=UTC),
            datetime.max.replace(tzinfo=UTC),
            datetime(1970, 1, 1, tzinfo=UTC),
            datetime(2000, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
        ]
    ),
)
kinds: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(list(TokenKind)), st.sampled_from([k.value for k in TokenKind]), hostile_text
)
ttls = st.one_of(
    st.timedeltas(),
    st.timedeltas(min_value=timedelta(seconds=-5), max_value=timedelta(days=800)),
)
limits = st.one_of(st.integers(min_value=-5, max_value=1005), st.integers(), st.none())
cursors = st.one_of(st.none(), hostile_text, st.from_regex(r"\A[A-Za-z0-9_\-=]{1,60}\Z"))


def build(model: type[pydantic.BaseModel], **fields: Any) -> Any:
    """The model, or None when it refuses the input (counted)."""
    try:
        return model(**fields)
    except pydantic.ValidationError:
        FIGURES[f"properties: {model.__name__} refused by validation"] += 1
        return None


def counted(name: str) -> None:
    FIGURES["properties: hostile inputs tried"] += 1
    FIGURES[f"properties: {name}"] += 1


async def row_counts(pool: asyncpg.Pool) -> tuple[int, int, int]:
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM tokens),"
        " (SELECT count(*) FROM events)"
    )
    assert row is not None
    return (row[0], row[1], row[2])


@pytest.fixture(scope="module")
async def a_user_id(pool: asyncpg.Pool) -> UUID:
    user = await PostgresUserRepository(pool).register(
        NewUser(email=f"prop-{uuid.uuid4().hex}@example.test", display_name="Owner")
    )
    return user.id


@given(
    email=emails,
    display_name=plain_text | hostile_text,
    password_hash=st.none() | plain_text | hostile_text,
)
async def test_register_reads_back_what_it_wrote_or_raises_a_domain_error(
    pool: asyncpg.Pool, email: Any, display_name: Any, password_hash: Any
) -> None:
    counted("register")
    new = build(NewUser, email=email, display_name=display_name, password_hash=password_hash)
    if new is None:
        return
    before = await row_counts(pool)
    try:
        async with PostgresUnitOfWork(pool) as uow:
            user = await uow.users.register(new)
    except IdentityStoreError:
        FIGURES["properties: register refused with a domain error"] += 1
        assert await row_counts(pool) == before
        return
    users = PostgresUserRepository(pool)
    assert await users.get(user.id) == user
    found = await users.get_by_email(new.email)
    assert found is not None and found.id == user.id
    assert (user.display_name, user.version) == (new.display_name, 1)
    written = new.password_hash
    if isinstance(written, pydantic.SecretStr):
        written = written.get_secret_value()
    assert await pool.fetchval("SELECT password_hash FROM users WHERE id = $1", user.id) == written
    FIGURES["properties: register written and read back"] += 1


@given(
    display_name=plain_text | hostile_text,
    email=emails,
    expected_version=st.sampled_from([1, 1, 1, 0, 2]) | st.integers(),
)
async def test_update_changes_what_it_says_or_raises_a_domain_error(
    pool: asyncpg.Pool, display_name: Any, email: Any, expected_version: int
) -> None:
    counted("update")
    users = PostgresUserRepository(pool)
    user = await users.register(
        NewUser(email=f"upd-{uuid.uuid4().hex}@example.test", display_name="Before")
    )
    changes = build(UserUpdate, display_name=display_name, email=email)
    if changes is None:
        return
    try:
        updated = await users.update(user.id, changes, expected_version=expected_version)
    except IdentityStoreError:
        FIGURES["properties: update refused with a domain error"] += 1
        assert await users.get(user.id) == user
        return
    assert await users.get(user.id) == updated
    assert (updated.display_name, updated.version) == (changes.display_name, 2)
    FIGURES["properties: update written and read back"] += 1


@given(
    event_type=event_types,
    payload=payloads,
    occurred_at=instants,
    owner=st.sampled_from(["none", "real", "unknown"]),
)
async def test_append_reads_back_what_it_wrote_or_raises_a_domain_error(
    pool: asyncpg.Pool,
    a_user_id: UUID,
    event_type: Any,
    payload: Any,
    occurred_at: Any,
    owner: str,
) -> None:
    counted("append")
    user_id = {"none": None, "real": a_user_id, "unknown": uuid.uuid4()}[owner]
    new = build(
        NewEvent, type=event_type, payload=payload, occurred_at=occurred_at, user_id=user_id
    )
    if new is None:
        return
    before = await row_counts(pool)
    events = PostgresEventRepository(pool)
    try:
        event = await events.append(new)
    except IdentityStoreError:
        FIGURES["properties: append refused with a domain error"] += 1
        assert await row_counts(pool) == before
        return
    assert await events.get(event.id) == event
    assert (event.type, event.user_id, event.event_key) == (new.type, new.user_id, new.event_key)
    assert event.payload == new.payload
    if new.occurred_at is not None:
        assert event.occurred_at == new.occurred_at
    assert await events.append(new) == event  # idempotent by key
    FIGURES["properties: append written and read back"] += 1


small_payloads = st.dictionaries(st.text(max_size=8), json_scalars, max_size=3)


@given(batch=st.lists(st.tuples(event_types, small_payloads, instants), max_size=4))
async def test_append_many_writes_all_or_nothing(
    pool: asyncpg.Pool, batch: list[tuple[Any, Any, Any]]
) -> None:
    counted("append_many")
    built = [build(NewEvent, type=t, payload=p, occurred_at=o) for t, p, o in batch]
    if any(new is None for new in built):
        return
    before = await row_counts(pool)
    try:
        written = await PostgresEventRepository(pool).append_many(built)
    except IdentityStoreError:
        FIGURES["properties: append_many refused with a domain error"] += 1
        assert await row_counts(pool) == before
        return
    assert written == len(built)
    keys = [new.event_key for new in built]
    assert await pool.fetchval("SELECT count(*) FROM events WHERE event_key = ANY($1)", keys) == (
        len(built)
    )
    FIGURES["properties: append_many batches written"] += 1


@given(
    kind=kinds,
    ttl=ttls,
    scopes=st.lists(plain_text | hostile_text, max_size=5),
    probe=hostile_text,
)
async def test_issued_tokens_verify_and_any_other_secret_does_not(
    pool: asyncpg.Pool, a_user_id: UUID, kind: Any, ttl: Any, scopes: list[str], probe: str
) -> None:
    counted("issue/verify/consume")
    tokens = PostgresTokenRepository(pool)
    try:
        assert await tokens.verify(probe) is None
        assert await tokens.verify(probe, kind=kind) is None
    except IdentityStoreError:
        FIGURES["properties: verify refused with a domain error"] += 1
    try:
        await tokens.consume(probe, kind=kind)
        pytest.fail("a made-up secret was consumed")
    except IdentityStoreError:
        pass
    new = build(NewToken, user_id=a_user_id, kind=kind, ttl=ttl, scopes=tuple(scopes))
    if new is None:
        return
    try:
        issued = await tokens.issue(new)
    except IdentityStoreError:
        FIGURES["properties: issue refused with a domain error"] += 1
        return
    secret = issued.secret.get_secret_value()
    assert await tokens.get(issued.token.id) == issued.token
    assert await tokens.verify(secret) == issued.token
    assert issued.token.scopes == new.scopes
    FIGURES["properties: issue written and verified"] += 1


@given(limit=limits, cursor=cursors, after_id=st.integers(), user_id=st.uuids())
async def test_reads_with_any_limit_or_cursor_answer_or_raise_a_domain_error(
    pool: asyncpg.Pool, limit: Any, cursor: Any, after_id: int, user_id: UUID
) -> None:
    counted("reads")
    users = PostgresUserRepository(pool)
    events = PostgresEventRepository(pool)
    calls = [
        lambda: users.list_page(limit=limit, cursor=cursor),
        lambda: events.read_stream(after=cursor, limit=limit),
        lambda: events.list_for_user(user_id, after_id=after_id, limit=limit),
        lambda: events.get(after_id),
        lambda: events.count_by_type([cursor] if isinstance(cursor, str) else None),
    ]
    for call in calls:
        try:
            await call()
        except IdentityStoreError:
            FIGURES["properties: read refused with a domain error"] += 1
