"""Keyset cursors and token secrets: pure functions of the domain."""

from __future__ import annotations

import base64
import hashlib
import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from identity_store.domain.errors import InvalidInput
from identity_store.domain.pagination import (
    decode_stream_cursor,
    decode_user_cursor,
    encode_stream_cursor,
    encode_user_cursor,
)
from identity_store.domain.token_secrets import hash_secret, new_secret

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2026, 11, 27, 14, 0, 0, 123456, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_a_cursor_points_back_at_the_exact_row_it_was_made_from(created_at: datetime) -> None:
    user_id = uuid.uuid4()

    cursor = encode_user_cursor(created_at, user_id)

    assert decode_user_cursor(cursor) == (created_at, user_id)
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor and "+" not in cursor


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "%%%",
        "a" * 201,
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00|not-a-uuid").decode(),
        base64.urlsafe_b64encode(f"2026-01-01T00:00:00|{uuid.uuid4()}".encode()).decode(),
        base64.urlsafe_b64encode(f"yesterday|{uuid.uuid4()}".encode()).decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "' OR 1=1 --",
        "\x00",
    ],
)
def test_a_cursor_we_did_not_make_is_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_user_cursor(cursor)

    assert caught.value.field == "cursor"


def test_secrets_are_long_url_safe_and_never_repeat() -> None:
    made = {new_secret() for _ in range(1000)}

    assert len(made) == 1000
    assert all(len(secret) == 43 for secret in made)
    assert all(
        set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for secret in made
    )


def test_a_secret_is_stored_as_its_sha256() -> None:
    secret = new_secret()

    assert hash_secret(secret) == hashlib.sha256(secret.encode()).digest()
    assert len(hash_secret(secret)) == 32


@pytest.mark.parametrize("hostile", ["", "\x00", "🦄" * 10_000, "' OR 1=1 --"])
def test_any_text_can_be_hashed(hostile: str) -> None:
    assert len(hash_secret(hostile)) == 32


@pytest.mark.parametrize("not_text", ["\udcff", "ab\ud800cd"])
def test_a_string_that_is_not_utf8_is_refused_naming_the_secret(not_text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        hash_secret(not_text)
    assert caught.value.field == "secret"
    assert "surrogate" in caught.value.problem


@pytest.mark.parametrize("position", [(0, 0), (3, 1), (2**40 + 7, 12345), (2**63 - 1, 2**63 - 1)])
def test_a_stream_cursor_gives_back_its_position(position: tuple[int, int]) -> None:
    cursor = encode_stream_cursor(*position)

    assert decode_stream_cursor(cursor) == position
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor and "+" not in cursor


@pytest.mark.parametrize("position", [(-1, 0), (0, -1), (2**63, 0), (0, 2**63)])
def test_a_stream_position_out_of_bigint_range_has_no_cursor(position: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="2\\*\\*63"):
        encode_stream_cursor(*position)


def _stream_cursor_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _respelled(cursor: str) -> str:
    """The same bytes spelled otherwise: the last character's two low bits are padding."""
    respelled = cursor[:-1] + _URLSAFE[_URLSAFE.index(cursor[-1]) ^ 1]
    assert base64.urlsafe_b64decode(respelled + "=") == base64.urlsafe_b64decode(cursor + "=")
    return respelled


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "0",
        "A" * 22,
        "A" * 24,
        "%" * 23,
        "é" * 23,
        "\x00" * 23,
        encode_stream_cursor(1, 2) + "=",
        _stream_cursor_of(struct.pack(">Bqq", 2, 1, 2)),  # another version
        _stream_cursor_of(struct.pack(">Bqq", 1, -1, 2)),  # negative
        _stream_cursor_of(struct.pack(">Bqq", 1, 1, -2)),
        _respelled(encode_stream_cursor(1, 2)),
        encode_user_cursor(datetime(2026, 1, 1, tzinfo=UTC), uuid.uuid4()),
        123,
        None,
    ],
)
def test_a_stream_cursor_we_did_not_make_is_invalid_input(cursor: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_stream_cursor(cursor)  # type: ignore[arg-type]

    assert caught.value.field == "after"
