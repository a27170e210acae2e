"""What generated functions run on, and the per-connection setup they rely on."""

from __future__ import annotations

import json  # [json]
from collections.abc import AsyncIterable, Iterable, Sequence
from typing import Any, Protocol

import asyncpg
from asyncpg.cursor import CursorFactory  # [cursor]


class Executor(Protocol):
    """Runs queries: an ``asyncpg.Connection`` or ``Pool``, or a pooled connection.

    Like sqlc's ``DBTX`` for Go: the same generated function runs on a pool (one
    statement per acquired connection), a connection, or a connection inside a
    transaction.
    """

    async def execute(
        self,
        query: str,
        *args: object,
        timeout: float | None = None,
    ) -> str: ...

    async def executemany(
        self,
        command: str,
        args: Iterable[Sequence[object]],
        *,
        timeout: float | None = None,
    ) -> None: ...

    async def fetch(
        self,
        query: str,
        *args: object,
        timeout: float | None = None,
    ) -> list[asyncpg.Record]: ...

    async def fetchrow(
        self,
        query: str,
        *args: object,
        timeout: float | None = None,
    ) -> asyncpg.Record | None: ...

    async def fetchval(
        self,
        query: str,
        *args: object,
        column: int = 0,
        timeout: float | None = None,
    ) -> Any: ...

    async def copy_records_to_table(
        self,
        table_name: str,
        *,
        records: Iterable[Sequence[object]] | AsyncIterable[Sequence[object]],
        columns: Iterable[str] | None = None,
        schema_name: str | None = None,
        timeout: float | None = None,
        where: str | None = None,
    ) -> str: ...


# [cursor]
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


# [/cursor]
# [rows_affected]
def rows_affected(status: str) -> int:
    """Return the row count of a command status (``UPDATE 3``, ``INSERT 0 1``)."""
    count = status.rpartition(" ")[2]
    return int(count) if count.isdigit() else 0


# [/rows_affected]
# [json]
# One encoder for every value: json.dumps with options builds a new one per call.
_JSON = json.JSONEncoder(separators=(",", ":"))


def _encode_json(value: object) -> bytes:
    return _JSON.encode(value).encode()


def _encode_jsonb(value: object) -> bytes:
    # jsonb's binary form is a version byte (1) and the JSON text.
    return b"\x01" + _encode_json(value)


def _decode_jsonb(data: bytes) -> Any:
    return json.loads(data[1:])


# [/json]
# [bits]
def _encode_bits(value: str) -> bytes:
    # bit and varbit travel as a 32-bit length in bits, then the bits, padded to bytes.
    size = -(-len(value) // 8)
    bits = int(value.ljust(size * 8, "0") or "0", 2)
    return len(value).to_bytes(4, "big") + bits.to_bytes(size, "big")


def _decode_bits(data: bytes) -> str:
    length = int.from_bytes(data[:4], "big")
    return "".join(f"{byte:08b}" for byte in data[4:])[:length]


# [/bits]
async def init_connection(conn: asyncpg.Connection) -> None:
    """Set up one new connection for the generated functions (the codecs they rely on).

    Use it for every connection the generated functions see::

        pool = await asyncpg.create_pool(dsn, init=init_connection)

        conn = await asyncpg.connect(dsn)
        await init_connection(conn)

    It installs only what this package's types need (possibly nothing): call it all
    the same, so that a new query with such a type needs no change of the set-up.
    """
    # [json]
    # json and jsonb values are decoded to Python values (dict, list, str, int, float,
    # bool, None) and encoded from them, instead of asyncpg's default of JSON text. A
    # Python None is SQL NULL, never the JSON null. Binary codecs: copy_records_to_table
    # (the :copyfrom functions) works with them too.
    await conn.set_type_codec(
        "json",
        schema="pg_catalog",
        encoder=_encode_json,
        decoder=json.loads,
        format="binary",
    )
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_encode_jsonb,
        decoder=_decode_jsonb,
        format="binary",
    )
    # [/json]
    # [bits]
    # bit and varbit travel as strings of 0 and 1 (binary codecs, as for JSON).
    for name in ("bit", "varbit"):
        await conn.set_type_codec(
            name,
            schema="pg_catalog",
            encoder=_encode_bits,
            decoder=_decode_bits,
            format="binary",
        )
    # [/bits]
