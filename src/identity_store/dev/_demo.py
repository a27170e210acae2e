"""A short tour of the public API: ``make demo`` (or ``python -m identity_store.dev demo``).

Registers a user, issues and verifies a session token, resets the password with a
single-use token, and lists what the event log recorded. Each step is one unit of
work, so a user and the event saying it registered commit together.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta

from identity_store.domain.errors import IdentityStoreError, TokenInvalid, UserNotFound
from identity_store.domain.models import NewEvent, NewToken, NewUser, TokenKind, UserUpdate
from identity_store.domain.ports import UnitOfWork
from identity_store.infrastructure.db import Settings, create_pool
from identity_store.infrastructure.persistence.unit_of_work import PostgresUnitOfWork
from identity_store.infrastructure.settings import load_settings

__all__ = ["main", "run", "scenario"]

Say = Callable[[str], None]


def _hash_password(password: str) -> str:
    # The store keeps whatever encoded hash the application computes; scrypt from the
    # standard library stands in for the application's choice here.
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    encode = base64.b64encode
    return f"$scrypt$ln=14,r=8,p=1${encode(salt).decode()}${encode(digest).decode()}"


_STREAM_PAGES = 50


async def scenario(new_uow: Callable[[], UnitOfWork], say: Say = print) -> None:
    """Walk through the identity life cycle on whatever ``new_uow`` returns.

    Raises:
        IdentityStoreError: a step failed (the database is unreachable, ...).
    """
    email = f"ada.{uuid.uuid4().hex[:8]}@example.com"

    async with new_uow() as uow:
        user = await uow.users.register(NewUser(email=email, display_name="Ada Lovelace"))
        await uow.events.append(
            NewEvent(type="user.registered", user_id=user.id, payload={"source": "demo"})
        )
    say(f"registered {user.email} (id {user.id}, version {user.version})")

    async with new_uow() as uow:
        session = await uow.tokens.issue(
            NewToken(
                user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(hours=8), scopes=("profile",)
            )
        )
        await uow.events.append(
            NewEvent(type="token.issued", user_id=user.id, payload={"kind": "session"})
        )
    secret = session.secret.get_secret_value()
    say(f"issued a session token; its {len(secret)}-character secret is stored only as SHA-256")

    async with new_uow() as uow:
        verified = await uow.tokens.verify(secret, kind=TokenKind.SESSION)
        if verified is not None:
            await uow.tokens.touch(verified.id)
        wrong = await uow.tokens.verify(secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    say(
        f"verified the secret: {'valid' if verified else 'INVALID'}; "
        f"a secret with one character changed: {'valid' if wrong else 'invalid'}"
    )

    async with new_uow() as uow:
        reset = await uow.tokens.issue(
            NewToken(user_id=user.id, kind=TokenKind.PASSWORD_RESET, ttl=timedelta(minutes=15))
        )
    reset_secret = reset.secret.get_secret_value()

    async with new_uow() as uow:
        await uow.tokens.consume(reset_secret, kind=TokenKind.PASSWORD_RESET)
        current = await uow.users.get(user.id)
        if current is None:
            raise UserNotFound(user.id)
        updated = await uow.users.update(
            user.id,
            UserUpdate(password_hash=_hash_password(secrets.token_urlsafe(12))),
            expected_version=current.version,
        )
        revoked = await uow.tokens.revoke_all_for_user(user.id)
        await uow.events.append(
            NewEvent(
                type="user.password_reset", user_id=user.id, payload={"sessions_revoked": revoked}
            )
        )
    say(
        f"reset the password with a single-use token: now version {updated.version}, "
        f"{revoked} session(s) signed out"
    )

    try:
        async with new_uow() as uow:
            await uow.tokens.consume(reset_secret, kind=TokenKind.PASSWORD_RESET)
        say("the reset token worked twice: THIS IS A BUG")
    except TokenInvalid:
        say("using the reset token a second time is refused")

    async with new_uow() as uow:
        events = await uow.events.list_for_user(user.id)
        # A stream consumer: follow next_cursor from the start until a page comes back
        # empty (here at most _STREAM_PAGES pages); a real one stores the cursor with
        # what it did and polls again later.
        cursor, delivered, mine, pages = None, 0, 0, 0
        while pages < _STREAM_PAGES:
            page = await uow.events.read_stream(after=cursor, limit=100)
            pages += 1
            cursor = page.next_cursor
            delivered += len(page.events)
            mine += sum(1 for event in page.events if event.user_id == user.id)
            if not page.events:
                break
    say(f"the event log holds {len(events)} events for this user:")
    for event in events:
        say(f"  #{event.id} {event.occurred_at:%H:%M:%S} {event.type} {event.payload}")
    say(
        f"a stream consumer read {delivered} events ({mine} of this user) in {pages} pages; "
        "it polls on from the cursor of the last page"
    )


async def run(settings: Settings | str) -> None:
    """Run :func:`scenario` against the database of ``settings`` (or a URL), printing each step.

    Raises:
        IdentityStoreError: the settings are invalid, the database is unreachable or a
            step failed.
    """
    if isinstance(settings, str):
        settings = Settings(database_url=settings)
    pool = await create_pool(settings)
    try:
        await scenario(lambda: PostgresUnitOfWork(pool))
    finally:
        await pool.close()


def main(argv: Sequence[str] = ()) -> int:
    """Entry point: settings as the library reads them (``DATABASE_URL`` or ``DB_URL``)."""
    if argv:
        print("demo: takes no arguments; it reads DATABASE_URL", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
    except IdentityStoreError as exc:
        # The loader's message is precise ("the port of the host is out of range ...")
        # and never holds the password: pass it on as it is.
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(settings))
    except IdentityStoreError as exc:
        print(f"demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
