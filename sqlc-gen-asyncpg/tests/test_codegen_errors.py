"""Refused configurations and queries, through the real sqlc: one line, non-zero exit."""

import textwrap
from pathlib import Path

import pytest
from codegen_support import run_sqlc

pytestmark = pytest.mark.codegen

SCHEMA = """
CREATE TABLE things (
    id    bigserial PRIMARY KEY,
    name  text NOT NULL
);
"""

SCHEMA_WITH_POINT = """
CREATE TABLE things (
    id    bigserial PRIMARY KEY,
    name  text NOT NULL,
    spot  point
);
"""


def project(
    root: Path,
    queries: str,
    *,
    options: str = "",
    engine: str = "postgresql",
    schema: str = SCHEMA,
    format_line: str = "format: json",
) -> Path:
    (root / "queries").mkdir()
    (root / "schema.sql").write_text(schema)
    (root / "queries" / "things.sql").write_text(textwrap.dedent(queries))
    config = textwrap.dedent(
        f"""\
        version: "2"
        plugins:
          - name: asyncpg
            process:
              cmd: sqlc-gen-asyncpg
              {format_line}
        sql:
          - engine: {engine}
            schema: schema.sql
            queries: queries
            codegen:
              - plugin: asyncpg
                out: generated
        """
    )
    if options:
        config += textwrap.indent(textwrap.dedent(options), " " * 8)
    (root / "sqlc.yaml").write_text(config)
    return root


GET_NAME = """
-- name: GetName :one
SELECT name FROM things WHERE id = $1;
"""

CASES = {
    "sqlc's default protobuf request": (
        {"queries": GET_NAME, "format_line": ""},
        "sqlc-gen-asyncpg: sqlc sent its request as protobuf (its default); this plugin "
        "reads JSON: add `format: json` under the plugin's `process:` in sqlc.yaml",
    ),
    "unknown option": (
        {"queries": GET_NAME, "options": "options:\n  colour: blue\n"},
        "sqlc-gen-asyncpg: unknown option 'colour' (known options: emit_iterators, "
        "iterator_prefetch, overrides)",
    ),
    "option of the wrong type": (
        {"queries": GET_NAME, "options": "options:\n  iterator_prefetch: many\n"},
        "sqlc-gen-asyncpg: option iterator_prefetch must be a positive integer, got 'many'",
    ),
    "override without py_type": (
        {"queries": GET_NAME, "options": "options:\n  overrides: [{db_type: point}]\n"},
        "sqlc-gen-asyncpg: option overrides[0].py_type must be a non-empty string, got None",
    ),
    "engine other than PostgreSQL": (
        {
            "queries": """
            -- name: GetName :one
            SELECT name FROM things WHERE id = ?;
            """,
            "engine": "sqlite",
            "schema": "CREATE TABLE things (id integer PRIMARY KEY, name text NOT NULL);\n",
        },
        "sqlc-gen-asyncpg: sqlc-gen-asyncpg supports engine postgresql only, not 'sqlite'",
    ),
    "void result": (
        {
            "queries": """
            -- name: TakeLock :one
            SELECT pg_advisory_xact_lock($1);
            """
        },
        "sqlc-gen-asyncpg: query TakeLock is :one but its column pg_advisory_xact_lock is "
        "void (no value): declare it :exec",
    ),
    "no columns": (
        {
            "queries": """
            -- name: ThingExists :one
            SELECT FROM things WHERE id = $1;
            """
        },
        "sqlc-gen-asyncpg: query ThingExists is :one but returns no columns: declare it "
        ":exec, or :execrows for the number of rows, or select a column",
    ),
    "iterator of a query that is not :many": (
        {"queries": GET_NAME, "options": "options:\n  emit_iterators: [GetName]\n"},
        "sqlc-gen-asyncpg: option emit_iterators names query GetName, which is :one: "
        "iterators exist for :many queries only",
    ),
    ":execlastid without RETURNING": (
        {
            "queries": """
            -- name: AddThing :execlastid
            INSERT INTO things (name) VALUES ($1);
            """
        },
        "sqlc-gen-asyncpg: query AddThing is :execlastid but has no RETURNING clause: "
        "add RETURNING <id column>",
    ),
    "type without a mapping or override": (
        {
            "queries": """
            -- name: GetName :one
            SELECT name FROM things WHERE id = $1;
            """,
            "schema": SCHEMA_WITH_POINT,
        },
        "sqlc-gen-asyncpg: column things.spot has type 'point', which "
        "sqlc-gen-asyncpg does not know: add overrides: [{db_type: 'point', py_type: ..., "
        "import: ...}] to the plugin options",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refusal_exits_non_zero_with_one_line_on_stderr(case: str, tmp_path: Path) -> None:
    # One sqlc run per test (not all at once in a fixture): mutmut orders the tests by
    # their own run time, and runs the cheap ones first.
    settings, message = CASES[case]
    root = project(tmp_path, **settings)

    result = run_sqlc(root)

    assert result.returncode != 0
    stderr = result.stderr
    plugin_lines = [line for line in stderr.splitlines() if "sqlc-gen-asyncpg:" in line]
    assert len(plugin_lines) == 1, stderr
    assert plugin_lines[0] == f"error generating code: process: error running command {message}"
    assert not (root / "generated").exists()


def test_override_makes_an_unknown_type_acceptable(tmp_path: Path) -> None:
    options = """\
    options:
      overrides:
        - db_type: point
          py_type: asyncpg.Point
          import: asyncpg
    """
    queries = """
    -- name: GetSpot :one
    SELECT spot FROM things WHERE id = $1;
    """

    result = run_sqlc(project(tmp_path, queries, options=options, schema=SCHEMA_WITH_POINT))

    assert result.returncode == 0, result.stderr
    assert "-> asyncpg.Point | None:" in (tmp_path / "generated" / "things.py").read_text()
