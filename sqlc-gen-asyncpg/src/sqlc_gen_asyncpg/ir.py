"""The intermediate objects between sqlc's request and the rendered modules."""

from dataclasses import dataclass

from sqlc_gen_asyncpg.request import Identifier
from sqlc_gen_asyncpg.types import PyType

BATCH_COMMANDS = frozenset({":copyfrom", ":batchexec", ":batchone", ":batchmany"})
"""The commands whose function takes a sequence of parameter sets."""


@dataclass(frozen=True, slots=True)
class EnumDef:
    """A ``StrEnum`` for a PostgreSQL enum: ``members`` are (NAME, label) pairs."""

    class_name: str
    sql_name: str
    members: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class FieldDef:
    """A model field. ``alias`` is the column name when the field name differs.

    ``embed`` is the nested model of a ``sqlc.embed(table)`` column.
    """

    name: str
    alias: str
    type: PyType
    embed: "ModelDef | None" = None

    @property
    def key(self) -> str:
        """The key pydantic validates this field from."""
        return self.alias or self.name


@dataclass(frozen=True, slots=True)
class ModelDef:
    """A pydantic model: a table's row (``table`` set: rendered in ``models.py``), a
    query's ``<Name>Row``, or the user's class for a table's rows (``custom``, an
    override: nothing is generated for it, and ``class_name`` is its expression).
    """

    class_name: str
    fields: tuple[FieldDef, ...]
    table: Identifier | None = None
    custom: PyType | None = None

    @property
    def imports(self) -> frozenset[tuple[str, str]]:
        """What a module imports to use the class."""
        if self.custom is not None:
            return self.custom.imports
        return frozenset({(".models", self.class_name)})

    @property
    def width(self) -> int:
        """How many result columns one instance is built from."""
        return sum(f.embed.width if f.embed else 1 for f in self.fields)


@dataclass(frozen=True, slots=True)
class ParamDef:
    """A query parameter: a keyword argument, and a field of ``<Name>Params``."""

    name: str
    type: PyType


@dataclass(frozen=True, slots=True)
class QueryDef:
    """One named query, ready to render.

    ``result_model`` is set when rows become models; ``row_model`` too when that model
    is the query's own ``<Name>Row`` (rendered in the query module); ``scalar`` is set
    when a single column is returned as a bare value. ``by_name`` says whether the
    model is validated from ``dict(record)`` (columns named exactly as its fields);
    ``iterator`` whether an ``iter_`` function streams it too.
    """

    name: str
    cmd: str
    function: str
    constant: str
    sql: str
    doc: tuple[str, ...]
    params: tuple[ParamDef, ...]
    params_class: str
    result_model: ModelDef | None
    row_model: ModelDef | None
    scalar: PyType | None
    by_name: bool
    copy_table: Identifier | None
    copy_columns: tuple[str, ...]
    iterator: bool = False

    @property
    def batch(self) -> bool:
        """Whether the function takes a sequence of ``<Name>Params``."""
        return self.cmd in BATCH_COMMANDS

    @property
    def result_type(self) -> str:
        """The annotation of one result row: a model class or a scalar type."""
        if self.result_model is not None:
            return self.result_model.class_name
        if self.scalar is not None:
            return self.scalar.expr
        return "None"


@dataclass(frozen=True, slots=True)
class QueryModule:
    """The module generated from one query file."""

    module: str
    source: str
    queries: tuple[QueryDef, ...]


@dataclass(frozen=True, slots=True)
class Program:
    """Everything to render for one sqlc ``codegen`` entry."""

    sqlc_version: str
    enums: tuple[EnumDef, ...]
    models: tuple[ModelDef, ...]
    modules: tuple[QueryModule, ...]
    iterator_prefetch: int
    # The modules the type overrides import from, and those of them that are the
    # project's own (first_party: top-level packages, which isort sorts into a section
    # after the third-party imports; the pipeline finds them in the project directory).
    override_modules: frozenset[str] = frozenset()
    # The runtime codecs the program's types need (``json``, ``bits``).
    codecs: frozenset[str] = frozenset()
    first_party: frozenset[str] = frozenset()
