"""PostgreSQL types → Python types: the one mapping table, then the imports table.

Every spelling sqlc may send is listed: the name as written in the schema or query
(``integer``), the catalog name (``int4``) and both qualified by ``pg_catalog`` (sqlc
sends ``pg_catalog.int4`` as a schema plus a name in some places and as one dotted name
in others). Arrays arrive as the element type plus a dimension count.
"""

from dataclasses import dataclass

PG_TYPES: dict[str, str] = {
    # integers
    "smallint": "int",
    "int2": "int",
    "pg_catalog.int2": "int",
    "smallserial": "int",
    "serial2": "int",
    "pg_catalog.serial2": "int",
    "integer": "int",
    "int": "int",
    "int4": "int",
    "pg_catalog.int4": "int",
    "serial": "int",
    "serial4": "int",
    "pg_catalog.serial4": "int",
    "bigint": "int",
    "int8": "int",
    "pg_catalog.int8": "int",
    "bigserial": "int",
    "serial8": "int",
    "pg_catalog.serial8": "int",
    "oid": "int",
    "pg_catalog.oid": "int",
    "xid": "int",
    "pg_catalog.xid": "int",
    "xid8": "int",
    "pg_catalog.xid8": "int",
    # exact and floating-point numbers
    "numeric": "Decimal",
    "pg_catalog.numeric": "Decimal",
    "decimal": "Decimal",
    "pg_catalog.decimal": "Decimal",
    "real": "float",
    "float4": "float",
    "pg_catalog.float4": "float",
    "double precision": "float",
    "float": "float",
    "float8": "float",
    "pg_catalog.float8": "float",
    # boolean
    "boolean": "bool",
    "bool": "bool",
    "pg_catalog.bool": "bool",
    # text
    "text": "str",
    "pg_catalog.text": "str",
    "varchar": "str",
    "pg_catalog.varchar": "str",
    "character varying": "str",
    "char": "str",
    "character": "str",
    "bpchar": "str",
    "pg_catalog.bpchar": "str",
    '"char"': "str",
    "pg_catalog.char": "str",
    "citext": "str",
    "public.citext": "str",
    "name": "str",
    "pg_catalog.name": "str",
    # identifiers
    "uuid": "UUID",
    "pg_catalog.uuid": "UUID",
    # dates and times
    "date": "date",
    "pg_catalog.date": "date",
    "time": "time",
    "pg_catalog.time": "time",
    "time without time zone": "time",
    "timetz": "time",
    "pg_catalog.timetz": "time",
    "time with time zone": "time",
    "timestamp": "datetime",
    "pg_catalog.timestamp": "datetime",
    "timestamp without time zone": "datetime",
    "timestamptz": "datetime",
    "pg_catalog.timestamptz": "datetime",
    "timestamp with time zone": "datetime",
    "interval": "timedelta",
    "pg_catalog.interval": "timedelta",
    # JSON, decoded by the codecs init_connection() installs
    "json": "JsonValue",
    "pg_catalog.json": "JsonValue",
    "jsonb": "JsonValue",
    "pg_catalog.jsonb": "JsonValue",
    # binary
    "bytea": "bytes",
    "pg_catalog.bytea": "bytes",
    # network addresses
    "inet": "IPv4Interface | IPv6Interface | IPv4Address | IPv6Address",
    "pg_catalog.inet": "IPv4Interface | IPv6Interface | IPv4Address | IPv6Address",
    "cidr": "IPv4Network | IPv6Network",
    "pg_catalog.cidr": "IPv4Network | IPv6Network",
    # rarities, as their text form (init_connection() installs text codecs for bit types)
    "macaddr": "str",
    "pg_catalog.macaddr": "str",
    "macaddr8": "str",
    "pg_catalog.macaddr8": "str",
    "money": "str",
    "pg_catalog.money": "str",
    "bit": "str",
    "pg_catalog.bit": "str",
    "varbit": "str",
    "pg_catalog.varbit": "str",
    "bit varying": "str",
    "xml": "str",
    "pg_catalog.xml": "str",
    "tsvector": "str",
    "pg_catalog.tsvector": "str",
    "tsquery": "str",
    "pg_catalog.tsquery": "str",
    # extension types: asyncpg has no codec for them and hands over their text form
    "ltree": "str",
    "lquery": "str",
    "ltxtquery": "str",
    "hstore": "str",
    "vector": "str",
    "halfvec": "str",
    "sparsevec": "str",
    "cube": "str",
    "isbn": "str",
    "isbn13": "str",
    "issn": "str",
    "ean13": "str",
    # pseudo-types sqlc reports when it cannot tell more (``unnest(x)``, ``array_agg(x)``,
    # a row constructor, an operator on an unknown type): any value; cast in SQL to get
    # a precise type
    "any": "object",
    "anyelement": "object",
    "anynonarray": "object",
    "anyenum": "object",
    "anycompatible": "object",
    "anycompatiblenonarray": "object",
    "record": "object",
    "pg_catalog.record": "object",
    "unknown": "object",
    "anyarray": "list[object]",
    "anycompatiblearray": "list[object]",
}

# Types no value has: a query returning one must not promise a row.
VOID_TYPES = frozenset({"void", "pg_catalog.void"})

# The import each Python type of PG_TYPES needs: (module, name) pairs.
PY_IMPORTS: dict[str, tuple[tuple[str, str], ...]] = {
    "int": (),
    "object": (),
    "list[object]": (),
    "float": (),
    "bool": (),
    "str": (),
    "bytes": (),
    "Decimal": (("decimal", "Decimal"),),
    "UUID": (("uuid", "UUID"),),
    "date": (("datetime", "date"),),
    "time": (("datetime", "time"),),
    "datetime": (("datetime", "datetime"),),
    "timedelta": (("datetime", "timedelta"),),
    "JsonValue": (("pydantic", "JsonValue"),),
    "IPv4Interface | IPv6Interface | IPv4Address | IPv6Address": (
        ("ipaddress", "IPv4Address"),
        ("ipaddress", "IPv4Interface"),
        ("ipaddress", "IPv6Address"),
        ("ipaddress", "IPv6Interface"),
    ),
    "IPv4Network | IPv6Network": (
        ("ipaddress", "IPv4Network"),
        ("ipaddress", "IPv6Network"),
    ),
}


@dataclass(frozen=True, slots=True)
class PyType:
    """A Python type annotation and the imports it needs.

    ``imports`` holds ``(module, name)`` pairs: ``from module import name``, or
    ``import module`` when ``name`` is "". ``enum`` is the StrEnum class name when
    the base type is a generated enum (values need converting from ``str``).
    """

    expr: str
    imports: frozenset[tuple[str, str]] = frozenset()
    enum: str = ""
    custom: bool = False

    def wrap(self, dims: int, nullable: bool) -> "PyType":
        """Return this type as a ``dims``-dimensional list, ``| None`` if ``nullable``."""
        expr = self.expr
        for _ in range(dims):
            expr = f"list[{expr}]"
        if nullable:
            expr = f"{expr} | None"
        return PyType(expr, self.imports, self.enum, self.custom)


# Extension types, found in whichever schema the extension was created in.
EXTENSION_TYPES = frozenset(
    {
        "citext",
        "ltree",
        "lquery",
        "ltxtquery",
        "hstore",
        "vector",
        "halfvec",
        "sparsevec",
        "cube",
        "isbn",
        "isbn13",
        "issn",
        "ean13",
    }
)


def builtin_type(db_type: str) -> PyType | None:
    """Return the Python type for ``db_type`` (any spelling), or None if unknown."""
    key = db_type.lower()
    py = PG_TYPES.get(key)
    schema, _, bare = key.rpartition(".")
    if py is None and (schema == "pg_catalog" or bare in EXTENSION_TYPES):
        py = PG_TYPES.get(bare)
    if py is None:
        return None
    return PyType(py, frozenset(PY_IMPORTS[py]))
