"""Records for the reads that need more than the domain's model of a row.

Most generated functions return the domain's read models themselves (``sqlc.yaml``
overrides the rows of ``users``, ``tokens`` and ``events`` with ``User``, ``Token`` and
``Event``): one validation per row, nothing to convert. Two reads need the records
instead: the append of one event, whose CTE sqlc cannot tie to the events table (so
its function returns a row model of its own), and the event stream, whose cursor is
the last row's ``tx_id``, which ``Event`` leaves out. For them :func:`fetch` runs the
generated function on an executor that keeps asyncpg's records and hands the
function none: a ``:one`` then returns None and a ``:many`` validates an empty list.
The records are validated once, by name, into the domain model (:class:`Reader`).
``tests/unit/test_records.py`` fails if a generated function stops working that way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from types import GenericAlias
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

import asyncpg
from pydantic import BaseModel, TypeAdapter

from identity_store._generated.db import Executor

__all__ = ["Reader", "fetch"]

P = ParamSpec("P")
M = TypeVar("M", bound=BaseModel)


class _Keeper:
    """Runs statements on ``db`` and keeps the records instead of returning them."""

    __slots__ = ("_db", "records")

    def __init__(self, db: Executor) -> None:
        self._db = db
        self.records: Sequence[asyncpg.Record] = ()

    async def fetchrow(self, query: str, *args: object) -> None:
        row = await self._db.fetchrow(query, *args)
        self.records = () if row is None else (row,)

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        self.records = await self._db.fetch(query, *args)
        return []


async def fetch(
    query: Callable[Concatenate[Executor, P], Awaitable[object]],
    db: Executor,
    *args: P.args,
    **kwargs: P.kwargs,
) -> Sequence[asyncpg.Record]:
    """Run the generated ``:one`` or ``:many`` function ``query`` on ``db``; return
    the records it fetched, unvalidated (none, one or many)."""
    keeper = _Keeper(db)
    await query(cast(Executor, keeper), *args, **kwargs)
    return keeper.records


class Reader(Generic[M]):
    """Validates records into ``model`` by column name: one, or a list in one call."""

    __slots__ = ("_list", "_model")

    def __init__(self, model: type[M]) -> None:
        self._model = model
        of_list: Any = GenericAlias(list, (model,))
        self._list: TypeAdapter[list[M]] = TypeAdapter(of_list)

    def one(self, records: Sequence[asyncpg.Record]) -> M | None:
        """The model of the first record, or None when there is none."""
        return self._model.model_validate(dict(records[0])) if records else None

    def all(self, records: Sequence[asyncpg.Record]) -> list[M]:
        """The models of all records, in order."""
        return self._list.validate_python(map(dict, records))
