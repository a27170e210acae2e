"""The way from a generated query to the domain's models for the reads that need the
records (persistence/_records.py): the records of the generated function, validated once."""

from __future__ import annotations

import ast
import inspect
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from identity_store._generated import events, subscriptions
from identity_store.domain.models import User, UserStatus
from identity_store.infrastructure.persistence import _records
from identity_store.infrastructure.persistence._records import Reader, fetch

pytestmark = pytest.mark.unit

PACKAGE = Path(_records.__file__).resolve().parents[2]
REPOSITORIES = PACKAGE / "infrastructure" / "persistence"


class _Db:
    """Answers every fetch with the same records; nothing the function could validate."""

    def __init__(self, records: list[Any]) -> None:
        self.records = records
        self.calls = 0

    async def fetchrow(self, query: str, *args: object) -> Any:
        self.calls += 1
        return self.records[0] if self.records else None

    async def fetch(self, query: str, *args: object) -> Any:
        self.calls += 1
        return self.records


def _fetched_queries() -> list[Any]:
    """Every generated function a repository hands to ``fetch``."""
    modules = {"event_repo.py": events, "subscription_repo.py": subscriptions}
    found = []
    for file, module in modules.items():
        tree = ast.parse((REPOSITORIES / file).read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "fetch"
                and isinstance(node.args[0], ast.Attribute)
            ):
                found.append(getattr(module, node.args[0].attr))
    return sorted(set(found), key=lambda f: f.__qualname__)


FETCHED = _fetched_queries()


def test_only_reads_that_need_a_column_the_domain_model_leaves_out_keep_records() -> None:
    # Every other read's generated function returns the domain's model (sqlc.yaml).
    assert set(FETCHED) == {
        events.append_event,
        events.read_event_stream,
        subscriptions.read_subscription_batch,
    }


@pytest.mark.parametrize("query", FETCHED, ids=lambda f: f.__name__)
@pytest.mark.parametrize("count", [0, 1, 2])
async def test_a_generated_function_leaves_the_records_unvalidated(query: Any, count: int) -> None:
    # The precondition of fetch(): a :one given no row returns None and a :many given
    # an empty list validates nothing. Records the function would fail to validate
    # prove that it never sees them.
    records = [{"not": "a row of anything"}] * count
    db = _Db(records)
    arguments = {name: None for name in list(inspect.signature(query).parameters)[1:]}
    got = await fetch(query, db, **arguments)  # type: ignore[arg-type]
    assert db.calls == 1
    assert list(got) == (
        records if "list" in str(inspect.signature(query).return_annotation) else records[:1]
    )


def _user_columns() -> dict[str, Any]:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return {
        "id": uuid.uuid4(),
        "email": "ada@example.com",
        "display_name": "Ada",
        "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        "status": "active",
        "version": 3,
        "created_at": now,
        "updated_at": now,
        "email_key": "ada@example.com",
    }


def test_rows_are_read_by_column_name_whatever_the_order_of_columns_and_fields() -> None:
    columns = _user_columns()
    reversed_record = dict(reversed(list(columns.items())))
    reader = Reader(User)
    forward, backward = reader.all([columns, reversed_record])
    assert forward == backward == reader.one([reversed_record])
    assert forward.status is UserStatus.ACTIVE and forward.version == 3
    assert isinstance(forward.password_hash, SecretStr)
    assert forward.password_hash.get_secret_value() == columns["password_hash"]
    assert not hasattr(forward, "email_key")
    assert reader.one([]) is None and reader.all([]) == []


def test_no_module_writes_pydantic_internals() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert "__pydantic_" not in path.read_text(), path
