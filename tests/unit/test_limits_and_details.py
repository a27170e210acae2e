"""Limits are accepted AT the limit and refused just past it, and errors carry their
details. Every bound here is a literal, never the module's own constant: a test that
compares with the constant cannot notice that the constant is wrong."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError

from identity_store.domain.errors import (
    CommitOutcomeUnknown,
    DatabaseError,
    DatabaseTimeout,
    DatabaseUnavailable,
    EmailAlreadyRegistered,
    InvalidInput,
    TransactionConflict,
    UserNotFound,
)
from identity_store.domain.models import NewEvent, NewToken, TokenKind
from identity_store.domain.validation import (
    check_display_name,
    check_email,
    check_event_type,
    check_password_hash,
    check_payload,
    check_scopes,
    check_text,
    check_timestamp,
    check_ttl,
    from_database,
    stored_to_utc,
    to_utc,
)
from identity_store.infrastructure._errors import (
    translate_commit_error,
    translate_error,
    translate_errors,
)

pytestmark = pytest.mark.unit


def server_error(sqlstate: str, **fields: str) -> Exception:
    return asyncpg.PostgresError.new(  # type: ignore[no-any-return]
        {"C": sqlstate, "M": "the server's message", **fields}
    )


def token(**overrides: object) -> NewToken:
    values: dict[str, object] = {
        "user_id": uuid.uuid4(),
        "kind": TokenKind.API_KEY,
        "ttl": timedelta(days=1),
        **overrides,
    }
    return NewToken(**values)  # type: ignore[arg-type]


# --- every SQLSTATE of the "unavailable" table, each on its own -----------------------

# The server going away, starting, stopping, full, or refusing us: PostgreSQL sends
# these in answer to a connection attempt or to a statement of a dying session.
UNAVAILABLE = ["53300", "57P01", "57P02", "57P03", "57P04", "57P05", "3D000", "28000", "28P01"]


@pytest.mark.parametrize("sqlstate", UNAVAILABLE)
def test_each_unavailable_sqlstate_means_the_database_is_unavailable(sqlstate: str) -> None:
    translated = translate_error(server_error(sqlstate))

    assert type(translated) is DatabaseUnavailable
    assert str(translated) == f"the database is unavailable (SQLSTATE {sqlstate})"


@pytest.mark.parametrize("sqlstate", UNAVAILABLE)
def test_each_unavailable_sqlstate_at_commit_is_an_unknown_outcome(sqlstate: str) -> None:
    translated = translate_commit_error(server_error(sqlstate), executor=None)

    assert type(translated) is CommitOutcomeUnknown


@pytest.mark.parametrize("sqlstate", ["57P06", "3D001", "28001", "53301", "42501"])
def test_neighbouring_sqlstates_are_not_in_the_table(sqlstate: str) -> None:
    translated = translate_error(server_error(sqlstate))

    assert type(translated) is DatabaseError
    assert translated.sqlstate == sqlstate


@pytest.mark.parametrize(("sqlstate", "reason"), [("57014", "statement"), ("55P03", "lock")])
def test_a_server_timeout_names_its_reason_and_sqlstate(sqlstate: str, reason: str) -> None:
    translated = translate_error(server_error(sqlstate))

    assert type(translated) is DatabaseTimeout
    assert translated.reason == reason
    assert sqlstate in str(translated) and f"{reason} timeout" in str(translated)


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_a_lost_race_keeps_its_sqlstate(sqlstate: str) -> None:
    translated = translate_error(server_error(sqlstate))

    assert type(translated) is TransactionConflict
    assert translated.sqlstate == sqlstate


def test_a_serialization_failure_at_commit_is_a_conflict_not_an_unknown_outcome() -> None:
    translated = translate_commit_error(server_error("40001"), executor=None)

    assert type(translated) is TransactionConflict
    assert translated.sqlstate == "40001"


def test_a_client_timeout_at_commit_is_an_unknown_outcome() -> None:
    assert type(translate_commit_error(TimeoutError(), executor=None)) is CommitOutcomeUnknown


def test_a_non_driver_error_at_commit_is_not_translated() -> None:
    assert translate_commit_error(KeyError("x"), executor=None) is None


def test_the_acquire_timeout_is_named_in_seconds() -> None:
    translated = translate_error(TimeoutError(), acquire_timeout=2.5)

    assert type(translated) is DatabaseTimeout
    assert translated.reason == "acquire"
    assert str(translated) == (
        "no database connection became free within 2.5 s "
        "(the pool is exhausted: more concurrent work than DB_POOL_MAX_SIZE)"
    )


# --- error details ---------------------------------------------------------------------


def test_a_foreign_key_error_names_the_user_it_was_given() -> None:
    user_id = uuid.uuid4()
    error = server_error("23503", n="tokens_user_id_fkey")

    with pytest.raises(UserNotFound) as caught, translate_errors(user_id=user_id):
        raise error

    assert caught.value.user_id == user_id
    assert str(user_id) in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_a_duplicate_address_error_keeps_the_address_out_of_its_message() -> None:
    with (
        pytest.raises(EmailAlreadyRegistered) as caught,
        translate_errors(email="Taken@Example.test"),
    ):
        raise server_error("23505", n="users_email_key_key")

    assert caught.value.email == "Taken@Example.test"
    assert "Taken" not in str(caught.value)


def test_a_data_error_names_the_column_or_value() -> None:
    with_column = translate_error(server_error("22021", c="display_name"))
    without = translate_error(server_error("22P05"))

    assert isinstance(with_column, InvalidInput) and with_column.field == "display_name"
    assert isinstance(without, InvalidInput) and without.field == "value"
    assert "22P05" in str(without)


def test_a_server_error_reports_to_the_unit_of_work_and_a_client_error_does_not() -> None:
    calls: list[str] = []

    with pytest.raises(DatabaseError), translate_errors(on_server_error=lambda: calls.append("x")):
        raise server_error("42P01")
    assert calls == ["x"]
    with pytest.raises(KeyError), translate_errors(on_server_error=lambda: calls.append("y")):
        raise KeyError("not the driver's")
    assert calls == ["x"]


# --- limits, at the limit and one past it (literals, not the module's constants) -------


def test_sixty_four_scopes_are_accepted_and_sixty_five_are_not() -> None:
    at_limit = tuple(f"scope:{n}" for n in range(64))

    assert token(scopes=at_limit).scopes == at_limit
    with pytest.raises(ValidationError, match="at most 64 scopes"):
        token(scopes=(*at_limit, "scope:64"))


def test_a_scope_of_two_hundred_characters_is_accepted_and_one_longer_is_not() -> None:
    assert token(scopes=("s" * 200,)).scopes == ("s" * 200,)
    with pytest.raises(ValidationError, match="at most 200"):
        token(scopes=("s" * 201,))


def test_a_ttl_of_exactly_3650_days_is_accepted_and_a_microsecond_more_is_not() -> None:
    assert token(ttl=timedelta(days=3650)).ttl == timedelta(days=3650)
    with pytest.raises(ValidationError, match="at most 3650 days"):
        token(ttl=timedelta(days=3650, microseconds=1))
    with pytest.raises(ValidationError, match="must be positive"):
        token(ttl=timedelta(0))
    assert token(ttl=timedelta(microseconds=1)).ttl == timedelta(microseconds=1)


def payload_of_bytes(size: int) -> dict[str, str]:
    """A payload whose compact UTF-8 JSON is exactly ``size`` bytes."""
    payload = {"k": "x" * (size - len('{"k":""}'))}
    assert len(json.dumps(payload, separators=(",", ":")).encode()) == size
    return payload


def test_the_largest_payload_is_65536_bytes_of_json() -> None:
    assert NewEvent(type="a.b", payload=payload_of_bytes(65536)).payload["k"]
    with pytest.raises(ValidationError, match="at most 65536 bytes"):
        NewEvent(type="a.b", payload=payload_of_bytes(65537))


def test_payload_bytes_are_counted_in_utf8_not_in_characters() -> None:
    # 21,844 three-byte characters: 65,532 bytes of text + 8 of JSON = 65,540 bytes.
    with pytest.raises(ValidationError, match="at most 65536 bytes"):
        NewEvent(type="a.b", payload={"k": "€" * 21844})


def nested(kind: str, depth: int) -> object:
    """``depth`` levels of dicts or lists, the top one a dict (payloads are objects)."""
    node: object = 1
    for _ in range(depth - 1):
        node = {"n": node} if kind == "dict" else [node]
    return {"n": node}


@pytest.mark.parametrize("kind", ["dict", "list"])
def test_payloads_nest_32_levels_deep_and_no_deeper_with_lists_as_with_dicts(kind: str) -> None:
    # The top object is level 1, the innermost value level depth + 1.
    assert check_payload(nested(kind, 31))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="deeper than 32 levels"):
        check_payload(nested(kind, 32))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="deeper than 32 levels"):
        check_payload(nested(kind, 200))  # type: ignore[arg-type]


def test_floats_below_two_to_the_53_are_accepted_and_from_there_on_refused() -> None:
    assert check_payload({"f": 9007199254740991.0, "g": -9007199254740991.0})
    for refused in (9007199254740992.0, -9007199254740992.0, 1e300):
        with pytest.raises(ValueError, match="smaller than 2\\*\\*53"):
            check_payload({"f": refused})


def test_integers_past_two_to_the_53_are_accepted_exactly() -> None:
    payload = {"i": 9007199254740993, "j": -9007199254740993, "big": 10**30}

    assert NewEvent(type="a.b", payload=payload).payload == payload


def test_strings_and_keys_in_payloads_refuse_nul_and_lone_surrogates() -> None:
    for payload, where in (
        ({"k": "a\x00b"}, "strings must not contain NUL"),
        ({"a\x00": 1}, "keys must not contain NUL"),
        ({"k": ["\ud800"]}, "strings must be valid Unicode"),
        ({"\udfff": 1}, "keys must be valid Unicode"),
    ):
        with pytest.raises(ValueError, match=where):
            check_payload(payload)


def test_a_lone_surrogate_is_refused_by_our_check_not_by_the_codec() -> None:
    # Our message, not Python's "surrogates not allowed": deleting the check fails this.
    with pytest.raises(ValueError) as caught:
        check_text("ok\ud800", min_length=1, max_length=10)

    assert str(caught.value) == (
        "must be valid Unicode text (it contains a lone surrogate, not UTF-8)"
    )


def test_text_lengths_are_inclusive_at_both_ends() -> None:
    assert check_text("abc", min_length=3, max_length=3) == "abc"
    with pytest.raises(ValueError, match="at least 3"):
        check_text("ab", min_length=3, max_length=5)
    with pytest.raises(ValueError, match="at most 3"):
        check_text("abcd", min_length=1, max_length=3)


class _NoOffset(tzinfo):
    """A time zone that does not know its offset: Python treats such times as naive."""

    def utcoffset(self, dt: datetime | None) -> None:
        return None


@pytest.mark.parametrize("naive", [datetime(2030, 1, 1), datetime(2030, 1, 1, tzinfo=_NoOffset())])
def test_a_time_without_an_offset_is_refused_as_not_timezone_aware(naive: datetime) -> None:
    with pytest.raises(ValueError) as caught:
        to_utc(naive)

    assert str(caught.value) == "must be timezone-aware"


def test_an_aware_time_is_given_back_in_utc_at_both_ends_of_the_range() -> None:
    plus_two = timezone(timedelta(hours=2))

    assert to_utc(datetime(2030, 1, 1, 2, tzinfo=plus_two)) == datetime(2030, 1, 1, tzinfo=UTC)
    assert to_utc(datetime(2030, 1, 1, 2, tzinfo=plus_two)).tzinfo is UTC
    assert to_utc(datetime(1, 1, 2, tzinfo=UTC)) == datetime(1, 1, 2, tzinfo=UTC)
    assert to_utc(datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)).year == 9999
    for outside in (
        datetime(1, 1, 1, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(9999, 12, 31, tzinfo=UTC),
    ):
        with pytest.raises(ValueError, match="must be between 0001-01-02"):
            to_utc(outside)


# --- each refusal says exactly what is wrong (messages are part of the contract) --------


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (
            check_text_3_5 := lambda v: check_text(v, min_length=3, max_length=5),
            "ab",
            "must be at least 3 characters long",
        ),
        (check_text_3_5, "abcdef", "must be at most 5 characters long"),
        (check_text_3_5, "a\x00b", "must not contain NUL characters"),
        (check_text_3_5, "a\x07b", "must not contain control characters"),
        (check_email, "nobody", "must be an e-mail address of the form local@domain"),
        (check_email, "@example.test", "must be an e-mail address of the form local@domain"),
        (
            check_email,
            "a" * 65 + "@example.test",
            "the part before @ must be at most 64 characters",
        ),
        (
            check_email,
            "a..b@example.test",
            "the part before @ has characters or dots that are not allowed",
        ),
        (
            check_email,
            "a@localhost",
            "the domain must be dot-separated labels of letters, digits and -",
        ),
        (check_display_name, "   ", "must not be blank"),
        (
            check_password_hash,
            "has space",
            "must be an encoded hash: printable ASCII without spaces",
        ),
        (
            check_password_hash,
            "h\u00e4sh",
            "must be an encoded hash: printable ASCII without spaces",
        ),
        (check_scopes, (" padded",), "each scope must be non-blank without surrounding spaces"),
        (check_scopes, ("a", "a"), "scopes must not repeat"),
        (check_scopes, tuple(str(n) for n in range(65)), "at most 64 scopes are allowed"),
        (check_ttl, timedelta(seconds=-1), "must be positive"),
        (check_ttl, timedelta(days=3651), "must be at most 3650 days"),
        (
            check_event_type,
            "Not.Lower",
            "must be two or more dot-separated words of a-z, 0-9 and _, "
            "each starting with a letter (e.g. user.registered)",
        ),
        (
            check_event_type,
            "single_word",
            "must be two or more dot-separated words of a-z, 0-9 and _, "
            "each starting with a letter (e.g. user.registered)",
        ),
        (check_payload, {"f": float("nan")}, "numbers must be finite (no NaN or infinity)"),
        (check_payload, {"f": [float("-inf")]}, "numbers must be finite (no NaN or infinity)"),
        (
            check_payload,
            {"f": 1e16},
            "floats must be smaller than 2**53 in magnitude to read back unchanged; "
            "send larger numbers as integers or strings",
        ),
        (
            check_payload,
            {"o": object()},
            "must be JSON: objects, arrays, strings, numbers, booleans, null",
        ),
        (
            check_payload,
            {"k": "\x00"},
            "strings must not contain NUL characters (jsonb cannot store them)",
        ),
        (
            check_payload,
            {"\x00": 1},
            "keys must not contain NUL characters (jsonb cannot store them)",
        ),
        (
            check_payload,
            {"k": "\ud800"},
            "strings must be valid Unicode text (it contains a lone surrogate)",
        ),
        (
            check_payload,
            {"\ud800": 1},
            "keys must be valid Unicode text (it contains a lone surrogate)",
        ),
        (check_payload, nested("list", 40), "must not nest deeper than 32 levels"),
        (check_payload, payload_of_bytes(65537), "must be at most 65536 bytes as JSON"),
    ],
)
def test_each_refusal_has_its_own_exact_message(
    check: Callable[[Any], object], value: object, message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        check(value)

    assert str(caught.value) == message


def test_a_valid_value_comes_back_unchanged_from_every_check() -> None:
    assert check_email("Some.One+tag@Mail.Example.test") == "Some.One+tag@Mail.Example.test"
    assert check_display_name(" Ada ") == " Ada "
    assert check_password_hash("$argon2id$v=19$m=65536") == "$argon2id$v=19$m=65536"
    assert check_scopes(("read", "write")) == ("read", "write")
    assert check_ttl(timedelta(days=1)) == timedelta(days=1)
    assert check_event_type("user.logged_in2") == "user.logged_in2"


def test_the_byte_limit_counts_compact_utf8_json_not_escaped_ascii() -> None:
    """Non-ASCII characters count their UTF-8 bytes (2 for "é", not the 6 of "\\u00e9"),
    and items are separated by a bare comma and colon."""
    frame = len('{"a":"","b":[1,2]}')
    payload = {"a": "é" * ((65536 - frame) // 2), "b": [1, 2]}
    assert len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()) == 65536

    assert check_payload(payload) is payload
    with pytest.raises(ValueError, match=r"^must be at most 65536 bytes as JSON$"):
        check_payload({**payload, "b": [1, 2, 3]})


def test_a_circular_payload_is_refused_as_too_deep() -> None:
    circular: dict[str, Any] = {}
    circular["self"] = circular

    with pytest.raises(ValueError, match=r"^must not nest deeper than 32 levels$"):
        check_payload(circular)


def test_a_one_character_password_hash_is_accepted() -> None:
    assert check_password_hash("x") == "x"
    with pytest.raises(ValueError):
        check_password_hash("")


def test_comparing_a_naive_time_with_the_range_says_it_must_be_aware() -> None:
    with pytest.raises(ValueError) as caught:
        check_timestamp(datetime(2030, 1, 1))

    assert str(caught.value) == "must be timezone-aware"


def test_values_read_from_the_database_that_are_not_naive_extremes_pass_unchanged() -> None:
    aware = datetime(2030, 1, 1, tzinfo=UTC)
    assert from_database(None) is None
    assert from_database("2030-01-01") == "2030-01-01"
    assert from_database(aware) is aware
    assert from_database(datetime.max) == datetime.max.replace(tzinfo=UTC)
    assert from_database(datetime.min) == datetime.min.replace(tzinfo=UTC)


def test_a_stored_time_with_another_offset_is_converted_not_relabelled() -> None:
    two_hours_east = datetime(2030, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))

    in_utc = stored_to_utc(two_hours_east)

    assert in_utc == datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
    assert in_utc.tzinfo is UTC and in_utc.hour == 10


def test_a_stored_time_at_offset_zero_comes_back_labelled_utc() -> None:
    zero = datetime(2030, 1, 1, 12, 0, tzinfo=timezone(timedelta(0), "GMT"))
    utc = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    assert stored_to_utc(zero) == utc and stored_to_utc(zero).tzinfo is UTC
    assert stored_to_utc(utc) == utc and stored_to_utc(utc).tzinfo is UTC


def test_a_stored_time_that_cannot_be_expressed_in_utc_is_refused_with_the_range() -> None:
    an_hour_east_of_year_one = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))

    with pytest.raises(ValueError) as caught:
        stored_to_utc(an_hour_east_of_year_one)

    assert str(caught.value) == (
        "must be between 0001-01-02T00:00:00Z and 9999-12-30T23:59:59.999999Z"
    )
