"""The plugin's pure pieces, one at a time: names, types, layout, slices, imports."""

from pathlib import Path

import pytest

from sqlc_gen_asyncpg import PluginError
from sqlc_gen_asyncpg.build import FUNCTION_RESERVED, enum_member_names
from sqlc_gen_asyncpg.build import _expand_slices as expand_slices
from sqlc_gen_asyncpg.naming import safe_identifier
from sqlc_gen_asyncpg.pipeline import first_party
from sqlc_gen_asyncpg.render import exploded, fill, imports
from sqlc_gen_asyncpg.request import Column, Identifier, Parameter, Query
from sqlc_gen_asyncpg.types import PyType, builtin_type

pytestmark = pytest.mark.codegen


@pytest.mark.parametrize(
    ("labels", "names"),
    [
        (["happy", "so-so"], ["HAPPY", "SO_SO"]),
        (["0", "1", "2"], ["VALUE_0", "VALUE_1", "VALUE_2"]),
        (["+1", "-1", "0"], ["VALUE_1", "VALUE_1_2", "VALUE_0"]),
        (["GET", "get", "Get"], ["GET", "GET_2", "GET_3"]),
        (["so-so", "so_so", "SO SO"], ["SO_SO", "SO_SO_2", "SO_SO_3"]),
        (["", "+", "★"], ["EMPTY", "VALUE", "VALUE_2"]),
        (["inProgress", "HTTPError"], ["IN_PROGRESS", "HTTP_ERROR"]),
        (["a", "A", "a_2"], ["A", "A_2", "A_2_2"]),
    ],
)
def test_enum_members_are_identifiers_unique_in_label_order(
    labels: list[str], names: list[str]
) -> None:
    assert enum_member_names(labels) == names
    assert all(name.isidentifier() and not name.startswith("_") for name in names)


@pytest.mark.parametrize("name", ["list", "dict", "type", "map", "date", "time", "cast"])
def test_function_names_never_shadow_builtins_or_imports(name: str) -> None:
    assert name in FUNCTION_RESERVED
    assert safe_identifier(name, FUNCTION_RESERVED) == name + "_"
    assert safe_identifier("list_users", FUNCTION_RESERVED) == "list_users"


@pytest.mark.parametrize(
    ("db_type", "py_type"),
    [
        ("ltree", "str"),
        ("public.ltree", "str"),
        ("extensions.hstore", "str"),
        ("identity.extensions.hstore", "str"),
        ("vector", "str"),
        ("pg_catalog.int4", "int"),
        ("pg_catalog.integer", "int"),
        ("PG_CATALOG.Double Precision", "float"),
        ("any", "object"),
        ("anyelement", "object"),
        ("record", "object"),
        ("anyarray", "list[object]"),
        ("anycompatiblearray", "list[object]"),
    ],
)
def test_extension_and_pseudo_types_have_python_types(db_type: str, py_type: str) -> None:
    found = builtin_type(db_type)

    assert found is not None and found.expr == py_type


@pytest.mark.parametrize("db_type", ["point", "tstzrange", "myschema.text", "void"])
def test_types_without_a_mapping_are_unknown(db_type: str) -> None:
    assert builtin_type(db_type) is None


def slice_query(text: str, *numbers: int) -> Query:
    def param(number: int) -> Parameter:
        column = Column(
            name=f"p{number}",
            not_null=True,
            is_array=False,
            array_dims=0,
            type=Identifier("", "int8"),
            table=None,
            original_name="",
            embed_table=None,
            is_sqlc_slice=True,
        )
        return Parameter(number, column)

    return Query("Q", ":many", text, "q.sql", (), (), tuple(param(n) for n in numbers), None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SELECT 1 WHERE a IN ($1)", "SELECT 1 WHERE a = ANY($1)"),
        ("SELECT 1 WHERE a in ( $1 )", "SELECT 1 WHERE a = ANY($1)"),
        ("SELECT 1 WHERE a NOT IN ($1)", "SELECT 1 WHERE a <> ALL($1)"),
        ("SELECT 1 WHERE a not  in\n($1)", "SELECT 1 WHERE a <> ALL($1)"),
        ("SELECT 1 WHERE b = $10 AND a IN ($1)", "SELECT 1 WHERE b = $10 AND a = ANY($1)"),
    ],
)
def test_slices_become_any_or_all(text: str, expected: str) -> None:
    assert expand_slices(slice_query(text, 1)) == (expected, frozenset({1}))


def test_two_slices_are_both_rewritten() -> None:
    text, slices = expand_slices(slice_query("WHERE a IN ($1) AND b NOT IN ($2)", 1, 2))

    assert (text, slices) == ("WHERE a = ANY($1) AND b <> ALL($2)", frozenset({1, 2}))


@pytest.mark.parametrize("text", ["WHERE a = $1", "WHERE a IN ($1) OR b IN ($1)"])
def test_a_slice_outside_one_in_is_refused(text: str) -> None:
    with pytest.raises(PluginError, match=r"sqlc.slice\(p1\) must appear once"):
        expand_slices(slice_query(text, 1))


def test_exploded_puts_one_item_per_line_with_trailing_commas() -> None:
    assert exploded("f(", ["a", ["g(", "    b,", ")"]], ")") == [
        "f(",
        "    a,",
        "    g(",
        "        b,",
        "    ),",
        ")",
    ]


def test_fill_continues_multi_line_parts_at_their_indentation() -> None:
    lines = fill("x = 1\nif y:\n    return {value}.z", value=["f(", "    a,", ")"])

    assert lines == ["x = 1", "if y:", "    return f(", "        a,", "    ).z"]


def test_imports_are_sectioned_and_sorted_as_isort_does() -> None:
    text = imports(
        {
            (".models", "User"),
            ("pydantic", "BaseModel"),
            ("pydantic", "TypeAdapter"),
            ("uuid", "UUID"),
            ("myapp.domain", "Status"),
            ("asyncpg", ""),
        },
        first_party=frozenset({"myapp"}),
    )

    assert text == (
        "from uuid import UUID\n"
        "\n"
        "import asyncpg\n"
        "from pydantic import (\n"
        "    BaseModel,\n"
        "    TypeAdapter,\n"
        ")\n"
        "\n"
        "from myapp.domain import Status\n"
        "\n"
        "from .models import User\n"
    )


def test_imports_order_modules_ignoring_case_and_names_by_kind_as_isort_does() -> None:
    names = {"func", "Class", "CONST", "A", "ZZ", "x"}
    modules = {"Zeta", "ab", "a_b"}
    text = imports({("alpha", n) for n in names} | {(m, "thing") for m in modules})

    # What ruff's isort rule accepts: constants (two capitals or more), then classes,
    # then the rest; modules in lower case, so "a_b" before "ab" and "Zeta" last.
    assert text == (
        "from a_b import thing\n"
        "from ab import thing\n"
        "from alpha import (\n"
        "    CONST,\n"
        "    ZZ,\n"
        "    A,\n"
        "    Class,\n"
        "    func,\n"
        "    x,\n"
        ")\n"
        "from Zeta import thing\n"
    )
    assert imports(set()) == ""


@pytest.mark.parametrize("module", ["fractions", "statistics", "email.message"])
def test_any_standard_library_module_sorts_as_standard_library(module: str) -> None:
    text = imports({(module, "Thing"), ("asyncpg", ""), ("uuid", "UUID")})

    assert text == f"from {module} import Thing\nfrom uuid import UUID\n\nimport asyncpg\n"


def test_first_party_packages_are_folders_or_modules_of_the_project(tmp_path: Path) -> None:
    (tmp_path / "myapp").mkdir()
    (tmp_path / "src" / "core").mkdir(parents=True)
    (tmp_path / "tools.py").write_text("")

    found = first_party(tmp_path, ["myapp.domain", "core.types", "tools", "asyncpg", "other"])

    assert found == frozenset({"myapp", "core", "tools"})


def test_wrapping_a_type_keeps_its_imports_enum_and_custom_flag() -> None:
    money = PyType("Money", frozenset({("shop.money", "Money")}), custom=True)
    mood = PyType("Mood", frozenset({(".models", "Mood")}), enum="Mood")

    assert money.wrap(2, True) == PyType(
        "list[list[Money]] | None", frozenset({("shop.money", "Money")}), custom=True
    )
    assert mood.wrap(1, False) == PyType("list[Mood]", frozenset({(".models", "Mood")}), "Mood")
    assert mood.wrap(0, True) == PyType("Mood | None", mood.imports, "Mood")
