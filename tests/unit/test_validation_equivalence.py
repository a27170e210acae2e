"""The fast paths of identity_store.domain.validation decide exactly as the plain
checks they replaced: the same values accepted, the same refused with the same message.

``_reference`` below is the plain version (one ``unicodedata.category`` call per
character, ``json.dumps`` to measure every payload), kept here as the oracle.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity_store.domain import validation

pytestmark = pytest.mark.unit

_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _reference_characters(value: str) -> str | None:
    for char in value:
        category = unicodedata.category(char)
        if char == "\x00":
            return "must not contain NUL characters"
        if category == "Cc":
            return "must not contain control characters"
        if category == "Cs":
            return "must be valid Unicode text (it contains a lone surrogate, not UTF-8)"
    return None


def reference_text(value: str, *, min_length: int, max_length: int) -> str:
    if len(value) < min_length:
        raise ValueError(f"must be at least {min_length} characters long")
    if len(value) > max_length:
        raise ValueError(f"must be at most {max_length} characters long")
    problem = _reference_characters(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def reference_email(value: str) -> str:
    reference_text(value, min_length=3, max_length=254)
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise ValueError("must be an e-mail address of the form local@domain")
    if len(local) > 64:
        raise ValueError("the part before @ must be at most 64 characters")
    if not _EMAIL_LOCAL.fullmatch(local):
        raise ValueError("the part before @ has characters or dots that are not allowed")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise ValueError("the domain must be dot-separated labels of letters, digits and -")
    return value


def _reference_json_string(value: str, where: str) -> None:
    if "\x00" in value:
        raise ValueError(f"{where} must not contain NUL characters (jsonb cannot store them)")
    if any(unicodedata.category(char) == "Cs" for char in value):
        raise ValueError(f"{where} must be valid Unicode text (it contains a lone surrogate)")


def reference_payload(value: Mapping[str, Any]) -> Mapping[str, Any]:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > validation.PAYLOAD_MAX_DEPTH:
            raise ValueError(f"must not nest deeper than {validation.PAYLOAD_MAX_DEPTH} levels")
        if isinstance(node, Mapping):
            for key, item in node.items():
                _reference_json_string(str(key), "keys")
                stack.append((item, depth + 1))
        elif isinstance(node, list | tuple):
            stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, str):
            _reference_json_string(node, "strings")
        elif isinstance(node, float) and not math.isfinite(node):
            raise ValueError("numbers must be finite (no NaN or infinity)")
        elif isinstance(node, float) and abs(node) >= float(2**53):
            raise ValueError(
                "floats must be smaller than 2**53 in magnitude to read back unchanged; "
                "send larger numbers as integers or strings"
            )
    try:
        encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except TypeError as exc:
        raise ValueError("must be JSON: objects, arrays, strings, numbers, booleans, null") from exc
    if len(encoded.encode("utf-8")) > validation.PAYLOAD_MAX_BYTES:
        raise ValueError(f"must be at most {validation.PAYLOAD_MAX_BYTES} bytes as JSON")
    return value


def outcome(check: Callable[[Any], object], value: object) -> str:
    try:
        check(value)
    except ValueError as exc:
        return f"refused: {exc}"
    return "accepted"


# Every kind of character the checks care about, not only what text() draws often.
SPECIAL = st.sampled_from(
    [
        "\x00", "\x01", "\t", "\n", "\x1f", "\x7f", "\x80", "\x9f", " ", "\xa0", "\u200b",
        "\u200e", "\u202e", "\u2066", "\u2028", "\u2029", "\ufeff", "\ud800", "\udbff",
        "\udc00", "\udfff", "\ue000", "\U0010ffff", "\U0001f600", "\u0378", "é", "ß", "K",
        "\u212a", "@", ".", "-", '"', "\\", "a", "Z", "0",
    ]
)  # fmt: skip
CHARS = st.one_of(SPECIAL, st.characters(codec=None), st.characters(max_codepoint=127))
TEXT = st.lists(CHARS, max_size=40).map("".join)
LONG_TEXT = st.integers(min_value=0, max_value=400).flatmap(
    lambda n: st.tuples(st.just("a" * n), TEXT).map("".join)
)
EMAILS = st.one_of(
    TEXT,
    st.tuples(TEXT, st.sampled_from(["@", "@@", ".", "@x."]), TEXT).map("".join),
    st.emails().map(str),
    st.tuples(
        st.from_regex(_EMAIL_LOCAL, fullmatch=True),
        st.lists(st.from_regex(_DOMAIN_LABEL, fullmatch=True), min_size=1, max_size=4),
    ).map(lambda parts: parts[0] + "@" + ".".join(parts[1])),
    st.integers(min_value=55, max_value=70).map(lambda n: "a" * n + "@example.com"),
    st.integers(min_value=230, max_value=260).map(lambda n: "a@" + "b" * (n - 6) + ".com"),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([2.0**53, -(2.0**53), 2.0**53 - 1, 1e300, -0.0]),
    TEXT,
)
PAYLOADS = st.dictionaries(
    st.one_of(TEXT, st.integers(), st.none()),
    st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.lists(inner, max_size=4).map(tuple),
            st.dictionaries(TEXT, inner, max_size=4),
        ),
        max_leaves=30,
    ),
    max_size=6,
)
EQUIVALENCE = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


@EQUIVALENCE
@given(value=st.one_of(TEXT, LONG_TEXT), lengths=st.sampled_from([(0, 1000), (1, 200), (3, 254)]))
def test_check_text_decides_as_the_plain_check(value: str, lengths: tuple[int, int]) -> None:
    low, high = lengths

    def fast(v: str) -> object:
        return validation.check_text(v, min_length=low, max_length=high)

    def plain(v: str) -> object:
        return reference_text(v, min_length=low, max_length=high)

    assert outcome(fast, value) == outcome(plain, value)


@EQUIVALENCE
@given(value=EMAILS)
def test_check_email_decides_as_the_plain_check(value: str) -> None:
    assert outcome(validation.check_email, value) == outcome(reference_email, value)


@EQUIVALENCE
@given(value=PAYLOADS)
def test_check_payload_decides_as_the_plain_check(value: dict[Any, Any]) -> None:
    assert outcome(validation.check_payload, value) == outcome(reference_payload, value)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


@pytest.mark.parametrize(
    "value",
    [
        # Around the size limit: ASCII, escapes that grow, multi-byte text.
        *({"s": "x" * n} for n in range(65_526, 65_534)),
        *({"s": "\x01" * n} for n in (10_920, 10_921, 10_922)),
        *({"s": "é" * n} for n in range(32_761, 32_767)),
        *({"s": "\U0001f600" * n} for n in (16_381, 16_382, 16_383)),
        {"s": ['"'] * 13_000},
        {"n": [2**200] * 1000},
        {"f": [-1.2345678901234567e-300] * 2700},
        # Depth and types JSON has none of.
        _nested(31),
        _nested(32),
        _nested(33),
        {"k": {1: "a", None: "b", 2.5: "c"}},
        {"k": {(1, 2): "tuple key"}},
        {"set": {1, 2}},
        {"bytes": b"x"},
        {"ok": ("a", ["b"], {"c": None})},
    ],
    ids=lambda value: f"{len(str(value))}-chars",
)
def test_check_payload_decides_as_the_plain_check_at_the_edges(value: dict[Any, Any]) -> None:
    assert outcome(validation.check_payload, value) == outcome(reference_payload, value)


def test_every_code_point_is_judged_as_by_unicodedata() -> None:
    # isprintable() and unicodedata come from one Unicode database: hold them together.
    for code in range(0x110000):
        char = chr(code)
        assert validation._problem_with_characters(char) == _reference_characters(char), hex(code)
