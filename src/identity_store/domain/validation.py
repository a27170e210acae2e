"""Checks applied to input before it reaches the database.

Each check raises ``ValueError`` with a message that says what is wrong, without
repeating the value (it may be a secret or personal data). Used as pydantic
validators, so the resulting ``ValidationError`` names the field.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any

__all__ = [
    "EMAIL_MAX_LENGTH",
    "EVENT_TYPE_MAX_LENGTH",
    "PAYLOAD_MAX_BYTES",
    "PAYLOAD_MAX_DEPTH",
    "TIMESTAMP_MAX",
    "TIMESTAMP_MIN",
    "check_display_name",
    "check_email",
    "check_event_type",
    "check_password_hash",
    "check_payload",
    "check_scopes",
    "check_text",
    "check_timestamp",
    "check_ttl",
    "check_unicode",
    "email_key",
    "from_database",
    "stored_to_utc",
    "to_utc",
]

EMAIL_MIN_LENGTH = 3
EMAIL_MAX_LENGTH = 254
"""RFC 5321's limit on a forward path; the schema allows up to 320."""
EMAIL_LOCAL_MAX_LENGTH = 64
DISPLAY_NAME_MIN_LENGTH = 1
DISPLAY_NAME_MAX_LENGTH = 200
PASSWORD_HASH_MAX_LENGTH = 1024
EVENT_TYPE_MAX_LENGTH = 200
SCOPE_MAX_LENGTH = 200
SCOPES_MAX_COUNT = 64
TOKEN_TTL_MAX = timedelta(days=3650)
PAYLOAD_MAX_BYTES = 64 * 1024
"""Largest event payload accepted, measured as compact UTF-8 JSON."""
PAYLOAD_MAX_DEPTH = 32
_FLOAT_EXACT_LIMIT = float(2**53)

TIMESTAMP_MIN = datetime(1, 1, 2, tzinfo=UTC)
"""Earliest instant accepted for storage: 0001-01-02T00:00:00Z."""
TIMESTAMP_MAX = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
"""Latest instant accepted for storage: 9999-12-30T23:59:59.999999Z.

The range is Python's (years 1 to 9999) less a day at each end. asyncpg writes
Python's very first and last instants as PostgreSQL's -infinity and infinity, which
read back as naive datetimes; an instant within a day of either end overflows when
shown in some time zone. Every instant of this range is stored exactly and reads back
as itself in any zone. The schema's ``*_range`` checks hold the columns to it too,
but admit -infinity and infinity, which older versions stored."""

_TIMESTAMP_RANGE = "must be between 0001-01-02T00:00:00Z and 9999-12-30T23:59:59.999999Z"

_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# An address every rule of check_email accepts, but for the lengths: one match instead
# of four, and the rules one by one only for the rest (to say which one fails).
_ADDRESS = re.compile(
    rf"{_EMAIL_LOCAL.pattern}@{_DOMAIN_LABEL.pattern}(?:\.{_DOMAIN_LABEL.pattern})+"
)
_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")


def _problem_with_characters(value: str) -> str | None:
    # Printable text (str.isprintable, one C loop) holds no character of Unicode's
    # "Other" categories, so neither Cc (NUL included) nor Cs: only other text needs
    # the walk that names its first problem.
    if value.isprintable():
        return None
    for char in value:
        category = unicodedata.category(char)
        if char == "\x00":
            return "must not contain NUL characters"
        if category == "Cc":
            return "must not contain control characters"
        if category == "Cs":
            return "must be valid Unicode text (it contains a lone surrogate, not UTF-8)"
    return None


def check_text(value: str, *, min_length: int, max_length: int) -> str:
    """Return ``value`` unchanged if it is printable text of an allowed length.

    Raises:
        ValueError: too short, too long, or holding NUL, control characters or
            lone surrogates (which cannot be encoded as UTF-8).
    """
    if len(value) < min_length:
        raise ValueError(f"must be at least {min_length} characters long")
    if len(value) > max_length:
        raise ValueError(f"must be at most {max_length} characters long")
    problem = _problem_with_characters(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def check_email(value: str) -> str:
    """Return ``value`` unchanged if it looks like a deliverable address.

    A deliberately small rule set: ``local@domain``, ASCII only (internationalised
    domains in their ``xn--`` form), dot-atom local part of at most 64 characters,
    a domain of at least two labels. Case is kept; comparisons ignore ASCII case
    (see :func:`email_key`).

    Raises:
        ValueError: the address does not follow those rules.
    """
    if (
        len(value) <= EMAIL_MAX_LENGTH
        and _ADDRESS.fullmatch(value)
        and value.index("@") <= EMAIL_LOCAL_MAX_LENGTH
    ):
        return value
    check_text(value, min_length=EMAIL_MIN_LENGTH, max_length=EMAIL_MAX_LENGTH)
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise ValueError("must be an e-mail address of the form local@domain")
    if len(local) > EMAIL_LOCAL_MAX_LENGTH:
        raise ValueError(f"the part before @ must be at most {EMAIL_LOCAL_MAX_LENGTH} characters")
    if not _EMAIL_LOCAL.fullmatch(local):
        raise ValueError("the part before @ has characters or dots that are not allowed")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise ValueError("the domain must be dot-separated labels of letters, digits and -")
    return value


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def email_key(address: str) -> str:
    """Return what makes two e-mail addresses the same account: the address with the
    ASCII letters A-Z lowered and every other character kept as it is.

    This is the one definition of e-mail equivalence (the schema's ``users.email_key``
    column computes the same with ``lower(email COLLATE "C")``, which is independent of
    the server's locale). Deliberately not ``str.lower``, ``casefold`` or NFKC: they map
    other characters onto ASCII letters (the Kelvin sign U+212A onto ``k``, ``İ`` onto
    ``i̇``, the long s onto ``s``, fullwidth letters onto ASCII), so a lookup spelled
    with them would find someone else's account. Registration accepts ASCII addresses
    only (see :func:`check_email`), so such look-alikes can never be registered either.
    """
    return address.translate(_ASCII_LOWER)


def check_display_name(value: str) -> str:
    """Return ``value`` unchanged if it is 1 to 200 printable characters, not all blank."""
    check_text(value, min_length=DISPLAY_NAME_MIN_LENGTH, max_length=DISPLAY_NAME_MAX_LENGTH)
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def check_password_hash(value: str) -> str:
    """Return ``value`` unchanged if it looks like an encoded hash (printable ASCII)."""
    check_text(value, min_length=1, max_length=PASSWORD_HASH_MAX_LENGTH)
    if not value.isascii() or not value.isprintable() or " " in value:
        raise ValueError("must be an encoded hash: printable ASCII without spaces")
    return value


def check_scopes(value: tuple[str, ...]) -> tuple[str, ...]:
    """Return ``value`` unchanged if it holds distinct, non-blank, printable scopes."""
    if len(value) > SCOPES_MAX_COUNT:
        raise ValueError(f"at most {SCOPES_MAX_COUNT} scopes are allowed")
    for scope in value:
        check_text(scope, min_length=1, max_length=SCOPE_MAX_LENGTH)
        if not scope.strip() or scope != scope.strip():
            raise ValueError("each scope must be non-blank without surrounding spaces")
    if len(set(value)) != len(value):
        raise ValueError("scopes must not repeat")
    return value


def check_ttl(value: timedelta) -> timedelta:
    """Return ``value`` if it is positive and at most ten years."""
    if value <= timedelta(0):
        raise ValueError("must be positive")
    if value > TOKEN_TTL_MAX:
        raise ValueError(f"must be at most {TOKEN_TTL_MAX.days} days")
    return value


def check_event_type(value: str) -> str:
    """Return ``value`` if it is dotted lower-case words, such as ``user.registered``."""
    check_text(value, min_length=3, max_length=EVENT_TYPE_MAX_LENGTH)
    if not _EVENT_TYPE.fullmatch(value):
        raise ValueError(
            "must be two or more dot-separated words of a-z, 0-9 and _, "
            "each starting with a letter (e.g. user.registered)"
        )
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _check_json_string(value: str, where: str) -> None:
    if "\x00" in value:
        raise ValueError(f"{where} must not contain NUL characters (jsonb cannot store them)")
    if not value.isascii() and _SURROGATE.search(value):
        raise ValueError(f"{where} must be valid Unicode text (it contains a lone surrogate)")


def _check_float(value: float) -> None:
    if not math.isfinite(value):
        raise ValueError("numbers must be finite (no NaN or infinity)")
    if abs(value) >= _FLOAT_EXACT_LIMIT:
        # jsonb keeps numbers as decimals and gives 1e300 back as the integer
        # 10**300, which is not the float that went in.
        raise ValueError(
            "floats must be smaller than 2**53 in magnitude to read back unchanged; "
            "send larger numbers as integers or strings"
        )


def check_payload(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return ``value`` if PostgreSQL's jsonb can store it and it is small enough.

    Walks the structure without recursion: at most :data:`PAYLOAD_MAX_DEPTH` levels,
    no NUL or lone surrogate in keys and strings, no NaN or infinity, no float of
    2**53 or more in magnitude (jsonb would give it back as an integer), and at most
    :data:`PAYLOAD_MAX_BYTES` bytes once serialised.
    """
    # While every node is a plain dict (of str keys), list, str, int, float, bool or
    # None, the walk adds up a bound of the encoded size (6 bytes a character: the
    # longest escape, and more than UTF-8's 4; a float's repr takes at most 24): a
    # payload whose bound fits is not serialised here, only once, on its way to the
    # server. Anything else is serialised and measured.
    bound = 0
    plain = True
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > PAYLOAD_MAX_DEPTH:
            raise ValueError(f"must not nest deeper than {PAYLOAD_MAX_DEPTH} levels")
        kind = type(node)
        if kind is str:
            if "\x00" in node or not node.isascii():  # type: ignore[operator, attr-defined]
                _check_json_string(node, "strings")  # type: ignore[arg-type]
            bound += 6 * len(node) + 3  # type: ignore[arg-type]
        elif kind is int:
            bound += node.bit_length() // 3 + 3  # type: ignore[attr-defined]
        elif kind is bool or node is None:
            bound += 6
        elif kind is float:
            _check_float(node)  # type: ignore[arg-type]
            bound += 25
        elif kind is dict:
            for key in node:  # type: ignore[attr-defined]
                if type(key) is str:
                    if "\x00" in key or not key.isascii():
                        _check_json_string(key, "keys")
                    bound += 6 * len(key) + 4
                else:
                    _check_json_string(str(key), "keys")
                    plain = False
            bound += 2
            stack.extend(zip(node.values(), repeat(depth + 1)))  # type: ignore[attr-defined]
        elif kind is list:
            bound += 2
            stack.extend(zip(node, repeat(depth + 1)))  # type: ignore[call-overload]
        else:
            plain = False
            if isinstance(node, Mapping):
                for key, item in node.items():
                    _check_json_string(str(key), "keys")
                    stack.append((item, depth + 1))
            elif isinstance(node, list | tuple):
                stack.extend((item, depth + 1) for item in node)
            elif isinstance(node, str):
                _check_json_string(node, "strings")
            elif isinstance(node, float):
                _check_float(node)
    if plain and bound <= PAYLOAD_MAX_BYTES:
        return value
    # The walk has refused NaN and infinity, and a structure that contains itself (as too
    # deep), so encoding can only fail on a value JSON has no type for.
    try:
        encoded = _JSON.encode(value)
    except TypeError as exc:
        raise ValueError("must be JSON: objects, arrays, strings, numbers, booleans, null") from exc
    if len(encoded.encode("utf-8")) > PAYLOAD_MAX_BYTES:
        raise ValueError(f"must be at most {PAYLOAD_MAX_BYTES} bytes as JSON")
    return value


def to_utc(value: datetime) -> datetime:
    """Return an aware ``value`` converted to UTC.

    Raises:
        ValueError: ``value`` is naive (no time zone) or outside
            :data:`TIMESTAMP_MIN` .. :data:`TIMESTAMP_MAX`.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must be timezone-aware")
    return check_timestamp(value)


def check_timestamp(value: datetime) -> datetime:
    """Return the aware ``value`` in UTC if it lies within :data:`TIMESTAMP_MIN` ..
    :data:`TIMESTAMP_MAX`.

    Raises:
        ValueError: it does not (or it is naive).
    """
    try:
        # Comparing aware datetimes never overflows; converting one near year 1 or
        # 9999 to UTC can.
        in_range = TIMESTAMP_MIN <= value <= TIMESTAMP_MAX
    except TypeError as exc:
        raise ValueError("must be timezone-aware") from exc
    if not in_range:
        raise ValueError(_TIMESTAMP_RANGE)
    return value.astimezone(UTC)


def from_database(value: object) -> object:
    """Return a timestamp read from the database as an aware datetime.

    asyncpg reads PostgreSQL's ``infinity`` and ``-infinity`` as Python's naive last
    and first instants; older versions of this package stored those for the instants
    9999-12-31T23:59:59.999999Z and 0001-01-01T00:00:00Z, which are given back. Other
    values pass through unchanged.
    """
    if isinstance(value, datetime) and value.tzinfo is None:
        if value == datetime.max:
            return datetime.max.replace(tzinfo=UTC)
        if value == datetime.min:
            return datetime.min.replace(tzinfo=UTC)
    return value


def stored_to_utc(value: datetime) -> datetime:
    """Return a stored, aware ``value`` in UTC (it already is, as asyncpg reads it).

    Raises:
        ValueError: it is too close to year 1 or 9999 to be expressed in UTC.
    """
    if value.utcoffset() == timedelta(0):
        return value if value.tzinfo is UTC else value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(_TIMESTAMP_RANGE) from exc


def check_unicode(value: str) -> str:
    """Return ``value`` unchanged if it can be encoded as UTF-8, for text whose length
    and characters are otherwise free (passwords, token secrets).

    Raises:
        ValueError: it holds a lone surrogate.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it contains a lone surrogate)") from None
    return value
