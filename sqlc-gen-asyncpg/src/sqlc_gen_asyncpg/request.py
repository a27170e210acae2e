"""sqlc's ``GenerateRequest``, read from its JSON form into plain dataclasses.

Only the fields the plugin uses are kept. The JSON uses the protobuf field names;
``bytes`` fields (``plugin_options``, ``global_options``) are base64 strings.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from sqlc_gen_asyncpg.errors import PluginError

# Schemas that sqlc puts in every PostgreSQL catalog; no user table lives there.
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_temp"})


@dataclass(frozen=True, slots=True)
class Identifier:
    """A possibly schema-qualified name (``schema`` is "" when unqualified)."""

    schema: str
    name: str


@dataclass(frozen=True, slots=True)
class Column:
    """A table column, a query result column or a parameter's column."""

    name: str
    not_null: bool
    is_array: bool
    array_dims: int
    type: Identifier
    table: Identifier | None
    original_name: str
    embed_table: Identifier | None
    is_sqlc_slice: bool


@dataclass(frozen=True, slots=True)
class Parameter:
    """A query parameter: ``$number`` in the query text."""

    number: int
    column: Column


@dataclass(frozen=True, slots=True)
class Query:
    """A named query as sqlc analysed it."""

    name: str
    cmd: str
    text: str
    filename: str
    comments: tuple[str, ...]
    columns: tuple[Column, ...]
    params: tuple[Parameter, ...]
    insert_into_table: Identifier | None


@dataclass(frozen=True, slots=True)
class Table:
    """A table of a user schema."""

    rel: Identifier
    columns: tuple[Column, ...]


@dataclass(frozen=True, slots=True)
class Enum:
    """A PostgreSQL enum type of a user schema, its labels in declaration order."""

    schema: str
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Request:
    """The parts of sqlc's request the plugin compiles."""

    sqlc_version: str
    engine: str
    default_schema: str
    tables: tuple[Table, ...]
    enums: tuple[Enum, ...]
    queries: tuple[Query, ...]
    plugin_options: dict[str, Any]
    global_options: dict[str, Any]


def _obj(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PluginError(f"malformed request: {where} is not an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PluginError(f"malformed request: {where} is not a list")
    return value


def _identifier(value: Any) -> Identifier | None:
    data = _obj(value, "identifier")
    if not data or not data.get("name"):
        return None
    return Identifier(schema=str(data.get("schema") or ""), name=str(data["name"]))


def _column(value: Any) -> Column:
    data = _obj(value, "column")
    type_ = _identifier(data.get("type")) or Identifier("", "")
    return Column(
        name=str(data.get("name") or ""),
        not_null=bool(data.get("not_null")),
        is_array=bool(data.get("is_array")),
        array_dims=int(data.get("array_dims") or 0),
        type=type_,
        table=_identifier(data.get("table")),
        original_name=str(data.get("original_name") or ""),
        embed_table=_identifier(data.get("embed_table")),
        is_sqlc_slice=bool(data.get("is_sqlc_slice")),
    )


def _options(value: Any, where: str) -> dict[str, Any]:
    if not value:
        return {}
    try:
        raw = base64.b64decode(str(value), validate=True)
        decoded = json.loads(raw) if raw.strip() else {}
    except (binascii.Error, ValueError) as exc:
        raise PluginError(f"{where} is not base64-encoded JSON: {exc}") from exc
    if decoded is None:
        return {}
    if not isinstance(decoded, dict):
        raise PluginError(f"{where} must be a mapping of option names to values")
    return decoded


def parse_request(payload: bytes) -> Request:
    """Return the request encoded as sqlc's JSON ``GenerateRequest`` in ``payload``.

    Raises:
        PluginError: ``payload`` is not JSON of the expected shape.
    """
    if not payload.lstrip().startswith(b"{"):
        # sqlc's default encoding: a protobuf message, which never starts with "{"
        # (its first byte is field 1's tag, 0x0a).
        raise PluginError(
            "sqlc sent its request as protobuf (its default); this plugin reads JSON: "
            "add `format: json` under the plugin's `process:` in sqlc.yaml"
        )
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise PluginError(f"the request is not JSON: {exc}") from exc
    data = _obj(data, "the request")
    settings = _obj(data.get("settings"), "settings")
    catalog = _obj(data.get("catalog"), "catalog")
    default_schema = str(catalog.get("default_schema") or "public")
    tables: list[Table] = []
    enums: list[Enum] = []
    for schema in _list(catalog.get("schemas"), "catalog.schemas"):
        schema = _obj(schema, "schema")
        schema_name = str(schema.get("name") or "")
        if schema_name in SYSTEM_SCHEMAS:
            continue
        for table in _list(schema.get("tables"), "tables"):
            table = _obj(table, "table")
            rel = _identifier(table.get("rel"))
            if rel is None:
                continue
            tables.append(
                Table(
                    rel=Identifier(schema_name, rel.name),
                    columns=tuple(_column(c) for c in _list(table.get("columns"), "columns")),
                )
            )
        for enum in _list(schema.get("enums"), "enums"):
            enum = _obj(enum, "enum")
            enums.append(
                Enum(
                    schema=schema_name,
                    name=str(enum.get("name") or ""),
                    values=tuple(str(v) for v in _list(enum.get("vals"), "vals")),
                )
            )
    queries = []
    for query in _list(data.get("queries"), "queries"):
        query = _obj(query, "query")
        queries.append(
            Query(
                name=str(query.get("name") or ""),
                cmd=str(query.get("cmd") or ""),
                text=str(query.get("text") or ""),
                filename=str(query.get("filename") or ""),
                comments=tuple(str(c) for c in _list(query.get("comments"), "comments")),
                columns=tuple(_column(c) for c in _list(query.get("columns"), "columns")),
                params=tuple(
                    Parameter(
                        number=int(_obj(p, "param").get("number") or 0),
                        column=_column(_obj(p, "param").get("column")),
                    )
                    for p in _list(query.get("params"), "params")
                ),
                insert_into_table=_identifier(query.get("insert_into_table")),
            )
        )
    return Request(
        sqlc_version=str(data.get("sqlc_version") or ""),
        engine=str(settings.get("engine") or ""),
        default_schema=default_schema,
        tables=tuple(tables),
        enums=tuple(enums),
        queries=tuple(queries),
        plugin_options=_options(data.get("plugin_options"), "plugin options"),
        global_options=_options(data.get("global_options"), "global options"),
    )
