"""From sqlc's request to the intermediate objects, with every check that can fail.

All generate-time errors are raised here (or in option parsing): rendering never
fails on a program this module built.
"""

import builtins
import re
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from sqlc_gen_asyncpg.errors import PluginError
from sqlc_gen_asyncpg.ir import (
    BATCH_COMMANDS,
    EnumDef,
    FieldDef,
    ModelDef,
    ParamDef,
    Program,
    QueryDef,
    QueryModule,
)
from sqlc_gen_asyncpg.naming import (
    field_name,
    pascal,
    safe_identifier,
    singular,
    snake,
    upper_snake,
)
from sqlc_gen_asyncpg.options import Options, Override, parse_options
from sqlc_gen_asyncpg.request import Column, Identifier, Query, Request, Table
from sqlc_gen_asyncpg.types import PY_IMPORTS, VOID_TYPES, PyType, builtin_type

# Attributes of pydantic.BaseModel a field may not shadow: such fields get a trailing
# underscore and keep the column name as their alias.
MODEL_RESERVED = frozenset(
    {
        "construct",
        "copy",
        "dict",
        "from_orm",
        "json",
        "model_computed_fields",
        "model_config",
        "model_construct",
        "model_copy",
        "model_dump",
        "model_dump_json",
        "model_extra",
        "model_fields",
        "model_fields_set",
        "model_json_schema",
        "model_parametrized_name",
        "model_post_init",
        "model_rebuild",
        "model_validate",
        "model_validate_json",
        "model_validate_strings",
        "parse_file",
        "parse_obj",
        "parse_raw",
        "schema",
        "schema_json",
        "update_forward_refs",
        "validate",
    }
)

# Names a parameter may not take: the functions' own arguments, and names their bodies
# read after the parameters are bound.
ARGUMENT_RESERVED = frozenset(
    {"cast", "conn", "dict", "map", "params", "prefetch", "rows_affected"}
)

# Names a batch command's parameter may not take: they would hide the methods of the
# NamedTuple that holds one set.
TUPLE_RESERVED = frozenset({"count", "index"})

# Names a query function may not take: the builtins (a query ``List`` would make
# ``def list``, and ``-> list[Row]`` after it would name the function) and the
# lowercase names a generated module imports.
FUNCTION_RESERVED = frozenset(n for n in dir(builtins) if not n.startswith("_")) | {
    "asyncpg",
    "cast",
    "date",
    "datetime",
    "rows_affected",
    "time",
    "timedelta",
}

# Class names a generated module imports (or an override brings, added per run): a
# table's model or an enum with one of them gets a trailing underscore, as a function
# does (a table ``sequences`` → ``Sequence_``).
CLASS_RESERVED = frozenset(
    {name for imports in PY_IMPORTS.values() for _, name in imports}
    | {"AsyncIterator", "BaseModel", "ConfigDict", "CursorExecutor", "Executor", "Field"}
    | {"Iterable", "NamedTuple", "Sequence", "StrEnum", "TypeAdapter"}
)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")

# Module names the generator writes itself.
RESERVED_MODULES = frozenset({"db", "models", "__init__"})

# The codecs of the runtime (its pieces, runtime/db.py) that these database types need.
CODECS = {"json": "json", "jsonb": "json", "bit": "bits", "varbit": "bits", "bit varying": "bits"}

# A COPY sends the values as they are, into the columns in order: the INSERT it stands
# for must be exactly that, with no expression, cast, ON CONFLICT or RETURNING to lose.
_INSERT_COLUMNS = re.compile(
    r"^\s*INSERT\s+INTO\s+[^\s(]+\s*\(([^)]*)\)\s*VALUES\s*\(([^)]*)\)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)


def _type_name(ident: Identifier) -> str:
    return f"{ident.schema}.{ident.name}" if ident.schema else ident.name


class _Types:
    """Resolves a column's Python type: column override, type override, enum, table."""

    def __init__(self, request: Request, options: Options, enums: dict[str, EnumDef]) -> None:
        self._default_schema = request.default_schema
        self._by_type: dict[str, Override] = {}
        self._by_column: dict[str, Override] = {}
        self._by_table: dict[str, Override] = {}
        # The runtime codecs that the types resolved so far need.
        self.codecs: set[str] = set()
        for override in options.overrides:
            if override.db_type:
                self._by_type[override.db_type.lower()] = override
            elif override.table:
                self._by_table[self._key(override.table, 2)] = override
            else:
                self._by_column[self._key(override.column, 3)] = override
        # A misspelt table would otherwise leave the generated model in place, silently.
        known = {self._key(_type_name(table.rel), 2) for table in request.tables}
        for key, override in self._by_table.items():
            if key not in known:
                raise PluginError(
                    f"option overrides names table {override.table}, which is not in the schema"
                )
        # An enum whose type is overridden is the user's class (a StrEnum of theirs,
        # say): no class is generated for it, and its values are validated into it.
        self._enums: dict[str, EnumDef] = {}
        self._overridden_enums: dict[str, PyType] = {}
        for spelling, enum in enums.items():
            replacing = [self._by_type[s] for s in self._spellings(spelling) if s in self._by_type]
            if not replacing:
                self._enums[spelling] = enum
            else:
                custom = self._from_override(replacing[0])
                self._overridden_enums[spelling] = PyType(
                    custom.expr, custom.imports, enum=custom.expr
                )

    @property
    def generated_enums(self) -> list[EnumDef]:
        """The enums that get a generated class, each once, by class name."""
        unique = {id(e): e for e in self._enums.values()}
        return sorted(unique.values(), key=lambda e: e.class_name)

    def _key(self, dotted: str, parts: int) -> str:
        """``dotted`` in lower case, the default schema put in front when it names none:
        a table (``parts=2``, schema.table) or a column (3, schema.table.column)."""
        names = dotted.lower().split(".")
        if len(names) == parts - 1:
            names.insert(0, self._default_schema)
        return ".".join(names)

    def table_class(self, table: Identifier) -> PyType | None:
        """The user's class for the rows of ``table`` (a catalog table), if overridden."""
        override = self._by_table.get(self._key(_type_name(table), 2))
        return None if override is None else self._from_override(override)

    def _spellings(self, type_name: str) -> list[str]:
        full = type_name.lower()
        names = [full]
        schema, _, bare = full.rpartition(".")
        if schema in ("", self._default_schema, "pg_catalog"):
            names.append(bare)
            names.append(f"{self._default_schema}.{bare}")
        return names

    @staticmethod
    def _from_override(override: Override) -> PyType:
        imports: set[tuple[str, str]] = set()
        if override.module:
            if override.py_type.startswith(override.module + "."):
                imports.add((override.module, ""))
            else:
                # The name it starts with (options guarantee one): Money of Money[int].
                imports.add((override.module, re.split(r"\W", override.py_type)[0]))
        return PyType(override.py_type, frozenset(imports), custom=True)

    def base(self, column: Column, table: Identifier | None, what: str) -> PyType:
        spellings = self._spellings(_type_name(column.type))
        self.codecs.update(CODECS[s] for s in spellings if s in CODECS)
        name = column.original_name or column.name
        if table is not None and name:
            key = self._key(f"{_type_name(table)}.{name}", 3)
            if key in self._by_column:
                custom = self._from_override(self._by_column[key])
                if any(s in self._enums or s in self._overridden_enums for s in spellings):
                    return PyType(custom.expr, custom.imports, enum=custom.expr)
                return custom
        for spelling in spellings:
            if spelling in self._overridden_enums:
                return self._overridden_enums[spelling]
        for spelling in spellings:
            if spelling in self._by_type:
                return self._from_override(self._by_type[spelling])
        for spelling in spellings:
            if spelling in self._enums:
                enum = self._enums[spelling]
                return PyType(
                    enum.class_name,
                    frozenset({(".models", enum.class_name)}),
                    enum.class_name,
                )
        found = builtin_type(_type_name(column.type))
        if found is not None:
            return found
        type_name = _type_name(column.type) or "(unknown)"
        raise PluginError(
            f"{what} has type {type_name!r}, which sqlc-gen-asyncpg does not know: add "
            f"overrides: [{{db_type: {type_name!r}, py_type: ..., import: ...}}] "
            "to the plugin options"
        )

    def of(self, column: Column, table: Identifier | None, what: str, *, nullable: bool) -> PyType:
        dims = column.array_dims or (1 if column.is_array else 0)
        return self.base(column, table, what).wrap(dims, nullable)


def _unique(names: Iterable[str]) -> list[str]:
    """Return ``names`` with repeats suffixed ``_2``, ``_3``…, like sqlc's Go output."""
    used: set[str] = set()
    result = []
    for name in names:
        candidate, count = name, 1
        while candidate in used:
            count += 1
            candidate = f"{name}_{count}"
        used.add(candidate)
        result.append(candidate)
    return result


def enum_member_names(labels: Iterable[str]) -> list[str]:
    """Return a member name per enum label: UPPER_SNAKE, always a Python identifier.

    ``'so-so'`` → ``SO_SO``; a label that gives no letter or gives a leading digit is
    prefixed (``'0'`` → ``VALUE_0``, ``'+'`` → ``VALUE``, ``''`` → ``EMPTY``); labels
    that give the same name are numbered in label order (``'a'``, ``'A'`` → ``A``,
    ``A_2``).
    """
    bases = []
    for label in labels:
        name = snake(label).strip("_").upper() if label else "EMPTY"
        if not name:
            name = "VALUE"
        elif not name[0].isalpha():
            name = "VALUE_" + name
        bases.append(name)
    return _unique(bases)


def _enum_defs(request: Request, reserved: frozenset[str]) -> dict[str, EnumDef]:
    by_spelling: dict[str, EnumDef] = {}
    for enum in sorted(request.enums, key=lambda e: (e.schema, e.name)):
        prefix = "" if enum.schema == request.default_schema else enum.schema + "_"
        class_name = safe_identifier(pascal(prefix + enum.name), reserved)
        members = tuple(zip(enum_member_names(enum.values), enum.values, strict=True))
        enum_def = EnumDef(class_name, enum.name, members)
        # Only the qualified spelling: a bare type name is also looked up as the default
        # schema's (_Types._spellings).
        by_spelling[f"{enum.schema}.{enum.name}".lower()] = enum_def
    return by_spelling


def _field_names(columns: Iterable[str]) -> list[tuple[str, str]]:
    """Return (field name, alias) for result or table columns, in order."""
    columns = list(columns)
    bases = [
        safe_identifier(field_name(name) if name else f"column_{i + 1}", MODEL_RESERVED)
        for i, name in enumerate(columns)
    ]
    # A renamed field keeps its column name as alias, unless the name is repeated (the
    # alias would be ambiguous); repeated columns are then read by position only.
    return [
        (
            field,
            column if field != column and columns.count(column) == 1 and column else "",
        )
        for field, column in zip(_unique(bases), columns, strict=True)
    ]


def _table_model(
    table: Table, types: _Types, default_schema: str, reserved: frozenset[str]
) -> ModelDef:
    prefix = "" if table.rel.schema == default_schema else table.rel.schema + "_"
    class_name = safe_identifier(pascal(prefix + singular(table.rel.name)), reserved)
    fields = []
    for (name, alias), column in zip(
        _field_names(c.name for c in table.columns), table.columns, strict=True
    ):
        what = f"column {table.rel.name}.{column.name}"
        fields.append(
            FieldDef(
                name,
                alias,
                types.of(column, table.rel, what, nullable=not column.not_null),
            )
        )
    custom = types.table_class(table.rel)
    if custom is not None:  # the user's class: named by the queries, rendered nowhere
        return ModelDef(custom.expr, tuple(fields), custom=custom)
    return ModelDef(class_name, tuple(fields), table.rel)


def _same_table(a: Identifier | None, table: Identifier, default_schema: str) -> bool:
    """Whether ``a`` (a column's table; schema optional) is the catalog's ``table``.

    A catalog table always names its schema (request.py fills it in).
    """
    return a is not None and a.name == table.name and (a.schema or default_schema) == table.schema


@dataclass(frozen=True, slots=True)
class _Result:
    """What a query returns: a model (the query's own ``row_model`` or a table's, read
    ``by_name``), a bare ``scalar``, or nothing."""

    model: ModelDef | None = None
    row_model: ModelDef | None = None
    scalar: PyType | None = None
    by_name: bool = False


class _Builder:
    def __init__(self, request: Request, options: Options) -> None:
        self.request = request
        self.options = options
        reserved = CLASS_RESERVED | {
            name for o in options.overrides for name in _IDENTIFIER.findall(o.py_type)
        }
        self.enums = _enum_defs(request, reserved)
        self.types = _Types(request, options, self.enums)
        self.tables: list[tuple[Table, ModelDef]] = [
            (table, _table_model(table, self.types, request.default_schema, reserved))
            for table in sorted(request.tables, key=lambda t: (t.rel.schema, t.rel.name))
        ]

    def table_for(self, ident: Identifier) -> tuple[Table, ModelDef]:
        for table, model in self.tables:
            if _same_table(ident, table.rel, self.request.default_schema):
                return table, model
        raise PluginError(f"sqlc.embed({ident.name}) names a table missing from the catalog")

    def column_type(self, query: Query, column: Column, what: str) -> PyType:
        if _type_name(column.type).lower() in VOID_TYPES:
            raise PluginError(
                f"query {query.name} is {query.cmd} but its {what} is void (no value): "
                "declare it :exec"
            )
        return self.types.of(
            column,
            column.table,
            f"{what} of query {query.name}",
            nullable=not column.not_null,
        )

    def matching_table(self, query: Query, fields: list[FieldDef]) -> ModelDef | None:
        """The table whose row is exactly the query's: same columns, names and types.

        (An embedded table's field has a model's type, which no table column has.)
        """
        for table, model in self.tables:
            if len(table.columns) != len(query.columns):
                continue
            if not all(
                _same_table(c.table, table.rel, self.request.default_schema) for c in query.columns
            ):
                continue
            if [(f.key, f.type.expr) for f in model.fields] == [
                (c.name, f.type.expr) for c, f in zip(query.columns, fields, strict=True)
            ]:
                return model
        return None

    def query(self, query: Query) -> QueryDef:
        command = COMMANDS.get(query.cmd)
        if command is None:
            raise PluginError(f"query {query.name} has command {query.cmd}, which is not supported")
        text, slices = _expand_slices(query)
        params = self.params(query, slices)
        if not params and query.cmd in BATCH_COMMANDS:
            raise PluginError(
                f"query {query.name} is {query.cmd} but has no parameters: every run would "
                "be the same statement; give it parameters, or use :exec"
            )
        result = command.result(self, query)
        copy_table, copy_columns = (
            _copy_target(query, text, len(params)) if command.copies else (None, ())
        )
        # The comment's lines as written, less the margin they share ("-- " gives one).
        doc = textwrap.dedent("\n".join(line.rstrip() for line in query.comments)).split("\n")
        while doc and not doc[0]:
            doc.pop(0)
        while doc and not doc[-1]:
            doc.pop()
        return QueryDef(
            name=query.name,
            cmd=query.cmd,
            function=safe_identifier(snake(query.name), FUNCTION_RESERVED),
            constant=upper_snake(query.name),
            sql=f"-- name: {query.name} {query.cmd}\n{text.strip()}",
            doc=tuple(doc),
            params=tuple(params),
            params_class=pascal(query.name) + "Params",
            result_model=result.model,
            row_model=result.row_model,
            scalar=result.scalar,
            by_name=result.by_name,
            copy_table=copy_table,
            copy_columns=copy_columns,
            iterator=command.iterates and self.options.wants_iterator(query.name),
        )

    # -- what a command makes of the result columns ----------------------------------

    def no_result(self, query: Query) -> _Result:
        """The command ignores the rows (``:exec``, ``:execrows``, ...)."""
        return _Result()

    def last_id(self, query: Query) -> _Result:
        """``:execlastid``: the one ``RETURNING`` column, as a bare value."""
        if not query.columns:
            raise PluginError(
                f"query {query.name} is :execlastid but has no RETURNING clause: "
                "add RETURNING <id column>"
            )
        if len(query.columns) != 1:
            raise PluginError(
                f"query {query.name} is :execlastid and must return exactly one column"
            )
        column = query.columns[0]
        return _Result(scalar=self.column_type(query, column, f"column {column.name}"))

    def rows(self, query: Query) -> _Result:
        """Rows: one column as a bare value, else a table's model or the query's own Row."""
        if not query.columns:
            raise PluginError(
                f"query {query.name} is {query.cmd} but returns no columns: declare it "
                ":exec, or :execrows for the number of rows, or select a column"
            )
        column = query.columns[0]
        if len(query.columns) == 1 and column.embed_table is None:
            return _Result(scalar=self.column_type(query, column, f"column {column.name}"))
        fields = self.result_fields(query)
        table_model = self.matching_table(query, fields)
        if table_model is not None:
            return _Result(model=table_model, by_name=True)
        row_model = ModelDef(pascal(query.name) + "Row", tuple(fields))
        return _Result(model=row_model, row_model=row_model)

    def params(self, query: Query, slices: frozenset[int]) -> list[ParamDef]:
        ordered = sorted(query.params, key=lambda p: p.number)
        if [p.number for p in ordered] != list(range(1, len(ordered) + 1)):
            raise PluginError(f"query {query.name} has parameters that are not $1..$n")
        names = _unique(
            safe_identifier(field_name(p.column.name) if p.column.name else f"dollar_{p.number}")
            for p in ordered
        )
        # A batch command's parameters are the fields of a NamedTuple too.
        reserved = ARGUMENT_RESERVED | (TUPLE_RESERVED if query.cmd in BATCH_COMMANDS else set())
        # Still unique: field_name() never ends a name in "_", so no "x_" is there to meet.
        names = [safe_identifier(n, reserved) for n in names]
        result = []
        for name, p in zip(names, ordered, strict=True):
            what = f"parameter {p.column.name or p.number} of query {query.name}"
            if p.number in slices:
                # sqlc.slice(x): a list of the element type; the list itself is
                # required even when sqlc.slice of a nullable column is.
                element = self.types.base(p.column, p.column.table, what)
                type_ = element.wrap(1, nullable=False)
            else:
                type_ = self.types.of(
                    p.column, p.column.table, what, nullable=not p.column.not_null
                )
            result.append(ParamDef(name, type_))
        return result

    def result_fields(self, query: Query) -> list[FieldDef]:
        fields = []
        for (name, alias), column in zip(
            _field_names(c.name for c in query.columns), query.columns, strict=True
        ):
            if column.embed_table is not None:
                _, model = self.table_for(column.embed_table)
                fields.append(
                    FieldDef(
                        name,
                        alias,
                        PyType(model.class_name, model.imports),
                        model,
                    )
                )
            else:
                fields.append(
                    FieldDef(
                        name,
                        alias,
                        self.column_type(query, column, f"column {column.name}"),
                    )
                )
        return fields


@dataclass(frozen=True, slots=True)
class _Command:
    """How the builder reads a query of one command: its ``result``; whether it copies
    rows into a table (``copies``) and may stream through an ``iter_`` (``iterates``)."""

    result: Callable[[_Builder, Query], _Result]
    copies: bool = False
    iterates: bool = False


# sqlc's query commands, as the builder reads them (render.py's BODIES writes them).
COMMANDS: dict[str, _Command] = {
    ":one": _Command(_Builder.rows),
    ":many": _Command(_Builder.rows, iterates=True),
    ":exec": _Command(_Builder.no_result),
    ":execrows": _Command(_Builder.no_result),
    ":execresult": _Command(_Builder.no_result),
    ":execlastid": _Command(_Builder.last_id),
    ":copyfrom": _Command(_Builder.no_result, copies=True),
    ":batchexec": _Command(_Builder.no_result),
    ":batchone": _Command(_Builder.rows),
    ":batchmany": _Command(_Builder.rows),
}


_COPY_SHAPE = (
    "must be INSERT INTO <table> (<columns>) VALUES ($1, $2, ...): one parameter per "
    "column, in order, and nothing else (a COPY sends the values as they are)"
)


def _copy_target(query: Query, text: str, param_count: int) -> tuple[Identifier, tuple[str, ...]]:
    """Return the table and columns a ``:copyfrom`` query inserts into."""
    refusal = f"query {query.name} is :copyfrom and {_COPY_SHAPE}"
    match = _INSERT_COLUMNS.match(text)
    if query.insert_into_table is None or match is None:
        raise PluginError(refusal)
    columns = tuple(c.strip().strip('"') for c in match.group(1).split(","))
    values = [v.strip() for v in match.group(2).split(",")]
    if len(columns) != param_count or values != [f"${n}" for n in range(1, param_count + 1)]:
        raise PluginError(refusal)
    return query.insert_into_table, columns


_SLICE = r"(?P<not>\bNOT\s+)?\bIN\s*\(\s*\${number}\s*\)"


def _expand_slices(query: Query) -> tuple[str, frozenset[int]]:
    """Return the query text with ``IN ($n)`` of each ``sqlc.slice`` as ``= ANY($n)``.

    On PostgreSQL sqlc leaves ``x IN (sqlc.slice(ids))`` as ``x IN ($1)``, which the
    server reads as one value, not a list. ``x = ANY($1)`` takes an array, which
    asyncpg sends from a Python list; ``NOT IN`` becomes ``<> ALL``. Both keep
    ``IN``'s meaning for NULLs, and an empty list gives no row (``NOT IN``: every row).

    Raises:
        PluginError: a ``sqlc.slice`` outside ``IN (...)``.
    """
    text = query.text
    slices = set()
    for param in query.params:
        if not param.column.is_sqlc_slice:
            continue
        pattern = re.compile(_SLICE.format(number=param.number), re.IGNORECASE)
        if len(pattern.findall(text)) != 1:
            raise PluginError(
                f"query {query.name}: sqlc.slice({param.column.name}) must appear once, "
                f"as IN (sqlc.slice({param.column.name})); or write "
                f"= ANY(@{param.column.name}::type[])"
            )
        match = pattern.search(text)
        assert match is not None
        operator = "<> ALL" if match.group("not") else "= ANY"
        text = f"{text[: match.start()]}{operator}(${param.number}){text[match.end() :]}"
        slices.add(param.number)
    return text, frozenset(slices)


def _check_unique(names: Iterable[tuple[str, str]], what: str) -> None:
    seen: dict[str, str] = {}
    for name, origin in names:
        if name in seen:
            raise PluginError(f"{what} {name} comes from both {seen[name]} and {origin}")
        seen[name] = origin


def build(request: Request) -> Program:
    """Return the program to render for ``request``.

    Raises:
        PluginError: bad options, another engine than PostgreSQL, a type without a
            Python mapping, a query the plugin cannot compile, or a name collision.
    """
    if request.engine and request.engine != "postgresql":
        raise PluginError(
            f"sqlc-gen-asyncpg supports engine postgresql only, not {request.engine!r}"
        )
    options = parse_options({**request.global_options, **request.plugin_options})
    builder = _Builder(request, options)
    enums = builder.types.generated_enums
    # A table whose rows are the user's class (an override) gets no generated model.
    models = [model for _, model in builder.tables if model.custom is None]
    _check_unique(
        [(e.class_name, f"enum {e.sql_name}") for e in enums]
        + [(m.class_name, f"table {t.rel.name}") for t, m in builder.tables if m.custom is None],
        "class name",
    )
    model_names = {e.class_name for e in enums} | {m.class_name for _, m in builder.tables}

    by_file: dict[str, list[Query]] = {}
    for query in builder.request.queries:
        by_file.setdefault(PurePosixPath(query.filename).name, []).append(query)
    modules = []
    module_origin: dict[str, str] = {}
    for filename in sorted(by_file):
        module = snake(PurePosixPath(filename).stem)
        if module in RESERVED_MODULES:
            raise PluginError(
                f"query file {filename} would be written as {module}.py, which the plugin "
                "writes itself: rename the file"
            )
        if module in module_origin:
            raise PluginError(
                f"query files {module_origin[module]} and {filename} both become {module}.py"
            )
        module_origin[module] = filename
        queries = sorted(
            (builder.query(q) for q in by_file[filename]),
            key=lambda q: (q.function, q.name),
        )
        functions = [(q.function, q.name) for q in queries]
        functions += [(f"iter_{q.function}", q.name) for q in queries if q.iterator]
        # Constants need no check of their own: a constant is its function's snake name
        # in capitals, so two constants clash only where their functions already do.
        _check_unique(functions, f"in {filename}, function")
        classes = [(q.row_model.class_name, q.name) for q in queries if q.row_model]
        classes += [(q.params_class, q.name) for q in queries if q.batch]
        _check_unique(classes, f"in {filename}, class")
        for class_name, origin in classes:
            if class_name in model_names:
                raise PluginError(
                    f"in {filename}, class {class_name} of query {origin} clashes with a model "
                    "of the same name in models.py"
                )
        modules.append(QueryModule(module, filename, tuple(queries)))
    _check_iterators(options, request)
    return Program(
        sqlc_version=request.sqlc_version,
        enums=tuple(enums),
        models=tuple(models),
        modules=tuple(modules),
        iterator_prefetch=options.iterator_prefetch,
        override_modules=frozenset(o.module for o in options.overrides if o.module),
        codecs=frozenset(builder.types.codecs),
    )


def _check_iterators(options: Options, request: Request) -> None:
    if isinstance(options.emit_iterators, bool):
        return
    commands = {q.name: q.cmd for q in request.queries}
    for name in options.emit_iterators:
        if name not in commands:
            raise PluginError(f"option emit_iterators names query {name}, which does not exist")
        if not COMMANDS[commands[name]].iterates:
            raise PluginError(
                f"option emit_iterators names query {name}, which is {commands[name]}: "
                "iterators exist for :many queries only"
            )
