"""Domain models: what the application reads (``User``, ``Token``, ``Event``) and the
validated input it hands to the repositories (``NewUser``, ``UserUpdate``,
``NewToken``, ``NewEvent``).

Input models check everything they can before any database call and raise
``pydantic.ValidationError`` naming the field; they never echo the rejected value.
Every datetime is timezone-aware and in UTC.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Annotated, Any, Self
from uuid import UUID, uuid4

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    Strict,
    model_validator,
)

from identity_store.domain.validation import (
    check_display_name,
    check_email,
    check_event_type,
    check_password_hash,
    check_payload,
    check_scopes,
    check_ttl,
    from_database,
    stored_to_utc,
    to_utc,
)

__all__ = [
    "SINGLE_USE_TOKEN_KINDS",
    "Email",
    "Event",
    "EventPage",
    "IssuedToken",
    "NewEvent",
    "NewToken",
    "NewUser",
    "StoredDatetime",
    "Token",
    "TokenKind",
    "User",
    "UserPage",
    "UserStatus",
    "UserUpdate",
    "UtcDatetime",
]

UtcDatetime = Annotated[AwareDatetime, AfterValidator(to_utc)]
"""An input instant: aware, within TIMESTAMP_MIN..TIMESTAMP_MAX, converted to UTC."""
StoredDatetime = Annotated[
    AwareDatetime, BeforeValidator(from_database), AfterValidator(stored_to_utc)
]
"""A stored instant as read: aware and UTC; infinities read as the first/last instant."""
Email = Annotated[str, Strict(), AfterValidator(check_email)]
DisplayName = Annotated[str, Strict(), AfterValidator(check_display_name)]


class _NotText:
    """Stands in for a password hash that was not a string, so that no error (its
    ``input`` included, which FastAPI echoes in a 422 body) can show the value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<not a string>"


def _conceal(value: object) -> object:
    if value is None or isinstance(value, SecretStr):
        return value
    if isinstance(value, str):
        return SecretStr(value)
    return _NotText()


def _check_concealed_hash(value: SecretStr) -> SecretStr:
    check_password_hash(value.get_secret_value())
    return value


PasswordHash = Annotated[
    Annotated[SecretStr, AfterValidator(_check_concealed_hash)] | None, BeforeValidator(_conceal)
]
"""An encoded password hash, or None. Held as a ``SecretStr`` from the first step of
validation: ``repr``, ``dict()``, JSON and every validation error (``errors()``,
``json()``) show ``**********``, never the hash (``.get_secret_value()`` reads it)."""
EventType = Annotated[str, Strict(), AfterValidator(check_event_type)]
Scopes = Annotated[tuple[Annotated[str, Strict()], ...], AfterValidator(check_scopes)]
TokenTtl = Annotated[timedelta, AfterValidator(check_ttl)]
Payload = Annotated[dict[str, JsonValue], AfterValidator(check_payload)]


class UserStatus(enum.StrEnum):
    """Whether a user may sign in."""

    ACTIVE = "active"
    DISABLED = "disabled"


class TokenKind(enum.StrEnum):
    """What a token is for."""

    SESSION = "session"
    REFRESH = "refresh"
    API_KEY = "api_key"
    EMAIL_VERIFICATION = "email_verification"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a kind, not a password


SINGLE_USE_TOKEN_KINDS = frozenset({TokenKind.EMAIL_VERIFICATION, TokenKind.PASSWORD_RESET})
"""Kinds that are consumed by their first use rather than verified repeatedly."""


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class _Stored(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class NewUser(_Input):
    """A user to register. ``password_hash`` is an already encoded hash (a ``str`` or
    ``SecretStr``; kept as a ``SecretStr``), or None."""

    email: Email
    display_name: DisplayName
    password_hash: PasswordHash = Field(default=None, repr=False)


class UserUpdate(_Input):
    """Changes to a user; a field left as None keeps its stored value."""

    email: Email | None = None
    display_name: DisplayName | None = None
    password_hash: PasswordHash = Field(default=None, repr=False)
    status: UserStatus | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not self.model_fields_set or all(
            getattr(self, name) is None for name in self.model_fields_set
        ):
            raise ValueError("an update must change at least one field")
        return self


class User(_Stored):
    """A stored user. ``version`` goes up by one with every change.

    ``password_hash`` is a ``SecretStr`` (``user.password_hash.get_secret_value()``
    to check a password), shown as ``**********`` by ``repr`` and ``dict(user)`` and
    left out of ``model_dump`` / JSON, so returning a ``User`` from a web endpoint, or
    logging one, cannot leak it.
    """

    id: UUID
    email: str
    display_name: str
    password_hash: SecretStr | None = Field(default=None, repr=False, exclude=True)
    status: UserStatus
    version: int
    created_at: StoredDatetime
    updated_at: StoredDatetime


class UserPage(BaseModel):
    """One page of users; pass ``next_cursor`` back to get the next, None at the end."""

    model_config = ConfigDict(frozen=True)

    items: tuple[User, ...]
    next_cursor: str | None


class NewToken(_Input):
    """A token to issue: for whom, what for, for how long, with which scopes."""

    user_id: UUID
    kind: TokenKind
    ttl: TokenTtl
    scopes: Scopes = ()


class Token(_Stored):
    """A stored token. The secret is not here: only its SHA-256 is stored."""

    id: UUID
    user_id: UUID
    kind: TokenKind
    scopes: tuple[str, ...]
    created_at: StoredDatetime
    expires_at: StoredDatetime
    last_used_at: StoredDatetime | None
    revoked_at: StoredDatetime | None

    def is_live(self, at: datetime) -> bool:
        """Return whether the token is neither revoked nor expired at ``at``."""
        return self.revoked_at is None and at < self.expires_at


class IssuedToken(BaseModel):
    """A freshly issued token and its secret, which exists nowhere else: hand it to the
    client once (``secret.get_secret_value()``) and forget it."""

    model_config = ConfigDict(frozen=True)

    token: Token
    secret: SecretStr


class NewEvent(_Input):
    """An event to append. ``event_key`` makes the append idempotent: keep it when
    retrying. ``occurred_at`` defaults to the time of the append."""

    type: EventType
    payload: Payload = Field(default_factory=dict)
    user_id: UUID | None = None
    event_key: UUID = Field(default_factory=uuid4)
    occurred_at: UtcDatetime | None = None


class Event(_Stored):
    """A recorded event. ``id`` grows with each append, but transactions commit in
    another order: the stream (``read_stream``) is ordered by writing transaction,
    then ``id``."""

    id: int
    event_key: UUID
    user_id: UUID | None
    type: str
    payload: dict[str, Any]
    occurred_at: StoredDatetime
    recorded_at: StoredDatetime


class EventPage(BaseModel):
    """One read of the event stream. ``next_cursor`` is where the next read starts:
    pass it back as ``after`` (it stays put when ``events`` is empty)."""

    model_config = ConfigDict(frozen=True)

    events: tuple[Event, ...]
    next_cursor: str
