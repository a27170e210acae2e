"""Checks of the arguments of the ports' methods, shared by every implementation.

The PostgreSQL adapters and the fakes of :mod:`identity_store.dev` call the same
checks, so both refuse the same input with the same :class:`InvalidInput` naming the
argument, before anything is read or written. A wrong type (a ``str`` where a ``UUID``
belongs, a float limit, a list of dicts instead of events) is refused here instead of
surfacing as a ``TypeError`` or ``AttributeError`` from deep inside.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from itertools import islice
from typing import TypeVar
from uuid import UUID

from pydantic import BaseModel

from identity_store.domain.clock import Clock
from identity_store.domain.errors import InvalidInput
from identity_store.domain.models import SINGLE_USE_TOKEN_KINDS, NewEvent, TokenKind
from identity_store.domain.validation import check_timestamp

__all__ = [
    "MAX_APPEND_MANY",
    "MAX_BATCH",
    "MAX_EVENT_ID",
    "MAX_PAGE_SIZE",
    "MAX_VERSION",
    "check_event_id",
    "check_event_types",
    "check_instance",
    "check_limit",
    "check_new_events",
    "check_single_use_kind",
    "check_token_kind",
    "check_uuid",
    "checked_new_events",
    "read_clock",
]

MAX_PAGE_SIZE = 1000
"""Most rows one page (``limit``) may hold."""
MAX_APPEND_MANY = 100_000
"""Most events one ``append_many`` call accepts."""
MAX_BATCH = 10_000
"""Largest ``batch_size`` / ``max_batches`` of ``purge_expired``."""
MAX_VERSION = 2**31 - 1
"""Largest user version (an ``integer`` column)."""
MAX_EVENT_ID = 2**63 - 1
"""Largest event id (a ``bigint`` identity)."""

_M = TypeVar("_M", bound=BaseModel)


def check_limit(value: object, *, field: str = "limit", maximum: int = MAX_PAGE_SIZE) -> int:
    """Return ``value`` if it is an int from 1 to ``maximum`` (``bool`` is not an int here).

    Raises:
        InvalidInput: it is not.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidInput(field, f"must be an integer from 1 to {maximum}")
    return value


def check_event_id(value: object, *, field: str = "event_id") -> int:
    """Return ``value`` if it is an int from 0 to :data:`MAX_EVENT_ID`.

    Raises:
        InvalidInput: it is not.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_EVENT_ID:
        raise InvalidInput(field, "must be an integer of 0 or more (a bigint)")
    return value


def check_uuid(value: object, field: str) -> UUID:
    """Return ``value`` if it is a ``uuid.UUID``.

    Raises:
        InvalidInput: it is anything else (a string included: parse it first).
    """
    if not isinstance(value, UUID):
        raise InvalidInput(field, "must be a uuid.UUID")
    return value


def check_instance(value: object, model: type[_M], field: str) -> _M:
    """Return ``value`` if it is a ``model`` (already validated by pydantic).

    Raises:
        InvalidInput: it is not.
    """
    if not isinstance(value, model):
        raise InvalidInput(field, f"must be a {model.__name__}")
    return value


def check_token_kind(value: object, *, field: str = "kind") -> TokenKind:
    """Return the :class:`TokenKind` ``value`` is or names (``"session"`` works too).

    Raises:
        InvalidInput: it is neither a ``TokenKind`` nor one's value.
    """
    if isinstance(value, TokenKind):
        return value
    if isinstance(value, str):
        try:
            return TokenKind(value)
        except ValueError:
            pass
    names = ", ".join(kind.value for kind in TokenKind)
    raise InvalidInput(field, f"must be a TokenKind (one of {names})")


def check_single_use_kind(value: object, *, field: str = "kind") -> TokenKind:
    """Return the single-use :class:`TokenKind` ``value`` is or names.

    Raises:
        InvalidInput: it is not a kind, or not one that is consumed.
    """
    kind = check_token_kind(value, field=field)
    if kind not in SINGLE_USE_TOKEN_KINDS:
        raise InvalidInput(field, "only e-mail verification and password reset are consumed")
    return kind


def check_new_events(events: object, *, field: str = "events") -> list[NewEvent]:
    """Return ``events`` (any iterable of :class:`NewEvent`, a generator included) as a
    list, at most :data:`MAX_APPEND_MANY` long, with no ``event_key`` twice.

    Raises:
        InvalidInput: not an iterable of ``NewEvent`` (a string or mapping is not), too
            many, or a repeated key.
    """
    return list(checked_new_events(events, field=field))


def checked_new_events(events: object, *, field: str = "events") -> Iterator[NewEvent]:
    """Return an iterator over ``events`` that checks each as :func:`check_new_events`
    does, as it is drawn: a bulk writer holds one event at a time (and the keys seen
    so far).

    Raises:
        InvalidInput: at once, ``events`` is not an iterable (a string or mapping is
            not); while iterating, at the first item that is not a ``NewEvent``,
            repeats a key, or goes past :data:`MAX_APPEND_MANY`.
    """
    if isinstance(events, str | bytes | bytearray | Mapping) or not isinstance(events, Iterable):
        raise InvalidInput(field, "must be an iterable of NewEvent")
    return _checked(iter(events), field)


def _checked(source: Iterator[object], field: str) -> Iterator[NewEvent]:
    # The keys as ints, which the garbage collector does not track: a million UUID
    # objects kept here would be scanned by every full collection while the call runs.
    seen: set[int] = set()
    for new in source:
        if not isinstance(new, NewEvent):
            raise InvalidInput(field, "must all be NewEvent")
        key = new.event_key.int
        if key in seen:
            raise InvalidInput(field, "event_key must not repeat within one call")
        if len(seen) == MAX_APPEND_MANY:
            raise InvalidInput(field, f"at most {MAX_APPEND_MANY} events per call")
        seen.add(key)
        yield new


def check_event_types(types: object, *, field: str = "types") -> list[str] | None:
    """Return ``types`` (None, or an iterable of event type names) as a list.

    Raises:
        InvalidInput: a string (not a list of one), a mapping, or a non-string name.
    """
    if types is None:
        return None
    if isinstance(types, str | bytes | bytearray | Mapping) or not isinstance(types, Iterable):
        raise InvalidInput(field, "must be an iterable of event type names")
    names = list(islice(types, MAX_PAGE_SIZE + 1))
    if len(names) > MAX_PAGE_SIZE:
        raise InvalidInput(field, f"at most {MAX_PAGE_SIZE} names")
    if not all(isinstance(name, str) for name in names):
        raise InvalidInput(field, "must be an iterable of event type names")
    return names


def read_clock(clock: Clock) -> datetime:
    """Return ``clock()`` in UTC, if it is an aware datetime within the storable range.

    Raises:
        InvalidInput: the clock returned something else (field ``clock``).
    """
    now = clock()
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput("clock", "must return timezone-aware datetimes")
    try:
        return check_timestamp(now)
    except ValueError as exc:
        raise InvalidInput("clock", str(exc)) from None
