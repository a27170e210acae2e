"""The ports: what the application needs from persistence, as protocols.

Implementations raise the errors of :mod:`identity_store.domain.errors` and nothing
from the database driver. None of them commits: a :class:`UnitOfWork` owns the
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

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
    UserUpdate,
)
from identity_store.domain.subscriptions import ParkedEvent, StreamLag, Subscription

__all__ = [
    "EventReader",
    "EventRepository",
    "ReadUnitOfWork",
    "SubscriptionRepository",
    "TokenReader",
    "TokenRepository",
    "UnitOfWork",
    "UserReader",
    "UserRepository",
]


class UserReader(Protocol):
    """The reads of users: all a :class:`ReadUnitOfWork` offers. On a replica they
    see the primary's writes after the replica's lag: a read that must see what this
    caller just wrote (the version after ``update`` for an ``If-Match``, the account
    just registered) reads through a :class:`UnitOfWork` on the primary."""

    async def get(self, user_id: UUID) -> User | None:
        """Return the user with this id, or None."""
        ...

    async def get_by_email(self, email: str) -> User | None:
        """Return the user whose address has the same ``email_key`` (the same address
        regardless of ASCII case), or None; never another account, whatever the
        server's locale."""
        ...

    async def list_page(self, *, limit: int = 50, cursor: str | None = None) -> UserPage:
        """Return up to ``limit`` users in creation order, after ``cursor``.

        Raises:
            InvalidInput: ``limit`` is outside 1..1000 or ``cursor`` is not one of ours.
        """
        ...


class UserRepository(UserReader, Protocol):
    """Users, unique by e-mail address regardless of ASCII case
    (:func:`~identity_store.domain.validation.email_key`)."""

    async def register(self, new: NewUser) -> User:
        """Store a new active user at version 1 and return it.

        Raises:
            EmailAlreadyRegistered: the address is taken, whatever its case.
        """
        ...

    async def update(self, user_id: UUID, changes: UserUpdate, *, expected_version: int) -> User:
        """Apply ``changes`` if the user is still at ``expected_version``; return the
        user at the next version.

        Raises:
            UserNotFound: no such user.
            ConcurrencyConflict: the stored version differs.
            EmailAlreadyRegistered: the new address belongs to another user.
        """
        ...

    async def disable(self, user_id: UUID) -> User:
        """Disable the user (a change: the version goes up) and return it. Disabling a
        disabled user returns it unchanged.

        Raises:
            UserNotFound: no such user.
        """
        ...

    async def delete(self, user_id: UUID) -> bool:
        """Delete the user and its tokens; its events stay with no user. Return whether
        a user was deleted."""
        ...


class TokenReader(Protocol):
    """The reads of tokens. On a replica a token issued moments ago may not be there
    yet: ``verify`` right after ``issue`` (a sign-in, then its first request) belongs on
    the primary, or the caller must accept a refusal while the replica catches up."""

    async def get(self, token_id: UUID) -> Token | None:
        """Return the token with this id, live or not, or None."""
        ...

    async def verify(self, secret: str, *, kind: TokenKind | None = None) -> Token | None:
        """Return the live token this secret belongs to, or None when it is unknown,
        expired, revoked or (with ``kind``) of another kind. The same work is done in
        every case.

        Raises:
            InvalidInput: ``secret`` is not text (it holds a lone surrogate).
        """
        ...

    async def list_live_for_user(self, user_id: UUID) -> list[Token]:
        """Return the user's live tokens, oldest first."""
        ...


class TokenRepository(TokenReader, Protocol):
    """Tokens, stored as SHA-256 digests of their secrets."""

    async def issue(self, new: NewToken) -> IssuedToken:
        """Create a token and return it with its secret, which is not stored anywhere.

        Raises:
            UserNotFound: the user does not exist.
        """
        ...

    async def touch(self, token_id: UUID) -> bool:
        """Set ``last_used_at`` to now; return whether the token exists."""
        ...

    async def revoke(self, token_id: UUID) -> bool:
        """Revoke the token; return whether it was live until now."""
        ...

    async def revoke_all_for_user(self, user_id: UUID) -> int:
        """Revoke every live token of the user; return how many."""
        ...

    async def consume(self, secret: str, *, kind: TokenKind) -> Token:
        """Use up a single-use token of ``kind``: of any number of concurrent callers
        exactly one gets the token back.

        Raises:
            TokenInvalid: unknown, expired, revoked, used, or of another kind.
            InvalidInput: ``kind`` is not a single-use kind, or ``secret`` is not text
                (it holds a lone surrogate).
        """
        ...

    async def purge_expired(self, *, batch_size: int = 1000, max_batches: int = 100) -> int:
        """Delete tokens that have expired, ``batch_size`` rows per statement and at
        most ``max_batches`` statements; return how many were deleted. On a pool every
        statement commits on its own (short locks); in a unit of work, all together.

        Raises:
            InvalidInput: a limit is outside 1..10000.
        """
        ...


class EventReader(Protocol):
    """The reads of the event log. ``read_stream`` works on a replica too: its horizon
    is the replica's snapshot, so a reader there delivers every event once, later."""

    async def get(self, event_id: int) -> Event | None:
        """Return the event with this id, or None."""
        ...

    async def list_for_user(
        self, user_id: UUID, *, after_id: int = 0, limit: int = 100
    ) -> list[Event]:
        """Return up to ``limit`` of the user's events with ids above ``after_id``.

        A listing, not a feed: an event whose transaction commits after a page was read
        may have a smaller id than that page's last one. To follow new events, use
        ``read_stream``."""
        ...

    async def read_stream(self, *, after: str | None = None, limit: int = 100) -> EventPage:
        """Return up to ``limit`` events after the cursor ``after`` (from the start of
        the stream when None) and ``next_cursor`` to read on from. A reader that keeps
        passing ``next_cursor`` back gets every committed event exactly once, in one
        stable order; an event still being written holds back the events after it
        rather than being skipped.

        Raises:
            InvalidInput: ``after`` is not a cursor this method returned, or ``limit``
                is outside 1..1000.
        """
        ...

    async def count_by_type(self, types: Sequence[str] | None = None) -> dict[str, int]:
        """Return how many events there are of each type (of ``types`` if given)."""
        ...


class EventRepository(EventReader, Protocol):
    """The append-only event log. There is no way to change or delete an event."""

    async def append(self, new: NewEvent) -> Event:
        """Record the event and return it. Appending an ``event_key`` that is already
        recorded writes nothing and returns the recorded event.

        Raises:
            EventKeyConflict: the key is recorded for an event of another type, user
                or payload.
            UserNotFound: ``user_id`` names no user.
        """
        ...

    async def append_many(self, events: Iterable[NewEvent]) -> int:
        """Record all events (any iterable) in one bulk write (all or nothing); return
        how many. Not idempotent: a recorded key fails the whole batch.

        Raises:
            EventKeyConflict: one of the keys is already recorded.
            InvalidInput: not an iterable of ``NewEvent``, a key repeats within it, or
                there are more than ``MAX_APPEND_MANY``.
            UserNotFound: a ``user_id`` names no user.
        """
        ...


class ReadUnitOfWork(Protocol):
    """One transaction that needs only the readers: ``async with uow:``. A
    :class:`UnitOfWork` is one; ``PostgresReadUnitOfWork`` opens a read-only one (on a
    replica, or on the primary), where a write raises
    :class:`~identity_store.domain.errors.UnitOfWorkError`."""

    @property
    def users(self) -> UserReader:
        """The users' reads, on this unit of work's transaction."""
        ...

    @property
    def tokens(self) -> TokenReader:
        """The tokens' reads, on this unit of work's transaction."""
        ...

    @property
    def events(self) -> EventReader:
        """The event log's reads, on this unit of work's transaction."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class SubscriptionRepository(Protocol):
    """Durable, named positions in the event stream, for
    :mod:`identity_store.infrastructure.consumer`.

    Names are 1 to 63 characters of ``a-z 0-9 _ . -`` starting with a letter; every
    method raises :class:`InvalidInput` (field ``name``) for another one.
    """

    async def create(
        self,
        name: str,
        *,
        types: Sequence[str] | None = None,
        user_id: UUID | None = None,
        partition: tuple[int, int] | None = None,
        on_failure: str = "park",
        max_attempts: int = 5,
        start: str = "beginning",
    ) -> Subscription:
        """Create the subscription and return it. ``types``: event types and prefixes
        such as ``"user.*"`` (None: every type); ``user_id``: only that user's events;
        ``partition=(index, count)``: only users whose id's last byte % count is index
        (events without a user go to index 0), so that ``count`` subscriptions split
        the stream between workers, each user's events staying in order;
        ``on_failure``: ``"park"`` or ``"stop"`` once an event failed ``max_attempts``
        (1..1000) deliveries on its own; ``start``: ``"beginning"`` (every event in the
        log) or ``"now"`` (events of transactions not yet ended).

        Raises:
            SubscriptionExists: the name is taken.
            InvalidInput: an argument is malformed (the error names it).
        """
        ...

    async def get(self, name: str) -> Subscription | None:
        """Return the subscription with this name, or None."""
        ...

    async def delete(self, name: str) -> bool:
        """Delete the subscription and its parked events; return whether it existed."""
        ...

    async def reset(self, name: str, *, to: str = "beginning") -> Subscription:
        """Move the subscription to ``"beginning"``, ``"now"`` or a stream cursor
        (``read_stream``'s ``next_cursor``, a ``Subscription.position``), clear its
        failures and restart it if it stopped; return it. Waits for a batch in
        progress to end.

        Raises:
            SubscriptionNotFound: no subscription has the name.
            InvalidInput: ``to`` is none of these, or a cursor past this database's
                stream.
        """
        ...

    async def list_parked(self, name: str, *, limit: int = 100) -> list[ParkedEvent]:
        """Return up to ``limit`` of the events the subscription parked, by event id."""
        ...

    async def lag(self) -> StreamLag:
        """Return how far each subscription is behind and what holds the stream back."""
        ...


class UnitOfWork(ReadUnitOfWork, Protocol):
    """One transaction: ``async with uow:`` commits on success, rolls back on error.

    Leaving the block raises :class:`~identity_store.domain.errors.CommitOutcomeUnknown`
    when COMMIT got no answer (how to retry: its docstring).
    """

    @property
    def users(self) -> UserRepository:
        """The users, on this unit of work's transaction."""
        ...

    @property
    def tokens(self) -> TokenRepository:
        """The tokens, on this unit of work's transaction."""
        ...

    @property
    def events(self) -> EventRepository:
        """The event log, on this unit of work's transaction."""
        ...

    @property
    def subscriptions(self) -> SubscriptionRepository:
        """The event stream's subscriptions, on this unit of work's transaction."""
        ...
