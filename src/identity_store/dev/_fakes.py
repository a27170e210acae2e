"""In-memory test doubles of the ports, for the tests of applications built on them.

::

    from identity_store.dev import FakeUnitOfWork, Store

    store = Store()
    async with FakeUnitOfWork(store) as uow:
        user = await uow.users.register(NewUser(email="ada@example.com", display_name="Ada"))
    assert store.users[user.id].email == "ada@example.com"

They implement :mod:`identity_store.domain.ports` and keep the promises the PostgreSQL
adapters keep: the same argument checks (:mod:`identity_store.domain.arguments`), the
same domain errors in the same cases, case-insensitive e-mail, versions, single-use
tokens, idempotent appends, a stream cursor, all-or-nothing units of work. The
contract suite of this project (``tests/contract``) runs one set of behavioural tests
against both, so the fakes stay honest. What they do not model: concurrency (one
writer at a time; the stream's order is the append order), isolation levels, timeouts
and lost connections, and database-only limits (text that PostgreSQL cannot store).

Pass a ``clock`` to move time in tests instead of sleeping. Not imported by
``identity_store`` itself.
"""

from __future__ import annotations

import copy
import hmac
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from pydantic import SecretStr

from identity_store.domain.arguments import (
    MAX_BATCH,
    MAX_VERSION,
    check_event_id,
    check_event_types,
    check_instance,
    check_limit,
    check_new_events,
    check_single_use_kind,
    check_token_kind,
    check_uuid,
    read_clock,
)
from identity_store.domain.clock import Clock, utc_now
from identity_store.domain.errors import (
    ConcurrencyConflict,
    EmailAlreadyRegistered,
    EventKeyConflict,
    InvalidInput,
    SubscriptionExists,
    SubscriptionNotFound,
    TokenInvalid,
    UnitOfWorkError,
    UserNotFound,
)
from identity_store.domain.models import (
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
from identity_store.domain.ports import (
    EventRepository,
    SubscriptionRepository,
    TokenRepository,
    UnitOfWork,
    UserRepository,
)
from identity_store.domain.subscriptions import (
    MAX_ATTEMPTS,
    ParkedEvent,
    StreamLag,
    Subscription,
    SubscriptionLag,
    check_on_failure,
    check_partition,
    check_subscription_name,
    split_type_patterns,
)
from identity_store.domain.token_secrets import hash_secret, new_secret
from identity_store.domain.validation import TIMESTAMP_MAX, email_key

__all__ = [
    "FakeEventRepository",
    "FakeSubscriptionRepository",
    "FakeTokenRepository",
    "FakeUnitOfWork",
    "FakeUserRepository",
    "Store",
]


@dataclass
class Store:
    """What the fakes keep: users by id, tokens by id (with the SHA-256 of their
    secret), and the event log in append order. Share one between units of work to
    see their committed changes; inspect it in assertions."""

    users: dict[uuid.UUID, User] = field(default_factory=dict)
    tokens: dict[uuid.UUID, tuple[bytes, Token]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    parked: dict[str, list[ParkedEvent]] = field(default_factory=dict)


class _Transaction:
    """Whether a statement of a unit of work failed (see :class:`FakeUnitOfWork`)."""

    __slots__ = ("failed",)

    def __init__(self) -> None:
        self.failed = False


class _Fake:
    __slots__ = ("_clock", "_store", "_transaction")

    def __init__(
        self, store: Store, clock: Clock = utc_now, *, transaction: _Transaction | None = None
    ) -> None:
        self._store = store
        self._clock = clock
        self._transaction = transaction

    def _now(self) -> datetime:
        return read_clock(self._clock)

    def _open(self) -> None:
        if self._transaction is not None and self._transaction.failed:
            raise UnitOfWorkError.aborted()

    def _refused(self, error: Exception) -> Exception:
        """Return ``error``, which PostgreSQL raises by refusing a statement: inside a
        unit of work that aborts the transaction."""
        if self._transaction is not None:
            self._transaction.failed = True
        return error


class FakeUserRepository(_Fake):
    """The :class:`~identity_store.domain.ports.UserRepository` in memory."""

    __slots__ = ()

    def _owner_of(self, email: str) -> User | None:
        key = email_key(email)
        return next((u for u in self._store.users.values() if email_key(u.email) == key), None)

    async def register(self, new: NewUser) -> User:
        """Store a new active user at version 1 and return it."""
        self._open()
        check_instance(new, NewUser, "new")
        now = self._now()
        if self._owner_of(new.email) is not None:
            raise self._refused(EmailAlreadyRegistered(new.email))
        user = User(
            **dict(new),
            id=uuid.uuid4(),
            status=UserStatus.ACTIVE,
            version=1,
            created_at=now,
            updated_at=now,
        )
        self._store.users[user.id] = user
        return user

    async def get(self, user_id: uuid.UUID) -> User | None:
        """Return the user with this id, or None."""
        self._open()
        return self._store.users.get(check_uuid(user_id, "user_id"))

    async def get_by_email(self, email: str) -> User | None:
        """Return the user with this address compared regardless of case, or None."""
        self._open()
        return self._owner_of(email) if isinstance(email, str) else None

    async def update(
        self, user_id: uuid.UUID, changes: UserUpdate, *, expected_version: int
    ) -> User:
        """Apply ``changes`` if the user is still at ``expected_version``."""
        self._open()
        check_uuid(user_id, "user_id")
        check_instance(changes, UserUpdate, "changes")
        check_limit(expected_version, field="expected_version", maximum=MAX_VERSION)
        now = self._now()
        user = self._store.users.get(user_id)
        if user is None:
            raise UserNotFound(user_id)
        if user.version != expected_version:
            raise ConcurrencyConflict(user_id, expected=expected_version, actual=user.version)
        if changes.email is not None:
            owner = self._owner_of(changes.email)
            if owner is not None and owner.id != user_id:
                raise self._refused(EmailAlreadyRegistered(changes.email))
        values: dict[str, Any] = {name: value for name, value in changes if value is not None}
        return self._change(user, values, now)

    def _change(self, user: User, values: dict[str, Any], now: datetime) -> User:
        # As in the adapter: updated_at never goes back, whatever this host's clock says.
        changed = user.model_copy(
            update={
                **values,
                "version": user.version + 1,
                "updated_at": max(user.updated_at, now),
            }
        )
        self._store.users[user.id] = changed
        return changed

    async def disable(self, user_id: uuid.UUID) -> User:
        """Disable the user (the version goes up); a disabled user comes back unchanged."""
        self._open()
        check_uuid(user_id, "user_id")
        now = self._now()
        user = self._store.users.get(user_id)
        if user is None:
            raise UserNotFound(user_id)
        if user.status is UserStatus.DISABLED:
            return user
        return self._change(user, {"status": UserStatus.DISABLED}, now)

    async def delete(self, user_id: uuid.UUID) -> bool:
        """Delete the user and its tokens; its events stay with no user."""
        self._open()
        check_uuid(user_id, "user_id")
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
        """Return up to ``limit`` users in ``(created_at, id)`` order, after ``cursor``."""
        self._open()
        check_limit(limit)
        after = None if cursor is None else decode_user_cursor(cursor)
        ordered = sorted(self._store.users.values(), key=lambda u: (u.created_at, u.id))
        if after is not None:
            ordered = [u for u in ordered if (u.created_at, u.id) > after]
        items = tuple(ordered[:limit])
        more = len(ordered) > limit
        return UserPage(
            items=items,
            next_cursor=encode_user_cursor(items[-1].created_at, items[-1].id) if more else None,
        )


class FakeTokenRepository(_Fake):
    """The :class:`~identity_store.domain.ports.TokenRepository` in memory."""

    __slots__ = ()

    def _live_by_secret(self, secret: object, now: datetime) -> Token | None:
        digest = hash_secret(secret if isinstance(secret, str) else "")
        for stored, token in self._store.tokens.values():
            if hmac.compare_digest(stored, digest) and token.is_live(now):
                return token
        return None

    def _change(self, token: Token, **values: object) -> Token:
        digest, _ = self._store.tokens[token.id]
        changed = token.model_copy(update=values)
        self._store.tokens[token.id] = (digest, changed)
        return changed

    async def issue(self, new: NewToken) -> IssuedToken:
        """Create a token and return it with its secret."""
        self._open()
        check_instance(new, NewToken, "new")
        now = self._now()
        if now > TIMESTAMP_MAX - new.ttl:
            raise InvalidInput("ttl", "the token would expire after 9999-12-30T23:59:59.999999Z")
        if new.user_id not in self._store.users:
            raise self._refused(UserNotFound(new.user_id))
        secret = new_secret()
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
        """Return the token with this id, live or not, or None."""
        self._open()
        found = self._store.tokens.get(check_uuid(token_id, "token_id"))
        return None if found is None else found[1]

    async def verify(self, secret: str, *, kind: TokenKind | None = None) -> Token | None:
        """Return the live token of this secret (of ``kind``, if given), or None."""
        self._open()
        wanted = None if kind is None else check_token_kind(kind)
        token = self._live_by_secret(secret, self._now())
        if token is None or (wanted is not None and token.kind is not wanted):
            return None
        return token

    async def touch(self, token_id: uuid.UUID) -> bool:
        """Set ``last_used_at`` to now (never backwards); return whether it exists."""
        self._open()
        token = await self.get(token_id)
        now = self._now()
        if token is None:
            return False
        last = token.last_used_at
        self._change(token, last_used_at=now if last is None else max(last, now))
        return True

    async def revoke(self, token_id: uuid.UUID) -> bool:
        """Revoke the token; return whether it was not revoked until now."""
        self._open()
        token = await self.get(token_id)
        now = self._now()
        if token is None or token.revoked_at is not None:
            return False
        self._change(token, revoked_at=now)
        return True

    async def revoke_all_for_user(self, user_id: uuid.UUID) -> int:
        """Revoke every live token of the user; return how many."""
        self._open()
        live = await self.list_live_for_user(user_id)
        now = self._now()
        for token in live:
            self._change(token, revoked_at=now)
        return len(live)

    async def list_live_for_user(self, user_id: uuid.UUID) -> list[Token]:
        """Return the user's live tokens, oldest first."""
        self._open()
        check_uuid(user_id, "user_id")
        now = self._now()
        live = [
            t for _, t in self._store.tokens.values() if t.user_id == user_id and t.is_live(now)
        ]
        return sorted(live, key=lambda t: (t.created_at, t.id))

    async def consume(self, secret: str, *, kind: TokenKind) -> Token:
        """Use up a single-use token of ``kind``, or raise :class:`TokenInvalid`."""
        self._open()
        wanted = check_single_use_kind(kind)
        now = self._now()
        token = self._live_by_secret(secret, now)
        if token is None or token.kind is not wanted:
            raise TokenInvalid()
        return self._change(token, revoked_at=now, last_used_at=now)

    async def purge_expired(self, *, batch_size: int = 1000, max_batches: int = 100) -> int:
        """Delete up to ``batch_size * max_batches`` expired tokens; return how many."""
        self._open()
        check_limit(batch_size, field="batch_size", maximum=MAX_BATCH)
        check_limit(max_batches, field="max_batches", maximum=MAX_BATCH)
        now = self._now()
        expired = sorted(
            (t for _, t in self._store.tokens.values() if t.expires_at <= now),
            key=lambda t: t.expires_at,
        )
        doomed = expired[: batch_size * max_batches]
        for token in doomed:
            del self._store.tokens[token.id]
        return len(doomed)


def _as_stored(payload: object) -> dict[str, Any]:
    # What jsonb gives back: JSON types only (tuples become lists).
    stored: dict[str, Any] = json.loads(json.dumps(payload))
    return stored


class FakeEventRepository(_Fake):
    """The :class:`~identity_store.domain.ports.EventRepository` in memory. One writer
    at a time: the stream's order is the order of the appends."""

    __slots__ = ()

    def _recorded(self, event_key: uuid.UUID) -> Event | None:
        return next((e for e in self._store.events if e.event_key == event_key), None)

    def _record(self, new: NewEvent, now: datetime) -> Event:
        event = Event(
            id=(self._store.events[-1].id + 1) if self._store.events else 1,
            event_key=new.event_key,
            user_id=new.user_id,
            type=new.type,
            payload=_as_stored(new.payload),
            occurred_at=new.occurred_at or now,
            recorded_at=now,
        )
        self._store.events.append(event)
        return event

    async def append(self, new: NewEvent) -> Event:
        """Record the event; an ``event_key`` already recorded returns that event."""
        self._open()
        check_instance(new, NewEvent, "new")
        now = self._now()
        existing = self._recorded(new.event_key)
        if existing is not None:
            same_user = existing.user_id is None or existing.user_id == new.user_id
            if not (
                same_user
                and existing.type == new.type
                and existing.payload == _as_stored(new.payload)
            ):
                raise EventKeyConflict(new.event_key)
            return existing
        if new.user_id is not None and new.user_id not in self._store.users:
            raise self._refused(UserNotFound(new.user_id))
        return self._record(new, now)

    async def append_many(self, events: Iterable[NewEvent]) -> int:
        """Record all events (all or nothing); a recorded key fails the whole batch."""
        self._open()
        batch = check_new_events(events)
        if not batch:
            return 0
        now = self._now()
        if any(self._recorded(new.event_key) is not None for new in batch):
            raise self._refused(EventKeyConflict())
        if any(new.user_id is not None and new.user_id not in self._store.users for new in batch):
            raise self._refused(UserNotFound())
        for new in batch:
            self._record(new, now)
        return len(batch)

    async def get(self, event_id: int) -> Event | None:
        """Return the event with this id, or None."""
        self._open()
        check_event_id(event_id)
        return next((e for e in self._store.events if e.id == event_id), None)

    async def list_for_user(
        self, user_id: uuid.UUID, *, after_id: int = 0, limit: int = 100
    ) -> list[Event]:
        """Return up to ``limit`` of the user's events with ids above ``after_id``."""
        self._open()
        check_uuid(user_id, "user_id")
        check_event_id(after_id, field="after_id")
        check_limit(limit)
        mine = [e for e in self._store.events if e.user_id == user_id and e.id > after_id]
        return mine[:limit]

    async def read_stream(self, *, after: str | None = None, limit: int = 100) -> EventPage:
        """Return up to ``limit`` events after the cursor ``after``, and the next cursor."""
        self._open()
        _, after_id = STREAM_START if after is None else decode_stream_cursor(after)
        check_limit(limit)
        page = tuple(e for e in self._store.events if e.id > after_id)[:limit]
        last = page[-1].id if page else after_id
        # One writer at a time: the position's transaction part stays 0.
        return EventPage(events=page, next_cursor=encode_stream_cursor(0, last))

    async def count_by_type(self, types: Sequence[str] | None = None) -> dict[str, int]:
        """Return how many events there are of each type (of ``types`` if given)."""
        self._open()
        wanted = check_event_types(types)
        counts: dict[str, int] = {}
        for event in self._store.events:
            if wanted is None or event.type in wanted:
                counts[event.type] = counts.get(event.type, 0) + 1
        return dict(sorted(counts.items()))


def _matches(subscription: Subscription, event: Event) -> bool:
    """Whether the event passes the subscription's filter (as ReadSubscriptionBatch)."""
    types = subscription.types
    if types and not any(
        event.type.startswith(t[:-1]) if t.endswith("*") else event.type == t for t in types
    ):
        return False
    if subscription.user_id is not None and event.user_id != subscription.user_id:
        return False
    if subscription.partition is not None:
        index, count = subscription.partition
        byte = event.user_id.bytes[15] if event.user_id is not None else 0
        return byte % count == index
    return True


class FakeSubscriptionRepository(_Fake):
    """The :class:`~identity_store.domain.ports.SubscriptionRepository` in memory.
    Positions are ``read_stream``'s cursors of the fake log (transaction part 0);
    nothing consumes here (``consume`` runs on PostgreSQL only), so nothing parks and
    the horizon figures of :meth:`lag` are 0."""

    __slots__ = ()

    def _last_id(self) -> int:
        return self._store.events[-1].id if self._store.events else 0

    def _position(self, to: str, field: str) -> str:
        if to == "beginning":
            return encode_stream_cursor(*STREAM_START)
        if to == "now":
            return encode_stream_cursor(0, self._last_id())
        raise InvalidInput(field, "must be 'beginning' or 'now'")

    async def create(
        self,
        name: str,
        *,
        types: Sequence[str] | None = None,
        user_id: uuid.UUID | None = None,
        partition: tuple[int, int] | None = None,
        on_failure: str = "park",
        max_attempts: int = 5,
        start: str = "beginning",
    ) -> Subscription:
        """Create the subscription and return it."""
        self._open()
        check_subscription_name(name)
        exact, prefixes = split_type_patterns(types)
        if user_id is not None:
            check_uuid(user_id, "user_id")
        index, count = check_partition(partition)
        policy = check_on_failure(on_failure)
        check_limit(max_attempts, field="max_attempts", maximum=MAX_ATTEMPTS)
        position = self._position(start, "start")
        if name in self._store.subscriptions:
            raise SubscriptionExists(name)  # ON CONFLICT DO NOTHING: no abort
        now = self._now()
        created = Subscription(
            name=name,
            position=position,
            types=(*exact, *(prefix + "*" for prefix in prefixes)),
            user_id=user_id,
            partition=None if count == 1 else (index, count),
            on_failure=policy,
            max_attempts=max_attempts,
            failures=0,
            retry_at=None,
            stopped_at=None,
            created_at=now,
            updated_at=now,
        )
        self._store.subscriptions[name] = created
        return created

    async def get(self, name: str) -> Subscription | None:
        """Return the subscription with this name, or None."""
        self._open()
        check_subscription_name(name)
        return self._store.subscriptions.get(name)

    async def delete(self, name: str) -> bool:
        """Delete the subscription and its parked events; return whether it existed."""
        self._open()
        check_subscription_name(name)
        self._store.parked.pop(name, None)
        return self._store.subscriptions.pop(name, None) is not None

    async def reset(self, name: str, *, to: str = "beginning") -> Subscription:
        """Move the subscription, clear its failures, restart it; return it."""
        self._open()
        check_subscription_name(name)
        if to in ("beginning", "now"):
            position = self._position(to, "to")
        else:
            try:
                tx_id, event_id = decode_stream_cursor(to)
            except InvalidInput:
                raise InvalidInput("to", "must be 'beginning', 'now' or a stream cursor") from None
            if tx_id != 0 or event_id > self._last_id():
                raise InvalidInput("to", "is a cursor past the end of this database's stream")
            position = to
        found = self._store.subscriptions.get(name)
        if found is None:
            raise SubscriptionNotFound(name)
        moved = found.model_copy(
            update={
                "position": position,
                "failures": 0,
                "retry_at": None,
                "stopped_at": None,
                "updated_at": self._now(),
            }
        )
        self._store.subscriptions[name] = moved
        return moved

    async def list_parked(self, name: str, *, limit: int = 100) -> list[ParkedEvent]:
        """Return up to ``limit`` of the events the subscription parked, by event id."""
        self._open()
        check_subscription_name(name)
        check_limit(limit)
        parked = sorted(self._store.parked.get(name, []), key=lambda p: p.event_id)
        return parked[:limit]

    async def lag(self) -> StreamLag:
        """Return how far each subscription is behind (no transaction holds the fake)."""
        self._open()
        now = self._now()
        behind: list[SubscriptionLag] = []
        for name, subscription in sorted(self._store.subscriptions.items()):
            _, after_id = decode_stream_cursor(subscription.position)
            pending = [
                e for e in self._store.events if e.id > after_id and _matches(subscription, e)
            ]
            oldest = min((e.recorded_at for e in pending), default=now)
            behind.append(
                SubscriptionLag(
                    name=name,
                    events_behind=len(pending),
                    seconds_behind=max((now - oldest).total_seconds(), 0.0),
                    stopped=subscription.stopped_at is not None,
                )
            )
        return StreamLag(
            subscriptions=tuple(behind), horizon=0, xids_held=0, oldest_transaction_seconds=0.0
        )


class FakeUnitOfWork:
    """A :class:`~identity_store.domain.ports.UnitOfWork` over a :class:`Store`.

    Keeps the changes of a block that ends normally (``committed`` becomes True) and
    restores the store when it raises (``rolled_back``). Like the real one it refuses
    nesting and use of its repositories outside ``async with``, and an error that
    PostgreSQL raises by refusing a statement (``EmailAlreadyRegistered``, a
    ``UserNotFound`` of a missing user's id, a recorded key in ``append_many``) aborts
    it, even when the block catches it: later calls raise :class:`UnitOfWorkError`,
    and nothing of the block is kept (``rolled_back``).
    """

    def __init__(self, store: Store | None = None, clock: Clock = utc_now) -> None:
        self.store = store if store is not None else Store()
        self.clock = clock
        self.committed = False
        self.rolled_back = False
        self._snapshot: Store | None = None
        self._transaction = _Transaction()

    @property
    def active(self) -> bool:
        """Whether a block is open."""
        return self._snapshot is not None

    def _require_active(self) -> None:
        if self._snapshot is None:
            raise UnitOfWorkError("use the repositories of a unit of work inside `async with`")

    @property
    def users(self) -> FakeUserRepository:
        self._require_active()
        return FakeUserRepository(self.store, self.clock, transaction=self._transaction)

    @property
    def tokens(self) -> FakeTokenRepository:
        self._require_active()
        return FakeTokenRepository(self.store, self.clock, transaction=self._transaction)

    @property
    def events(self) -> FakeEventRepository:
        self._require_active()
        return FakeEventRepository(self.store, self.clock, transaction=self._transaction)

    @property
    def subscriptions(self) -> FakeSubscriptionRepository:
        self._require_active()
        return FakeSubscriptionRepository(self.store, self.clock, transaction=self._transaction)

    async def __aenter__(self) -> Self:
        if self._snapshot is not None:
            raise UnitOfWorkError(
                "this unit of work is already active; nested units of work are not supported"
            )
        self._snapshot = copy.deepcopy(self.store)
        self._transaction = _Transaction()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        snapshot, self._snapshot = self._snapshot, None
        if exc_type is None and not self._transaction.failed:
            self.committed = True
            return
        if snapshot is not None:
            self.store.users = snapshot.users
            self.store.tokens = snapshot.tokens
            self.store.events = snapshot.events
            self.store.subscriptions = snapshot.subscriptions
            self.store.parked = snapshot.parked
        self.rolled_back = True


def _implements_the_ports(
    store: Store,
) -> tuple[UserRepository, TokenRepository, EventRepository, SubscriptionRepository, UnitOfWork]:
    # Checked by mypy --strict: the fakes are structurally the ports.
    return (
        FakeUserRepository(store),
        FakeTokenRepository(store),
        FakeEventRepository(store),
        FakeSubscriptionRepository(store),
        FakeUnitOfWork(store),
    )
