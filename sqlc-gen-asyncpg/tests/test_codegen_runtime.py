"""db.py holds only the runtime pieces its package uses, and is clean with any of them."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from codegen_support import default_checks

from sqlc_gen_asyncpg import generate

pytestmark = pytest.mark.codegen

RECORDED = Path(__file__).parent / "recorded"

# What each piece puts into db.py (and nothing else does).
MARKS = {
    "cursor": ["from asyncpg.cursor import CursorFactory", "class CursorExecutor(Protocol):"],
    "rows_affected": ["def rows_affected(status: str) -> int:"],
    "json": ["import json", '"jsonb",', "def _decode_jsonb("],
    "bits": ['for name in ("bit", "varbit"):', "def _decode_bits("],
}


def package(
    *, iterators: bool = False, execrows: bool = False, types: tuple[str, ...] = ()
) -> dict[str, str]:
    """The recorded request's files, with the choices that call for each piece.

    ``types`` adds a column of each database type to the users table; ``execrows``
    keeps DisableUser :execrows (else :exec).
    """
    request: dict[str, Any] = json.loads((RECORDED / "request.json").read_text())
    users = request["catalog"]["schemas"][0]["tables"][0]
    for number, db_type in enumerate(types):
        column = copy.deepcopy(users["columns"][1])
        column["name"] = f"extra_{number}"
        column["type"] = {"catalog": "", "name": db_type, "schema": ""}
        users["columns"].append(column)
    if not execrows:
        next(q for q in request["queries"] if q["name"] == "DisableUser")["cmd"] = ":exec"
    if iterators:
        request["global_options"] = "eyJlbWl0X2l0ZXJhdG9ycyI6IHRydWV9"  # emit_iterators: true
    return generate(json.dumps(request).encode())


def pieces_in(db: str) -> set[str]:
    found = {piece for piece, marks in MARKS.items() if all(m in db for m in marks)}
    partial = {piece for piece, marks in MARKS.items() if any(m in db for m in marks)}
    assert partial == found, f"pieces copied in part: {partial - found}"
    return found


@pytest.mark.parametrize(
    ("choices", "pieces"),
    [
        ({}, set()),
        ({"iterators": True}, {"cursor"}),
        ({"execrows": True}, {"rows_affected"}),
        ({"types": ("jsonb",)}, {"json"}),
        ({"types": ("pg_catalog.json",)}, {"json"}),
        ({"types": ("pg_catalog.varbit",)}, {"bits"}),
        ({"types": ("bit",)}, {"bits"}),
        ({"types": ("bit varying",)}, {"bits"}),
        (
            {"iterators": True, "execrows": True, "types": ("json", "varbit")},
            {"cursor", "rows_affected", "json", "bits"},
        ),
    ],
)
def test_db_py_holds_the_pieces_the_package_uses_and_no_other(
    choices: dict[str, Any], pieces: set[str]
) -> None:
    db = package(**choices)["db.py"]

    assert pieces_in(db) == pieces
    assert "# [" not in db  # no mark is copied
    assert "async def init_connection(conn: asyncpg.Connection) -> None:" in db
    assert "class Executor(Protocol):" in db


def test_db_py_is_clean_under_default_ruff_and_mypy_strict_with_any_pieces(
    tmp_path: Path,
) -> None:
    variants = {
        "pieces_none": package(),
        "pieces_cursor": package(iterators=True),
        "pieces_rows": package(execrows=True),
        "pieces_json": package(types=("jsonb",)),
        "pieces_bits": package(types=("varbit",)),
        "pieces_every": package(iterators=True, execrows=True, types=("json", "bit")),
    }
    for name, files in variants.items():
        (tmp_path / name).mkdir()
        for filename, text in files.items():
            (tmp_path / name / filename).write_text(text)

    results = default_checks(tmp_path, *variants)

    assert {tool: r.returncode for tool, r in results.items()} == dict.fromkeys(results, 0), {
        tool: r.stdout + r.stderr for tool, r in results.items() if r.returncode
    }
