"""Opaque keyset cursors: users in ``(created_at, id)`` order, the event stream in
``(tx_id, id)`` order."""

from __future__ import annotations

import base64
import binascii
import struct
from datetime import UTC, datetime
from uuid import UUID

from identity_store.domain.errors import InvalidInput

__all__ = [
    "STREAM_START",
    "decode_stream_cursor",
    "decode_user_cursor",
    "encode_stream_cursor",
    "encode_user_cursor",
]

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
    if created_at.tzinfo is None or created_at.utcoffset() is None:
        raise InvalidInput("cursor", "is not a cursor returned by a previous page")
    try:
        # The driver sends UTC: an instant near year 1 or 9999 in another zone may not
        # be one (pages are made from stored rows, which are in UTC).
        created_at.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("cursor", "is not a cursor returned by a previous page") from None
    return created_at, user_id


# A stream cursor is a version byte and two big-endian signed 64-bit integers
# (the position's tx_id and id), in URL-safe base64 without padding: 23 characters.
_STREAM_CURSOR = struct.Struct(">Bqq")
_STREAM_CURSOR_VERSION = 1
_STREAM_CURSOR_LENGTH = 23
_BIGINT_MAX = 2**63 - 1
_INVALID_STREAM_CURSOR = "is not a cursor returned by read_stream"

STREAM_START: tuple[int, int] = (0, 0)
"""The stream position before every event: transaction ids and event ids are positive."""


def encode_stream_cursor(tx_id: int, event_id: int) -> str:
    """Return the URL-safe cursor of the stream position just after this event.

    Raises:
        ValueError: a number is negative or does not fit in PostgreSQL's bigint.
    """
    if not (0 <= tx_id <= _BIGINT_MAX and 0 <= event_id <= _BIGINT_MAX):
        raise ValueError("a stream position is two integers from 0 to 2**63 - 1")
    raw = _STREAM_CURSOR.pack(_STREAM_CURSOR_VERSION, tx_id, event_id)
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_stream_cursor(cursor: str) -> tuple[int, int]:
    """Return the ``(tx_id, id)`` position a stream cursor points after.

    Only the exact text :func:`encode_stream_cursor` writes is accepted.

    Raises:
        InvalidInput: ``after`` is not such a cursor.
    """
    if not isinstance(cursor, str) or len(cursor) != _STREAM_CURSOR_LENGTH:
        raise InvalidInput("after", _INVALID_STREAM_CURSOR)
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=")
        version, tx_id, event_id = _STREAM_CURSOR.unpack(raw)
    except (ValueError, binascii.Error, struct.error) as exc:
        raise InvalidInput("after", _INVALID_STREAM_CURSOR) from exc
    if version != _STREAM_CURSOR_VERSION or tx_id < 0 or event_id < 0:
        raise InvalidInput("after", _INVALID_STREAM_CURSOR)
    if encode_stream_cursor(tx_id, event_id) != cursor:
        # Base64 has more than one spelling of the same bytes; only ours is a cursor.
        raise InvalidInput("after", _INVALID_STREAM_CURSOR)
    return tx_id, event_id
