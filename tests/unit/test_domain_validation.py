"""Hostile input meets the domain models: rejected with an error naming the field, or
accepted unchanged (the integration tests then read it back verbatim). Never a crash."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from identity_store.domain.models import (
    Event,
    NewEvent,
    NewToken,
    NewUser,
    TokenKind,
    UserStatus,
    UserUpdate,
)
from identity_store.domain.validation import (
    PAYLOAD_MAX_BYTES,
    PAYLOAD_MAX_DEPTH,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
    email_key,
)

pytestmark = pytest.mark.unit

NON_UTF8 = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")


def rejected_field(error: ValidationError) -> str:
    return ".".join(str(part) for part in error.errors()[0]["loc"])


@pytest.mark.parametrize(
    ("email", "why"),
    [
        ("", "at least 3"),
        ("a" * 250 + "@x.io", "at most 254"),
        ("ab", "at least 3"),
        ("no-at-sign.example", "local@domain"),
        ("@example.com", "local@domain"),
        ("user@", "local@domain"),
        ("a@b@c.io", "before @"),
        ("nul\x00@x.io", "NUL"),
        ("line\nbreak@x.io", "control"),
        ("tab\t@x.io", "control"),
        ("bell\x07@x.io", "control"),
        ("del\x7f@x.io", "control"),
        (f"{NON_UTF8}@x.io", "lone surrogate"),
        ("' OR 1=1 --@x.io", "before @"),
        ("x'; DROP TABLE users;--@x.io", "before @"),
        ("a@localhost", "domain"),
        ("a@-bad.io", "domain"),
        ("a@bad-.io", "domain"),
        ("a@x..io", "domain"),
        (".a@x.io", "before @"),
        ("a.@x.io", "before @"),
        ("a..b@x.io", "before @"),
        ("l" * 65 + "@x.io", "at most 64"),
        ("zoë@x.io", "before @"),
        ("a@exämple.io", "domain"),
        ("a b@x.io", "before @"),
    ],
)
def test_a_malformed_email_is_rejected_naming_the_field(email: str, why: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NewUser(email=email, display_name="Someone")

    assert rejected_field(caught.value) == "email"
    assert why in str(caught.value)


@pytest.mark.parametrize(
    "email",
    [
        "a@x.io",
        "o'brien@example.com",
        "first.last+tag@sub.example.co.uk",
        "UPPER@EXAMPLE.COM",
        "x@xn--bcher-kva.example",
        "{weird}#!$%&*=?^_`|~-@x.io",
        "l" * 64 + "@" + ("d" * 63 + ".") * 2 + "io",
    ],
)
def test_an_unusual_but_valid_email_is_accepted_unchanged(email: str) -> None:
    assert NewUser(email=email, display_name="Someone").email == email


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "at least 1"),
        ("   ", "blank"),
        ("x" * 201, "at most 200"),
        ("x" * 1_000_000, "at most 200"),
        ("nul\x00byte", "NUL"),
        ("new\nline", "control"),
        ("escape\x1b[31m", "control"),
        ("c1\x85control", "control"),
        (NON_UTF8, "lone surrogate"),
    ],
)
def test_a_bad_display_name_is_rejected_naming_the_field(name: str, why: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NewUser(email="a@x.io", display_name=name)

    assert rejected_field(caught.value) == "display_name"
    assert why in str(caught.value)


@pytest.mark.parametrize(
    "name",
    [
        "Robert'); DROP TABLE users;--",
        "$1::text",
        "李小龙 🦄 Ångström",
        "\u202eright-to-left override",
        "zero\u200bwidth",
        "x" * 200,
    ],
)
def test_printable_hostile_display_names_are_accepted_unchanged(name: str) -> None:
    assert NewUser(email="a@x.io", display_name=name).display_name == name


@pytest.mark.parametrize("value", [b"a@x.io", 42, None, ["a@x.io"]])
def test_a_non_string_email_is_rejected_not_coerced(value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        NewUser(email=value, display_name="Someone")
    assert rejected_field(caught.value) == "email"


@pytest.mark.parametrize("value", ["with space", "é-not-ascii", "x" * 1025, "nul\x00", ""])
def test_a_password_hash_must_be_an_encoded_hash_and_is_never_echoed(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NewUser(email="a@x.io", display_name="A", password_hash=value)

    assert rejected_field(caught.value) == "password_hash"
    if value:
        # Not in the message, nor in what FastAPI echoes in a 422 body.
        assert value not in str(caught.value)
        assert value not in repr(caught.value.errors())
        assert value not in caught.value.json()


@pytest.mark.parametrize("value", [b"$argon2id$as-bytes", 12345, ["$argon2id$in-a-list"]])
def test_a_password_hash_of_the_wrong_type_is_never_echoed(value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        UserUpdate(password_hash=value)

    assert rejected_field(caught.value) == "password_hash"
    shown = repr(caught.value.errors()) + caught.value.json() + str(caught.value)
    assert "argon2id" not in shown and "12345" not in shown


def test_a_password_hash_does_not_appear_in_repr() -> None:
    user = NewUser(email="a@x.io", display_name="A", password_hash="$argon2id$secretish")

    assert "secretish" not in repr(user)


def test_an_update_must_change_something() -> None:
    with pytest.raises(ValidationError):
        UserUpdate()
    with pytest.raises(ValidationError):
        UserUpdate(display_name=None, email=None)

    assert UserUpdate(status=UserStatus.DISABLED).status is UserStatus.DISABLED


def test_an_update_validates_like_a_new_user() -> None:
    with pytest.raises(ValidationError) as caught:
        UserUpdate(email="not an address")
    assert rejected_field(caught.value) == "email"


def test_input_models_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        NewUser(email="a@x.io", display_name="A", is_admin=True)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("ttl", "why"),
    [
        (timedelta(0), "positive"),
        (timedelta(seconds=-1), "positive"),
        (timedelta(days=3651), "at most 3650 days"),
    ],
)
def test_a_token_lifetime_must_be_positive_and_bounded(ttl: timedelta, why: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NewToken(user_id=uuid.uuid4(), kind=TokenKind.SESSION, ttl=ttl)

    assert rejected_field(caught.value) == "ttl"
    assert why in str(caught.value)


@pytest.mark.parametrize(
    "scopes",
    [("",), (" ",), ("read", "read"), (" padded",), ("nul\x00",), ("x" * 201,), ("a",) * 65],
)
def test_scopes_must_be_distinct_printable_non_blank_strings(scopes: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        NewToken(user_id=uuid.uuid4(), kind=TokenKind.API_KEY, ttl=timedelta(days=1), scopes=scopes)
    assert rejected_field(caught.value).startswith("scopes")


def test_an_unknown_token_kind_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        NewToken(user_id=uuid.uuid4(), kind="superuser", ttl=timedelta(days=1))  # type: ignore[arg-type]
    assert rejected_field(caught.value) == "kind"


@pytest.mark.parametrize(
    "event_type",
    [
        "registered",
        "User.Registered",
        "user.",
        ".user",
        "user..registered",
        "user.registered\n",
        "user.registered; DROP TABLE events",
        "1user.registered",
        "user.reg-istered",
        "a." + "b" * 200,
        "user.\x00",
    ],
)
def test_an_event_type_must_be_dotted_lower_case_words(event_type: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NewEvent(type=event_type)
    assert rejected_field(caught.value) == "type"


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"k": "nul\x00inside"}, "NUL"),
        ({"nul\x00key": 1}, "NUL"),
        ({"k": NON_UTF8}, "lone surrogate"),
        ({"k": float("nan")}, "finite"),
        ({"k": float("inf")}, "finite"),
        ({"k": 1e300}, "2**53"),
        ({"k": "x" * (PAYLOAD_MAX_BYTES + 1)}, "bytes"),
        ({"k": ["é" * (PAYLOAD_MAX_BYTES // 2)]}, "bytes"),
    ],
)
def test_a_payload_jsonb_cannot_store_or_too_big_is_rejected(
    payload: dict[str, Any], why: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        NewEvent(type="user.registered", payload=payload)

    assert rejected_field(caught.value) == "payload"
    assert why in str(caught.value)


def nested(depth: int) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    inner = payload
    for _ in range(depth - 1):
        inner["a"] = {}
        inner = inner["a"]
    return payload


def test_a_payload_nested_too_deep_is_rejected_without_recursion_errors() -> None:
    assert NewEvent(type="a.b", payload=nested(PAYLOAD_MAX_DEPTH)).payload == nested(
        PAYLOAD_MAX_DEPTH
    )
    with pytest.raises(ValidationError) as caught:
        NewEvent(type="a.b", payload=nested(PAYLOAD_MAX_DEPTH + 1))
    assert "deeper" in str(caught.value)
    with pytest.raises(ValidationError):
        NewEvent(type="a.b", payload=nested(100_000))


@pytest.mark.parametrize("payload", [[1, 2], "text", 3, None, {"k": {1, 2}}, {"k": object()}])
def test_a_payload_must_be_a_json_object(payload: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        NewEvent(type="a.b", payload=payload)
    assert rejected_field(caught.value).startswith("payload")


def test_a_payload_of_hostile_but_valid_json_is_accepted_unchanged() -> None:
    payload = {
        "sql": "'; DROP TABLE events; --",
        "escape": "\\u0000 is only six characters here",
        "unicode": "李 🦄 \u202e",
        "numbers": [0, -1, 2**80, 0.1, 1e-300],
        "empty": {},
    }

    assert NewEvent(type="a.b", payload=payload).payload == payload


def test_a_naive_occurred_at_is_rejected_and_an_aware_one_becomes_utc() -> None:
    with pytest.raises(ValidationError) as caught:
        NewEvent(type="a.b", occurred_at=datetime(2030, 1, 1, 12))
    assert rejected_field(caught.value) == "occurred_at"

    plus_two = timezone(timedelta(hours=2))
    event = NewEvent(type="a.b", occurred_at=datetime(2030, 1, 1, 12, tzinfo=plus_two))
    assert event.occurred_at == datetime(2030, 1, 1, 10, tzinfo=UTC)
    assert event.occurred_at is not None and event.occurred_at.tzinfo is UTC


def test_every_new_event_gets_its_own_idempotency_key() -> None:
    assert NewEvent(type="a.b").event_key != NewEvent(type="a.b").event_key


def test_a_users_password_hash_stays_out_of_repr_and_json() -> None:
    from identity_store.domain.models import User

    user = User(
        id=uuid.uuid4(),
        email="a@x.io",
        display_name="A",
        password_hash="$argon2id$secretish",
        status=UserStatus.ACTIVE,
        version=1,
        created_at=datetime(2030, 1, 1, tzinfo=UTC),
        updated_at=datetime(2030, 1, 1, tzinfo=UTC),
    )

    assert user.password_hash is not None
    assert user.password_hash.get_secret_value() == "$argon2id$secretish"
    assert "secretish" not in repr(user)
    assert "secretish" not in repr(dict(user)) and "secretish" not in str(dict(user))
    assert "secretish" not in user.model_dump_json()
    assert "password_hash" not in user.model_dump()


@pytest.mark.parametrize(
    "occurred_at",
    [
        # asyncpg stores Python's first and last instants as -infinity and infinity.
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        "0001-01-01T00:00Z",
        "9999-12-31T23:59:59.999999Z",
        # In UTC these are before year 1 or after 9999: converting them overflowed.
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:00:00-05:00",
        datetime(1, 1, 1, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(9999, 12, 31, tzinfo=UTC),
    ],
)
def test_an_occurred_at_beyond_the_storable_range_is_rejected_naming_the_field(
    occurred_at: object,
) -> None:
    with pytest.raises(ValidationError) as caught:
        NewEvent(type="a.b", occurred_at=occurred_at)  # type: ignore[arg-type]

    assert rejected_field(caught.value) == "occurred_at"
    assert "0001-01-02T00:00:00Z and 9999-12-30T23:59:59.999999Z" in str(caught.value)


@pytest.mark.parametrize(
    ("occurred_at", "in_utc"),
    [
        (TIMESTAMP_MIN, TIMESTAMP_MIN),
        (TIMESTAMP_MAX, TIMESTAMP_MAX),
        ("0001-01-02T05:00:00+05:00", TIMESTAMP_MIN),
        ("9999-12-30T18:59:59.999999-05:00", TIMESTAMP_MAX),
    ],
)
def test_the_ends_of_the_storable_range_are_accepted(occurred_at: object, in_utc: datetime) -> None:
    event = NewEvent(type="a.b", occurred_at=occurred_at)  # type: ignore[arg-type]

    assert event.occurred_at == in_utc
    assert event.occurred_at is not None and event.occurred_at.tzinfo is UTC


def test_stored_infinities_read_back_as_the_instants_that_were_written() -> None:
    """Older versions stored Python's first and last instants as -infinity and infinity,
    which asyncpg reads back as naive datetimes: the read model gives the instants back."""
    stored = {
        "id": 1,
        "event_key": uuid.uuid4(),
        "user_id": None,
        "type": "a.b",
        "payload": {},
        "occurred_at": datetime.min,
        "recorded_at": datetime.max,
    }

    event = Event.model_validate(stored)

    assert event.occurred_at == datetime.min.replace(tzinfo=UTC)
    assert event.recorded_at == datetime.max.replace(tzinfo=UTC)
    with pytest.raises(ValidationError):  # other naive values are still refused
        Event.model_validate({**stored, "occurred_at": datetime(2030, 1, 1)})


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("Kate@Example.COM", "kate@example.com"),
        ("\u212aate@example.com", "\u212aate@example.com"),  # Kelvin sign: not a k
        ("adm\u0130n@example.com", "adm\u0130n@example.com"),  # İ: not an i
        ("\u017fam@example.com", "\u017fam@example.com"),  # long s: not an s
        ("\uff2bate@example.com", "\uff2bate@example.com"),  # fullwidth K: kept
        ("\u00c9mile@example.com", "\u00c9mile@example.com"),  # only A-Z are lowered
    ],
)
def test_the_email_key_lowers_ascii_letters_only(address: str, key: str) -> None:
    assert email_key(address) == key
