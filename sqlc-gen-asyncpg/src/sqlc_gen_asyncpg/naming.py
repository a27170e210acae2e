"""Python names from SQL names: snake_case, PascalCase, singular table names."""

import keyword
import re

_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_IDENTIFIER = re.compile(r"[^0-9A-Za-z_]+")

# Words whose plural is not the singular plus an ending rule below.
_IRREGULAR_PLURALS = {
    "children": "child",
    "data": "data",
    "feet": "foot",
    "geese": "goose",
    "indices": "index",
    "matrices": "matrix",
    "men": "man",
    "mice": "mouse",
    "news": "news",
    "people": "person",
    "series": "series",
    "species": "species",
    "teeth": "tooth",
    "women": "woman",
}


def snake(name: str) -> str:
    """Return ``name`` as a snake_case identifier (``GetUserByID`` → ``get_user_by_id``)."""
    spaced = _WORD_BOUNDARY.sub("_", name)
    cleaned = _NOT_IDENTIFIER.sub("_", spaced).strip("_").lower()
    cleaned = re.sub(r"_+", "_", cleaned)
    if not cleaned:
        cleaned = "_"
    if cleaned[0].isdigit():
        cleaned = "_" + cleaned
    return cleaned


def field_name(name: str) -> str:
    """Return ``name`` as a field or argument name: snake_case, never starting with "_",
    which pydantic and NamedTuple refuse (``1st`` → ``n_1st``)."""
    base = snake(name)
    return ("n" + base).rstrip("_") if base.startswith("_") else base


def upper_snake(name: str) -> str:
    """Return ``name`` as an UPPER_SNAKE constant name."""
    return snake(name).upper()


def pascal(name: str) -> str:
    """Return ``name`` as a PascalCase class name (``user_status`` → ``UserStatus``)."""
    words = snake(name).split("_")
    joined = "".join(word[:1].upper() + word[1:] for word in words if word)
    if not joined or joined[0].isdigit():
        joined = "T" + joined
    return joined


def singular(word: str) -> str:
    """Return the singular of an English table name's last word, as sqlc does."""
    head, _, last = word.rpartition("_")
    prefix = head + "_" if head else ""
    lower = last.lower()
    if lower in _IRREGULAR_PLURALS:
        return prefix + _IRREGULAR_PLURALS[lower]
    for ending, replacement in (
        ("ies", "y"),
        ("sses", "ss"),
        ("shes", "sh"),
        ("ches", "ch"),
        ("xes", "x"),
        ("zzes", "zz"),
        ("uses", "us"),
        ("ss", "ss"),
        ("us", "us"),
        ("is", "is"),
        ("s", ""),
    ):
        if lower.endswith(ending) and len(lower) > len(ending):
            return prefix + last[: len(last) - len(ending)] + replacement
    return word


def safe_identifier(name: str, reserved: frozenset[str] = frozenset()) -> str:
    """Return ``name`` with a trailing underscore if it is a keyword or reserved."""
    if keyword.iskeyword(name) or name in reserved:
        return name + "_"
    return name
