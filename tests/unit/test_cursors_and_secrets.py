"""Keyset cursors and token secrets: pure functions of the domain."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from identity_store.domain.errors import InvalidInput
from identity_store.domain.pagination import decode_user_cursor, encode_user_cursor
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


@pytest.mark.parametrize("hostile", ["", "\x00", "\udcff", "🦄" * 10_000, "' OR 1=1 --"])
def test_any_string_can_be_hashed_even_one_that_is_not_utf8(hostile: str) -> None:
    assert len(hash_secret(hostile)) == 32
