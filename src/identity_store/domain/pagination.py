"""Opaque keyset cursors for listing users in ``(created_at, id)`` order."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from identity_store.domain.errors import InvalidInput

__all__ = ["decode_user_cursor", "encode_user_cursor"]

_MAX_CURSOR_LENGTH = 200


def encode_user_cursor(created_at: datetime, user_id: UUID) -> str:
    """Return a URL-safe cursor that points just after this user."""
    raw = f"{created_at.isoformat()}|{user_id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_user_cursor(cursor: str) -> tuple[datetime, UUID]:
    """Return the ``(created_at, id)`` a cursor points after.

    Raises:
        InvalidInput: the cursor was not made by :func:`encode_user_cursor`.
    """
    if not isinstance(cursor, str) or not 0 < len(cursor) <= _MAX_CURSOR_LENGTH:
        raise InvalidInput("cursor", "is not a cursor returned by a previous page")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        stamp, _, ident = raw.partition("|")
        created_at = datetime.fromisoformat(stamp)
        user_id = UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor", "is not a cursor returned by a previous page") from exc
    if created_at.tzinfo is None:
        raise InvalidInput("cursor", "is not a cursor returned by a previous page")
    return created_at, user_id
