"""Durable subscriptions to the event stream: their names, filters and read models.

A subscription is a named position in the stream (``read_stream``'s order) with a
filter and a failure policy; :func:`identity_store.consume` hands its events to a
handler. The checks here are shared by every implementation and raise
:class:`InvalidInput` naming the argument.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from itertools import islice
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from identity_store.domain.errors import InvalidInput
from identity_store.domain.models import StoredDatetime
from identity_store.domain.validation import check_event_type

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_BATCH_SIZE",
    "MAX_PARTITIONS",
    "MAX_TYPE_PATTERNS",
    "OnFailure",
    "ParkedEvent",
    "StreamLag",
    "Subscription",
    "SubscriptionLag",
    "check_batch_size",
    "check_on_failure",
    "check_partition",
    "check_subscription_name",
    "split_type_patterns",
]

MAX_BATCH_SIZE = 10_000
"""Most events one batch may hold."""
MAX_ATTEMPTS = 1000
"""Largest ``max_attempts`` of a subscription."""
MAX_TYPE_PATTERNS = 100
"""Most type patterns one subscription's filter may hold."""
MAX_PARTITIONS = 256
"""Most partitions one stream may be split into (by the last byte of a user's id)."""

# Also the CHECK subscriptions_name_format in schema.sql.
_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,62}")
_PREFIX = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.")


class OnFailure(enum.StrEnum):
    """What happens to an event the handler failed on ``max_attempts`` times alone."""

    PARK = "park"
    """Record it in the subscription's parked events and go on with the next."""
    STOP = "stop"
    """Stop the subscription (:class:`SubscriptionStopped`) until it is reset."""


def check_subscription_name(value: object, *, field: str = "name") -> str:
    """Return ``value`` if it is 1 to 63 characters of ``a-z 0-9 _ . -`` starting
    with a letter.

    Raises:
        InvalidInput: it is not.
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInput(
            field, "must be 1 to 63 characters of a-z, 0-9, _, . and -, starting with a letter"
        )
    return value


def check_batch_size(value: object, *, field: str = "batch_size") -> int:
    """Return ``value`` if it is an int from 1 to :data:`MAX_BATCH_SIZE`.

    Raises:
        InvalidInput: it is not.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BATCH_SIZE:
        raise InvalidInput(field, f"must be an integer from 1 to {MAX_BATCH_SIZE}")
    return value


def check_on_failure(value: object, *, field: str = "on_failure") -> OnFailure:
    """Return the :class:`OnFailure` ``value`` is or names.

    Raises:
        InvalidInput: it is neither.
    """
    if isinstance(value, str) and value in OnFailure.__members__.values():
        return OnFailure(value)
    raise InvalidInput(field, "must be 'park' or 'stop'")


def check_partition(value: object, *, field: str = "partition") -> tuple[int, int]:
    """Return ``value`` as ``(index, count)``: None is ``(0, 1)`` (no partitioning),
    else two ints with 0 <= index < count <= :data:`MAX_PARTITIONS`.

    Raises:
        InvalidInput: it is neither.
    """
    if value is None:
        return 0, 1
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in value)
        and 0 <= value[0] < value[1] <= MAX_PARTITIONS
    ):
        return value[0], value[1]
    raise InvalidInput(
        field, f"must be (index, count) with 0 <= index < count <= {MAX_PARTITIONS}, or None"
    )


def split_type_patterns(patterns: object, *, field: str = "types") -> tuple[list[str], list[str]]:
    """Return the exact types and the prefixes of a filter's type patterns.

    A pattern is an event type (``user.registered``) or a prefix of whole words
    followed by ``*`` (``user.*`` matches ``user.registered`` and
    ``user.password.reset``). None or no pattern: every type.

    Raises:
        InvalidInput: not an iterable of such strings, or more than
            :data:`MAX_TYPE_PATTERNS`.
    """
    if patterns is None:
        return [], []
    if isinstance(patterns, str | bytes | bytearray | Mapping) or not isinstance(
        patterns, Iterable
    ):
        raise InvalidInput(field, "must be a list of event types or prefixes such as 'user.*'")
    taken = list(islice(patterns, MAX_TYPE_PATTERNS + 1))
    if len(taken) > MAX_TYPE_PATTERNS:
        raise InvalidInput(field, f"at most {MAX_TYPE_PATTERNS} patterns")
    exact: list[str] = []
    prefixes: list[str] = []
    for pattern in taken:
        if isinstance(pattern, str) and pattern.endswith(".*"):
            if _PREFIX.fullmatch(pattern[:-1]):
                prefixes.append(pattern[:-1])
                continue
        elif isinstance(pattern, str):
            try:
                exact.append(check_event_type(pattern))
                continue
            except ValueError:
                pass
        raise InvalidInput(
            field,
            "each pattern must be an event type (user.registered) or words followed "
            "by '.*' (user.*)",
        )
    return sorted(set(exact)), sorted(set(prefixes))


class _Read(BaseModel):
    model_config = ConfigDict(frozen=True)


class Subscription(_Read):
    """A stored subscription.

    ``position`` is a stream cursor (as ``read_stream`` returns): the subscription has
    handled every matching event up to it. ``types`` lists the filter's patterns
    (empty: every type); ``partition`` is ``(index, count)`` when the subscription
    takes only the users whose id's last byte modulo ``count`` is ``index`` (events
    without a user count as byte 0). ``failures`` counts failed deliveries at the position in a
    row; a retry is due at ``retry_at``. ``stopped_at`` is set when the subscription
    stopped on an event (``on_failure="stop"``).
    """

    name: str
    position: str
    types: tuple[str, ...]
    user_id: UUID | None
    partition: tuple[int, int] | None
    on_failure: OnFailure
    max_attempts: int
    failures: int
    retry_at: StoredDatetime | None
    stopped_at: StoredDatetime | None
    created_at: StoredDatetime
    updated_at: StoredDatetime


class ParkedEvent(_Read):
    """An event a subscription gave up on: its id (the event itself stays in the log),
    the class and message of the handler's last error, and how often it failed."""

    subscription: str
    event_id: int
    error_class: str
    error_message: str
    attempts: int
    parked_at: StoredDatetime


class SubscriptionLag(_Read):
    """How far one subscription is behind: matching events after its position, and
    the seconds since the oldest of them was recorded (0 when none)."""

    name: str
    events_behind: int
    seconds_behind: float
    stopped: bool


class StreamLag(_Read):
    """Every subscription's lag, and what holds the whole stream back.

    Events are delivered only below the **horizon**: the oldest transaction still
    running anywhere on the server that holds a transaction id.
    ``oldest_transaction_seconds`` is that transaction's age (0 when none is visible:
    other roles' transactions show only to members of ``pg_read_all_stats``);
    ``xids_held`` is how many transaction ids were handed out since it began.
    """

    subscriptions: tuple[SubscriptionLag, ...]
    horizon: int
    xids_held: int
    oldest_transaction_seconds: float
