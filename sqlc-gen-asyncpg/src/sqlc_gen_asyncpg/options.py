"""The plugin's options (``codegen[].options`` in sqlc.yaml), validated.

Options::

    overrides:            # types for columns the table below does not know, or instead of it
      - db_type: citext   # a database type, as written in the schema ...
        py_type: str
      - column: users.email   # ... or one column: table.column or schema.table.column
        py_type: EmailStr
        import: pydantic      # the module py_type comes from (optional)
      - table: users          # ... or a table's rows: your pydantic model instead of
        py_type: User         # a generated one (table or schema.table)
        import: myapp.domain
    emit_iterators: false # iter_<name>() next to every :many function (true), or
                          # next to the :many queries listed by name ([ListEvents])
    iterator_prefetch: 100  # rows fetched per round trip by the iter_ functions
"""

import re
from dataclasses import dataclass
from typing import Any

from sqlc_gen_asyncpg.errors import PluginError

_DOTTED_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_TYPE_EXPRESSION = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\[\], |]*$")


@dataclass(frozen=True, slots=True)
class Override:
    """A Python type chosen by the user for a database type, one column or a table's
    rows (exactly one of ``db_type``, ``column`` and ``table`` is set)."""

    py_type: str
    module: str
    db_type: str = ""
    column: str = ""
    table: str = ""


@dataclass(frozen=True, slots=True)
class Options:
    """Validated plugin options."""

    overrides: tuple[Override, ...] = ()
    emit_iterators: bool | frozenset[str] = False
    iterator_prefetch: int = 100

    def wants_iterator(self, query: str) -> bool:
        """Whether the :many query named ``query`` gets an ``iter_`` function."""
        if isinstance(self.emit_iterators, bool):
            return self.emit_iterators
        return query in self.emit_iterators


_TARGETS = ("db_type", "column", "table")
_OVERRIDE_KEYS = frozenset({*_TARGETS, "py_type", "import"})


def _string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise PluginError(f"option {where} must be a non-empty string, got {value!r}")
    return value


def _override(index: int, raw: object) -> Override:
    where = f"overrides[{index}]"
    if not isinstance(raw, dict):
        raise PluginError(f"option {where} must be a mapping, got {raw!r}")
    unknown = sorted(set(raw) - _OVERRIDE_KEYS)
    if unknown:
        raise PluginError(
            f"unknown option {where}.{unknown[0]} "
            "(expected db_type, column or table, py_type, import)"
        )
    if sum(key in raw for key in _TARGETS) != 1:
        raise PluginError(f"option {where} needs exactly one of db_type, column and table")
    py_type = _string(raw.get("py_type"), f"{where}.py_type")
    if "table" in raw and not _DOTTED_NAME.match(py_type):
        # Its rows are built with py_type.model_validate(...): a class, not an expression.
        raise PluginError(f"option {where}.py_type must name a model class, got {py_type!r}")
    if not _TYPE_EXPRESSION.match(py_type):
        raise PluginError(f"option {where}.py_type is not a Python type expression: {py_type!r}")
    module = ""
    if "import" in raw:
        module = _string(raw["import"], f"{where}.import")
        if not _DOTTED_NAME.match(module):
            raise PluginError(f"option {where}.import is not a module name: {module!r}")
    if "db_type" in raw:
        return Override(py_type=py_type, module=module, db_type=_string(raw["db_type"], where))
    if "table" in raw:
        table = _string(raw["table"], f"{where}.table")
        if table.count(".") > 1:
            raise PluginError(f"option {where}.table must be table or schema.table, got {table!r}")
        return Override(py_type=py_type, module=module, table=table)
    column = _string(raw["column"], f"{where}.column")
    if column.count(".") not in (1, 2):
        raise PluginError(
            f"option {where}.column must be table.column or schema.table.column, got {column!r}"
        )
    return Override(py_type=py_type, module=module, column=column)


def parse_options(raw: dict[str, Any]) -> Options:
    """Return the validated options in ``raw`` (the decoded ``plugin_options``).

    Raises:
        PluginError: an unknown option, or a value of the wrong type.
    """
    known = {"overrides", "emit_iterators", "iterator_prefetch"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PluginError(
            f"unknown option {unknown[0]!r} (known options: {', '.join(sorted(known))})"
        )
    overrides_raw = raw.get("overrides", [])
    if overrides_raw is None:
        overrides_raw = []
    if not isinstance(overrides_raw, list):
        raise PluginError(f"option overrides must be a list, got {overrides_raw!r}")
    emit_iterators = raw.get("emit_iterators", False)
    if isinstance(emit_iterators, list) and all(
        isinstance(name, str) and name for name in emit_iterators
    ):
        emit_iterators = frozenset(emit_iterators)
    elif not isinstance(emit_iterators, bool):
        raise PluginError(
            "option emit_iterators must be true, false or a list of query names, "
            f"got {emit_iterators!r}"
        )
    prefetch = raw.get("iterator_prefetch", 100)
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 1:
        raise PluginError(f"option iterator_prefetch must be a positive integer, got {prefetch!r}")
    return Options(
        overrides=tuple(_override(i, o) for i, o in enumerate(overrides_raw)),
        emit_iterators=emit_iterators,
        iterator_prefetch=prefetch,
    )
