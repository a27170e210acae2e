"""What clients send and what they get back: the service's own models.

None of them has a password hash. Passwords arrive as ``SecretStr`` (hidden from
``repr`` and logs), are hashed by the service, and are never returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from identity_store import Event, Token, User, UserStatus
from identity_store.domain import validation as limits
from identity_store.domain.validation import check_unicode

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 256  # argon2 hashes anything, but a 1 MB password is an attack


class _Request(BaseModel):
    # An unknown field (say, "password_hash") is refused, not ignored.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


def _check_secret(value: SecretStr) -> SecretStr:
    check_unicode(value.get_secret_value())
    return value


Secret = Annotated[SecretStr, AfterValidator(_check_secret)]
"""Text that must stay hidden; a lone surrogate (no UTF-8, so argon2 cannot hash it)
is refused like in every other text field."""
Password = Secret


# The document carries the library's limits, so a client generated from it is right;
# the rules a schema cannot say exactly (e-mail syntax) are approximated. Every route
# refuses a malformed address, even where it only looks one up.
Email = Annotated[
    str,
    Field(
        min_length=limits.EMAIL_MIN_LENGTH,
        max_length=limits.EMAIL_MAX_LENGTH,
        json_schema_extra={"format": "email"},
    ),
    AfterValidator(limits.check_email),
]
_NOT_CONTROL = r"[^\x00-\x1f\x7f-\x9f]"
DisplayName = Annotated[
    str,
    Field(
        min_length=limits.DISPLAY_NAME_MIN_LENGTH,
        max_length=limits.DISPLAY_NAME_MAX_LENGTH,
        # Printable, not all blank.
        json_schema_extra={"pattern": rf"^{_NOT_CONTROL}*[^\s\x00-\x1f\x7f-\x9f]{_NOT_CONTROL}*$"},
    ),
]


class RegisterRequest(_Request):
    email: Email
    display_name: DisplayName
    password: Password = Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)


class UpdateUserRequest(_Request):
    email: Email | None = None
    display_name: DisplayName | None = None


class SignInRequest(_Request):
    email: Email
    password: Password = Field(max_length=PASSWORD_MAX_LENGTH)


class PasswordResetRequest(_Request):
    email: Email


class PasswordResetConfirm(_Request):
    token: Secret = Field(max_length=200)
    new_password: Password = Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)


class UserOut(BaseModel):
    id: UUID
    email: str
    display_name: str
    status: UserStatus
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        # By field name: model_dump leaves the password hash out (User excludes it).
        return cls.model_validate(user.model_dump())


class SessionOut(BaseModel):
    token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth 2 token type, not a secret
    expires_at: datetime


class SessionInfo(BaseModel):
    user_id: UUID
    scopes: tuple[str, ...]
    expires_at: datetime

    @classmethod
    def of(cls, token: Token) -> SessionInfo:
        return cls(user_id=token.user_id, scopes=token.scopes, expires_at=token.expires_at)


class EventOut(BaseModel):
    id: int
    type: str
    user_id: UUID | None
    payload: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime

    @classmethod
    def of(cls, event: Event) -> EventOut:
        return cls(
            id=event.id,
            type=event.type,
            user_id=event.user_id,
            payload=event.payload,
            occurred_at=event.occurred_at,
            recorded_at=event.recorded_at,
        )


class UserEventsOut(BaseModel):
    events: list[EventOut]
    next_after_id: int | None
    """Pass as ``after_id`` for the next page; null when this page was the last."""


class StreamPageOut(BaseModel):
    events: list[EventOut]
    next_cursor: str
    """Pass as ``after`` to read on; it stays put when no event is new."""
