"""Every public call either works or raises a domain error, whatever it is handed.

A table of hostile values is fed to every argument of every method of the ports (one
argument at a time, the others valid), on the fakes and on PostgreSQL. Anything but a
normal return or an ``IdentityStoreError`` (an ``AttributeError``, a ``TypeError``, a
driver exception, pydantic's ``ValidationError``...) fails the test, and so does a
write that happened although the call raised.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from identity_store.domain.errors import IdentityStoreError, InvalidInput
from identity_store.domain.models import NewEvent, NewToken, NewUser, TokenKind, UserUpdate
from identity_store.domain.ports import UnitOfWork
from tests.contract.conftest import Backend

pytestmark = [pytest.mark.integration, pytest.mark.contract]


def _generator() -> Iterator[object]:
    yield "not an event"


HOSTILE: list[tuple[str, Callable[[], object]]] = [
    ("None", lambda: None),
    ("empty string", lambda: ""),
    ("long string", lambda: "x" * 100_000),
    ("NUL", lambda: "a\x00b"),
    ("lone surrogate", lambda: "\ud800"),
    ("uuid as string", lambda: str(uuid.uuid4())),
    ("float", lambda: 1.5),
    ("nan", lambda: float("nan")),
    ("negative", lambda: -1),
    ("huge int", lambda: 2**70),
    ("bool", lambda: True),
    ("bytes", lambda: b"\xff\x00"),
    ("list", lambda: []),
    ("dict", lambda: {"a": 1}),
    ("object", lambda: object()),
    ("generator", _generator),
    ("token kind name", lambda: "session"),
    ("unknown kind", lambda: "superuser"),
]

Call = Callable[[UnitOfWork, dict[str, Any]], Awaitable[object]]

# method name -> (call with keyword values, the valid values)
CALLS: dict[str, tuple[Call, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "users.register": (
        lambda u, a: u.users.register(a["new"]),
        lambda ctx: {"new": NewUser(email=f"h-{uuid.uuid4().hex}@x.io", display_name="H")},
    ),
    "users.get": (lambda u, a: u.users.get(a["user_id"]), lambda ctx: {"user_id": ctx["user"]}),
    "users.get_by_email": (
        lambda u, a: u.users.get_by_email(a["email"]),
        lambda ctx: {"email": "a@x.io"},
    ),
    "users.update": (
        lambda u, a: u.users.update(
            a["user_id"], a["changes"], expected_version=a["expected_version"]
        ),
        lambda ctx: {
            "user_id": ctx["user"],
            "changes": UserUpdate(display_name="Changed"),
            "expected_version": 1,
        },
    ),
    "users.disable": (
        lambda u, a: u.users.disable(a["user_id"]),
        lambda ctx: {"user_id": uuid.uuid4()},
    ),
    "users.delete": (
        lambda u, a: u.users.delete(a["user_id"]),
        lambda ctx: {"user_id": uuid.uuid4()},
    ),
    "users.list_page": (
        lambda u, a: u.users.list_page(limit=a["limit"], cursor=a["cursor"]),
        lambda ctx: {"limit": 1, "cursor": None},
    ),
    "tokens.issue": (
        lambda u, a: u.tokens.issue(a["new"]),
        lambda ctx: {
            "new": NewToken(user_id=ctx["user"], kind=TokenKind.SESSION, ttl=timedelta(hours=1))
        },
    ),
    "tokens.get": (
        lambda u, a: u.tokens.get(a["token_id"]),
        lambda ctx: {"token_id": ctx["token"]},
    ),
    "tokens.verify": (
        lambda u, a: u.tokens.verify(a["secret"], kind=a["kind"]),
        lambda ctx: {"secret": ctx["secret"], "kind": None},
    ),
    "tokens.touch": (
        lambda u, a: u.tokens.touch(a["token_id"]),
        lambda ctx: {"token_id": ctx["token"]},
    ),
    "tokens.revoke": (
        lambda u, a: u.tokens.revoke(a["token_id"]),
        lambda ctx: {"token_id": uuid.uuid4()},
    ),
    "tokens.revoke_all_for_user": (
        lambda u, a: u.tokens.revoke_all_for_user(a["user_id"]),
        lambda ctx: {"user_id": uuid.uuid4()},
    ),
    "tokens.list_live_for_user": (
        lambda u, a: u.tokens.list_live_for_user(a["user_id"]),
        lambda ctx: {"user_id": ctx["user"]},
    ),
    "tokens.consume": (
        lambda u, a: u.tokens.consume(a["secret"], kind=a["kind"]),
        lambda ctx: {"secret": "unknown", "kind": TokenKind.PASSWORD_RESET},
    ),
    "tokens.purge_expired": (
        lambda u, a: u.tokens.purge_expired(
            batch_size=a["batch_size"], max_batches=a["max_batches"]
        ),
        lambda ctx: {"batch_size": 1, "max_batches": 1},
    ),
    "events.append": (
        lambda u, a: u.events.append(a["new"]),
        lambda ctx: {"new": NewEvent(type="hostile.input", user_id=ctx["user"])},
    ),
    "events.append_many": (
        lambda u, a: u.events.append_many(a["events"]),
        lambda ctx: {"events": [NewEvent(type="hostile.input")]},
    ),
    "events.get": (lambda u, a: u.events.get(a["event_id"]), lambda ctx: {"event_id": 1}),
    "events.list_for_user": (
        lambda u, a: u.events.list_for_user(a["user_id"], after_id=a["after_id"], limit=a["limit"]),
        lambda ctx: {"user_id": ctx["user"], "after_id": 0, "limit": 1},
    ),
    "events.read_stream": (
        lambda u, a: u.events.read_stream(after=a["after"], limit=a["limit"]),
        lambda ctx: {"after": None, "limit": 1},
    ),
    "events.count_by_type": (
        lambda u, a: u.events.count_by_type(a["types"]),
        lambda ctx: {"types": ["hostile.input"]},
    ),
}

ARGUMENTS = [
    (method, argument)
    for method, (_, valid) in CALLS.items()
    for argument in valid({"user": uuid.UUID(int=1), "token": uuid.UUID(int=2), "secret": "s"})
]


async def _context(backend: Backend) -> dict[str, Any]:
    async with backend.uow() as uow:
        user = await uow.users.register(
            NewUser(email=f"hostile-{uuid.uuid4().hex}@x.io", display_name="Hostile")
        )
        issued = await uow.tokens.issue(
            NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(hours=1))
        )
    return {"user": user.id, "token": issued.token.id, "secret": issued.secret.get_secret_value()}


async def _fingerprint(backend: Backend, user_id: uuid.UUID) -> object:
    async with backend.uow() as uow:
        user = await uow.users.get(user_id)
        tokens = await uow.tokens.list_live_for_user(user_id)
        events = await uow.events.list_for_user(user_id, limit=1000)
    return user, tokens, events


def _argument_of(field: str) -> str:
    """``events[3].type`` -> ``events``: the argument a field name points into."""
    return field.split("[", 1)[0].split(".", 1)[0]


@pytest.mark.parametrize(("method", "argument"), ARGUMENTS)
async def test_a_hostile_argument_works_or_raises_a_domain_error(
    backend: Backend, method: str, argument: str
) -> None:
    call, valid = CALLS[method]
    context = await _context(backend)
    outcomes: dict[str, str] = {}
    for label, make in HOSTILE:
        before = await _fingerprint(backend, context["user"])
        arguments = {**valid(context), argument: make()}
        try:
            async with backend.uow() as uow:
                await call(uow, arguments)
        except IdentityStoreError as exc:
            outcomes[label] = type(exc).__name__
            if isinstance(exc, InvalidInput):
                # The refusal names the argument that was wrong, not another one.
                assert _argument_of(exc.field) == argument, (method, label, exc.field)
            # Refused: nothing of it was written.
            assert await _fingerprint(backend, context["user"]) == before, (method, label)
        except Exception as exc:
            pytest.fail(f"{method}({argument}={label}) raised {type(exc).__name__}: {exc}")
        else:
            outcomes[label] = "ok"
    assert outcomes  # every value was tried
