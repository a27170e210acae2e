"""In-memory fakes of the ports, for unit tests of code above them.

They keep the promises the ports document (case-insensitive e-mail, versions,
single-use tokens, idempotent appends) without any database. ``FakeUnitOfWork``
records whether it committed and restores the store when the block fails.
"""

from __future__ import annotations

import copy
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self

from pydantic import SecretStr

from identity_store.domain.clock import Clock, utc_now
from identity_store.domain.errors import (
    ConcurrencyConflict,
    EmailAlreadyRegistered,
    EventKeyConflict,
    InvalidInput,
    TokenInvalid,
    UnitOfWorkError,
    UserNotFound,
)
from identity_store.domain.models import (
    SINGLE_USE_TOKEN_KINDS,
    Event,
    EventPage,
    IssuedToken,
    NewEvent,
    NewToken,
    NewUser,
    Token,
    TokenKind,
    User,
    UserPage,
    UserStatus,
    UserUpdate,
)
from identity_store.domain.pagination import (
    STREAM_START,
    decode_stream_cursor,
    decode_user_cursor,
    encode_stream_cursor,
    encode_user_cursor,
)
from identity_store.domain.token_secrets import hash_secret, new_secret
from identity_store.domain.validation import email_key


@dataclass
class Store:
    users: dict[uuid.UUID, User] = field(default_factory=dict)
    tokens: dict[uuid.UUID, tuple[bytes, Token]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)


class FakeUserRepository:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def _email_taken(self, email: str, but: uuid.UUID | None = None) -> bool:
        return any(
            email_key(u.email) == email_key(email) and u.id != but
            for u in self._store.users.values()
        )

    async def register(self, new: NewUser) -> User:
        if self._email_taken(new.email):
            raise EmailAlreadyRegistered(new.email)
        now = self._clock()
        user = User(
            id=uuid.uuid4(),
            email=new.email,
            display_name=new.display_name,
            password_hash=new.password_hash,
            status=UserStatus.ACTIVE,
            version=1,
            created_at=now,
            updated_at=now,
        )
        self._store.users[user.id] = user
        return user

    async def get(self, user_id: uuid.UUID) -> User | None:
        return self._store.users.get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        key = email_key(email)
        found = [u for u in self._store.users.values() if email_key(u.email) == key]
        return found[0] if found else None

    async def update(
        self, user_id: uuid.UUID, changes: UserUpdate, *, expected_version: int
    ) -> User:
        user = self._store.users.get(user_id)
        if user is None:
            raise UserNotFound(user_id)
        if user.version != expected_version:
            raise ConcurrencyConflict(user_id, expected=expected_version, actual=user.version)
        if changes.email is not None and self._email_taken(changes.email, but=user_id):
            raise EmailAlreadyRegistered(changes.email)
        values = {k: v for k, v in changes.model_dump().items() if v is not None}
        updated = user.model_copy(
            update={**values, "version": user.version + 1, "updated_at": self._clock()}
        )
        self._store.users[user_id] = updated
        return updated

    async def disable(self, user_id: uuid.UUID) -> User:
        user = self._store.users.get(user_id)
        if user is None:
            raise UserNotFound(user_id)
        if user.status is UserStatus.ACTIVE:
            return await self.update(
                user_id, UserUpdate(status=UserStatus.DISABLED), expected_version=user.version
            )
        return user

    async def delete(self, user_id: uuid.UUID) -> bool:
        if self._store.users.pop(user_id, None) is None:
            return False
        for token_id, (_, token) in list(self._store.tokens.items()):
            if token.user_id == user_id:
                del self._store.tokens[token_id]
        self._store.events = [
            e.model_copy(update={"user_id": None}) if e.user_id == user_id else e
            for e in self._store.events
        ]
        return True

    async def list_page(self, *, limit: int = 50, cursor: str | None = None) -> UserPage:
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit", "must be an integer from 1 to 1000")
        ordered = sorted(self._store.users.values(), key=lambda u: (u.created_at, u.id))
        if cursor is not None:
            after = decode_user_cursor(cursor)
            ordered = [u for u in ordered if (u.created_at, u.id) > after]
        items = tuple(ordered[:limit])
        more = len(ordered) > limit
        return UserPage(
            items=items,
            next_cursor=encode_user_cursor(items[-1].created_at, items[-1].id) if more else None,
        )


class FakeTokenRepository:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def _live_by_secret(self, secret: str, now: datetime) -> tuple[uuid.UUID, Token] | None:
        digest = hash_secret(secret)
        for token_id, (stored, token) in self._store.tokens.items():
            if hmac.compare_digest(stored, digest) and token.is_live(now):
                return token_id, token
        return None

    async def issue(self, new: NewToken) -> IssuedToken:
        if new.user_id not in self._store.users:
            raise UserNotFound(new.user_id)
        secret, now = new_secret(), self._clock()
        token = Token(
            id=uuid.uuid4(),
            user_id=new.user_id,
            kind=new.kind,
            scopes=new.scopes,
            created_at=now,
            expires_at=now + new.ttl,
            last_used_at=None,
            revoked_at=None,
        )
        self._store.tokens[token.id] = (hash_secret(secret), token)
        return IssuedToken(token=token, secret=SecretStr(secret))

    async def get(self, token_id: uuid.UUID) -> Token | None:
        found = self._store.tokens.get(token_id)
        return None if found is None else found[1]

    async def verify(self, secret: str, *, kind: TokenKind | None = None) -> Token | None:
        found = self._live_by_secret(secret, self._clock())
        if found is None or (kind is not None and found[1].kind is not kind):
            return None
        return found[1]

    def _change(self, token_id: uuid.UUID, **values: object) -> Token:
        digest, token = self._store.tokens[token_id]
        changed = token.model_copy(update=values)
        self._store.tokens[token_id] = (digest, changed)
        return changed

    async def touch(self, token_id: uuid.UUID) -> bool:
        if token_id not in self._store.tokens:
            return False
        self._change(token_id, last_used_at=self._clock())
        return True

    async def revoke(self, token_id: uuid.UUID) -> bool:
        token = await self.get(token_id)
        if token is None or token.revoked_at is not None:
            return False
        self._change(token_id, revoked_at=self._clock())
        return True

    async def revoke_all_for_user(self, user_id: uuid.UUID) -> int:
        live = await self.list_live_for_user(user_id)
        for token in live:
            self._change(token.id, revoked_at=self._clock())
        return len(live)

    async def list_live_for_user(self, user_id: uuid.UUID) -> list[Token]:
        now = self._clock()
        return [
            t for _, t in self._store.tokens.values() if t.user_id == user_id and t.is_live(now)
        ]

    async def consume(self, secret: str, *, kind: TokenKind) -> Token:
        if kind not in SINGLE_USE_TOKEN_KINDS:
            raise InvalidInput("kind", "only e-mail verification and password reset are consumed")
        now = self._clock()
        found = self._live_by_secret(secret, now)
        if found is None or found[1].kind is not kind:
            raise TokenInvalid()
        return self._change(found[0], revoked_at=now, last_used_at=now)

    async def purge_expired(self, *, batch_size: int = 1000, max_batches: int = 100) -> int:
        now = self._clock()
        expired = [i for i, (_, t) in self._store.tokens.items() if t.expires_at <= now]
        doomed = expired[: batch_size * max_batches]
        for token_id in doomed:
            del self._store.tokens[token_id]
        return len(doomed)


class FakeEventRepository:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    async def append(self, new: NewEvent) -> Event:
        for event in self._store.events:
            if event.event_key == new.event_key:
                if (event.type, event.payload) != (new.type, new.payload):
                    raise EventKeyConflict(new.event_key)
                return event
        if new.user_id is not None and new.user_id not in self._store.users:
            raise UserNotFound(new.user_id)
        now = self._clock()
        event = Event(
            id=len(self._store.events) + 1,
            event_key=new.event_key,
            user_id=new.user_id,
            type=new.type,
            payload=dict(new.payload),
            occurred_at=new.occurred_at or now,
            recorded_at=now,
        )
        self._store.events.append(event)
        return event

    async def append_many(self, events: Sequence[NewEvent]) -> int:
        for new in events:
            await self.append(new)
        return len(events)

    async def get(self, event_id: int) -> Event | None:
        return next((e for e in self._store.events if e.id == event_id), None)

    async def list_for_user(
        self, user_id: uuid.UUID, *, after_id: int = 0, limit: int = 100
    ) -> list[Event]:
        mine = [e for e in self._store.events if e.user_id == user_id and e.id > after_id]
        return mine[:limit]

    async def read_stream(self, *, after: str | None = None, limit: int = 100) -> EventPage:
        # One writer at a time here: id order is commit order, and the position's
        # transaction part stays 0.
        _, after_id = STREAM_START if after is None else decode_stream_cursor(after)
        page = tuple(e for e in self._store.events if e.id > after_id)[:limit]
        last = page[-1].id if page else after_id
        return EventPage(events=page, next_cursor=encode_stream_cursor(0, last))

    async def count_by_type(self, types: Sequence[str] | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        for event in self._store.events:
            if types is None or event.type in types:
                counts[event.type] = counts.get(event.type, 0) + 1
        return counts


class FakeUnitOfWork:
    """A unit of work over a :class:`Store`: keeps the changes of a block that ends
    normally (``committed`` becomes True) and restores the store when it raises."""

    def __init__(self, store: Store | None = None, clock: Clock = utc_now) -> None:
        self.store = store or Store()
        self.clock = clock
        self.committed = False
        self.rolled_back = False
        self._snapshot: Store | None = None

    def _require_active(self) -> None:
        if self._snapshot is None:
            raise UnitOfWorkError("use the repositories of a unit of work inside `async with`")

    @property
    def users(self) -> FakeUserRepository:
        self._require_active()
        return FakeUserRepository(self.store, self.clock)

    @property
    def tokens(self) -> FakeTokenRepository:
        self._require_active()
        return FakeTokenRepository(self.store, self.clock)

    @property
    def events(self) -> FakeEventRepository:
        self._require_active()
        return FakeEventRepository(self.store, self.clock)

    async def __aenter__(self) -> Self:
        if self._snapshot is not None:
            raise UnitOfWorkError("this unit of work is already active")
        self._snapshot = copy.deepcopy(self.store)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        snapshot, self._snapshot = self._snapshot, None
        if exc_type is None:
            self.committed = True
        else:
            assert snapshot is not None
            self.store.users, self.store.tokens, self.store.events = (
                snapshot.users,
                snapshot.tokens,
                snapshot.events,
            )
            self.rolled_back = True
