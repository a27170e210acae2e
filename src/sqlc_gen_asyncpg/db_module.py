"""The fixed text of the generated ``db.py``: executor protocols and connection setup."""

DB_MODULE = '''"""What generated functions run on, and the per-connection setup they rely on."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Iterable, Sequence
from typing import Any, Protocol

import asyncpg
from asyncpg.cursor import CursorFactory


class Executor(Protocol):
    """Runs queries: an ``asyncpg.Connection``, an ``asyncpg.Pool`` or a pooled connection.

    Like sqlc's ``DBTX`` for Go: the same generated function runs on a pool (one
    statement per acquired connection), a connection, or a connection inside a
    transaction.
    """

    async def execute(
        self,
        query: str,
        *args: object,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> str: ...

    async def executemany(
        self,
        command: str,
        args: Iterable[Sequence[object]],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> None: ...

    async def fetch(
        self,
        query: str,
        *args: object,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[asyncpg.Record]: ...

    async def fetchrow(
        self,
        query: str,
        *args: object,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> asyncpg.Record | None: ...

    async def fetchval(
        self,
        query: str,
        *args: object,
        column: int = 0,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any: ...

    async def copy_records_to_table(
        self,
        table_name: str,
        *,
        records: Iterable[Sequence[object]] | AsyncIterable[Sequence[object]],
        columns: Iterable[str] | None = None,
        schema_name: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
        where: str | None = None,
    ) -> str: ...


class CursorExecutor(Protocol):
    """Opens server-side cursors: an ``asyncpg.Connection`` or a pooled connection.

    A pool cannot: a cursor lives inside one connection's transaction.
    """

    def cursor(
        self,
        query: str,
        *args: object,
        prefetch: int | None = None,
        timeout: float | None = None,
    ) -> CursorFactory[asyncpg.Record]: ...


def rows_affected(status: str) -> int:
    """Return the row count of a command status such as ``UPDATE 3`` or ``INSERT 0 1``."""
    count = status.rpartition(" ")[2]
    return int(count) if count.isdigit() else 0


def _encode_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


async def init_connection(conn: asyncpg.Connection) -> None:
    """Install the codecs the generated code relies on, on one new connection.

    ``json`` and ``jsonb`` values are decoded to Python values (``dict``, ``list``,
    ``str``, ``int``, ``float``, ``bool``, ``None``) and encoded from them, instead of
    asyncpg's default of JSON text; ``bit`` and ``varbit`` travel as their text form
    (``"1010"``). Use it for every connection the generated functions see::

        pool = await asyncpg.create_pool(dsn, init=init_connection)
        conn = await asyncpg.connect(dsn)
        await init_connection(conn)
    """
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name,
            schema="pg_catalog",
            encoder=_encode_json,
            decoder=json.loads,
            format="text",
        )
    for name in ("bit", "varbit"):
        await conn.set_type_codec(
            name,
            schema="pg_catalog",
            encoder=str,
            decoder=str,
            format="text",
        )
'''
