"""From generated rows to the domain's read models, validating each row once.

The generated functions validate every row into their row model (``User``, ``Token``,
``Event`` of :mod:`identity_store._generated.models`, whose enums are the domain's).
The domain models here are what callers get: the same values (a password hash wrapped
in a ``SecretStr``), minus what stays inside the package (a token's hash, an event's
transaction id). Building them runs no second
validation: the values are copied over as they are.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr

from identity_store._generated import models as rows
from identity_store._generated.events import AppendEventRow
from identity_store.domain.models import Event, Token, User

__all__ = ["event_from_row", "token_from_row", "user_from_row"]

_M = TypeVar("_M", bound=BaseModel)

_USER_FIELDS = tuple(User.model_fields)
_TOKEN_FIELDS = tuple(Token.model_fields)
_EVENT_FIELDS = tuple(Event.model_fields)


def _extra_by_copy(row_model: type[BaseModel], fields: tuple[str, ...]) -> tuple[str, ...] | None:
    """The row fields a domain model lacks, when dropping them from a copy of the row's
    ``__dict__`` leaves exactly the domain fields in order (a C-level copy is cheaper
    than picking the fields one by one); None when it does not."""
    row_fields = tuple(row_model.model_fields)
    extra = tuple(name for name in row_fields if name not in fields)
    kept = tuple(name for name in row_fields if name not in extra)
    return extra if kept == fields else None


_USER_EXTRA = _extra_by_copy(rows.User, _USER_FIELDS)
_TOKEN_EXTRA = _extra_by_copy(rows.Token, _TOKEN_FIELDS)
_EVENT_EXTRA = _extra_by_copy(rows.Event, _EVENT_FIELDS)


def _values(
    row: BaseModel, fields: tuple[str, ...], extra: tuple[str, ...] | None
) -> dict[str, Any]:
    if extra is None:
        stored = row.__dict__
        return {name: stored[name] for name in fields}
    values = row.__dict__.copy()
    for name in extra:
        del values[name]
    return values


def _trusted(model: type[_M], values: dict[str, Any]) -> _M:
    """Return a ``model`` holding ``values``, which a validation has already checked.

    What ``model_construct`` does, minus its per-field default handling (every field
    is present here), at half its cost.
    """
    built = model.__new__(model)
    object.__setattr__(built, "__dict__", values)
    object.__setattr__(built, "__pydantic_fields_set__", set(values))
    object.__setattr__(built, "__pydantic_extra__", None)
    object.__setattr__(built, "__pydantic_private__", None)
    return built


def user_from_row(row: rows.User) -> User:
    """Return the domain ``User`` of a validated row."""
    values = _values(row, _USER_FIELDS, _USER_EXTRA)
    if values["password_hash"] is not None:
        values["password_hash"] = SecretStr(values["password_hash"])
    return _trusted(User, values)


def token_from_row(row: rows.Token) -> Token:
    """Return the domain ``Token`` of a validated row (without its hash)."""
    values = _values(row, _TOKEN_FIELDS, _TOKEN_EXTRA)
    values["scopes"] = tuple(values["scopes"])
    return _trusted(Token, values)


def event_from_row(row: rows.Event | AppendEventRow) -> Event:
    """Return the domain ``Event`` of a validated row (without its transaction id).
    ``AppendEventRow`` has the table's columns in the table's order (a test holds it)."""
    return _trusted(Event, _values(row, _EVENT_FIELDS, _EVENT_EXTRA))
