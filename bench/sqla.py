"""The identity-store tables declared for SQLAlchemy 2 (ORM classes; Core uses their tables).

Only what the benchmark reads and writes; ``schema.sql`` stays the source of truth and
the equivalence check of every run fails if these declarations drift from it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Computed,
    DateTime,
    FetchedValue,
    Identity,
    LargeBinary,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, ENUM, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "EventRow", "TokenRow", "UserRow"]

_USER_STATUS = ENUM("active", "disabled", name="user_status", create_type=False)
_TOKEN_KIND = ENUM(
    "session",
    "refresh",
    "api_key",
    "email_verification",
    "password_reset",
    name="token_kind",
    create_type=False,
)


class Base(DeclarativeBase):
    pass


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    email: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(_USER_STATUS)
    version: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    email_key: Mapped[str] = mapped_column(Text, Computed('lower(email COLLATE "C")'))


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    user_id: Mapped[UUID]
    kind: Mapped[str] = mapped_column(_TOKEN_KIND)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    event_key: Mapped[UUID]
    user_id: Mapped[UUID | None]
    type: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    tx_id: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
