"""A broad corpus of real-world PostgreSQL queries, each compiled, checked and prepared.

``realworld/`` holds a task tracker and a shop (extensions citext, ltree, hstore and
vector; enums with labels that are not identifiers) and about 140 queries written the
way applications write them: joins of every kind, CTEs (recursive too), window
functions, aggregates with FILTER and ordered sets, upserts, RETURNING, arrays, jsonb
and hstore operators, LATERAL, generate_series, DISTINCT ON, keyset pagination,
sqlc.slice, sqlc.embed, advisory locks, every command.

Measured: each query compiled alone into its own package; the share whose code imports
and passes ``ruff check``, ``ruff format --check`` (ruff's defaults) and
``mypy --strict`` must be at least 95%, with no crash. Then the whole corpus compiled
by the real sqlc in one go passes the same checks, and every query's SQL as written
into the code is prepared by PostgreSQL with the parameter count the function takes.
"""

import datetime
import importlib
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import pytest
from codegen_support import (
    REALWORLD,
    capture_request,
    compile_each,
    default_checks,
    run_sqlc,
)
from conftest import MakeDatabase, Target, imported

pytestmark = pytest.mark.codegen


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("realworld") / "project"
    shutil.copytree(REALWORLD, root)
    return root


@pytest.fixture(scope="module")
def request_json(project: Path) -> dict[str, Any]:
    return capture_request(project)


@pytest.fixture(scope="module")
def genrw(project: Path) -> Iterator[ModuleType]:
    result = run_sqlc(project)
    assert result.returncode == 0, result.stderr
    with imported(project, "genrw") as package:
        yield package


@pytest.fixture(scope="module")
async def rw_database(make_database: MakeDatabase) -> AsyncIterator[Target]:
    target = await make_database("realworld")
    conn = await asyncpg.connect(**target)
    try:
        await conn.execute((REALWORLD / "schema.sql").read_text())
    except asyncpg.FeatureNotSupportedError as exc:
        # Only an extension the server does not ship (pgvector is not in Debian's
        # PostgreSQL packages); the embedded server CI runs on has them all.
        if "is not available" not in str(exc):
            raise
        pytest.skip(f"this server lacks an extension the corpus needs: {exc}")
    finally:
        await conn.close()
    yield target


def test_the_corpus_is_broad(request_json: dict[str, Any]) -> None:
    queries = request_json["queries"]
    commands = {q["cmd"] for q in queries}

    assert len(queries) >= 100
    assert commands == {
        ":one",
        ":many",
        ":exec",
        ":execrows",
        ":execresult",
        ":copyfrom",
        ":batchexec",
        ":batchone",
        ":batchmany",
    }


def test_at_least_95_percent_compile_clean_and_nothing_crashes(
    request_json: dict[str, Any], tmp_path: Path
) -> None:
    # In the test, not a fixture: mutmut orders tests by their own run time.
    report = compile_each(request_json, tmp_path)
    print(f"\nreal-world corpus: {report.summary()}")
    for name, message in sorted(report.refused.items()):
        print(f"  refused {name}: {message}")
    for name, found in sorted(report.unclean.items()):
        print(f"  findings {name}: {found[:3]}")

    assert report.crashed == {}
    assert len(report.clean) >= 0.95 * report.total, report.summary()
    # Refusals are one line naming the query.
    for name, message in report.refused.items():
        assert "\n" not in message and name in message


def test_the_whole_corpus_compiles_into_one_clean_package(project: Path, genrw: ModuleType) -> None:
    results = default_checks(project, "genrw")

    for tool, result in results.items():
        assert result.returncode == 0, f"{tool}:\n{result.stdout}{result.stderr}"


async def test_postgresql_prepares_every_query_as_written(
    rw_database: Target, genrw: ModuleType, request_json: dict[str, Any]
) -> None:
    from sqlc_gen_asyncpg.naming import snake, upper_snake

    conn = await asyncpg.connect(**rw_database)
    try:
        for query in request_json["queries"]:
            module = importlib.import_module(f"genrw.{snake(Path(query['filename']).stem)}")
            sql = getattr(module, upper_snake(query["name"]))
            statement = await conn.prepare(sql)
            assert len(statement.get_parameters()) == len(query["params"]), query["name"]
    finally:
        await conn.close()


@pytest.fixture
async def rw(rw_database: Target, genrw: ModuleType) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the corpus database in a transaction rolled back at the end."""
    db = importlib.import_module("genrw.db")
    conn = await asyncpg.connect(**rw_database)
    await db.init_connection(conn)
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield conn
    finally:
        await transaction.rollback()
        await conn.close()


def rw_module(name: str) -> Any:
    return importlib.import_module(f"genrw.{name}")


async def an_organization_with_users(conn: asyncpg.Connection) -> tuple[Any, list[Any]]:
    orgs, users, models = rw_module("organizations"), rw_module("users"), rw_module("models")
    org = await orgs.create_organization(conn, slug="acme", name="Acme", plan="pro")
    people = [
        await users.create_user(
            conn,
            org_id=org.id,
            email=f"{name}@acme.test",
            full_name=name.title(),
            role=role,
            tags=["t"],
            attrs='"team"=>"core"' if name == "ada" else None,
        )
        for name, role in (
            ("ada", models.MemberRole.OWNER),
            ("bob", models.MemberRole.ADMIN),
            ("cy", models.MemberRole.GUEST),
        )
    ]
    return org, people


async def test_queries_named_like_builtins_compile_and_run(rw: asyncpg.Connection) -> None:
    users = rw_module("users")
    _, people = await an_organization_with_users(rw)

    listed = await users.list_(rw)
    day = await users.date_(rw, id=people[0].id)

    assert [row.email for row in listed] == ["ada@acme.test", "bob@acme.test", "cy@acme.test"]
    assert day == people[0].created_at.date()
    assert not hasattr(users, "list")
    assert users.date is datetime.date  # the import, not the function


async def test_slices_become_any_and_all_with_list_parameters(rw: asyncpg.Connection) -> None:
    users, shop, models = rw_module("users"), rw_module("shop"), rw_module("models")
    org, people = await an_organization_with_users(rw)
    ada, bob, cy = people

    chosen = await users.list_users_by_slice(rw, ids=[cy.id, ada.id])
    others = await users.list_users_not_in_roles(
        rw, org_id=org.id, roles=[models.MemberRole.OWNER, models.MemberRole.GUEST]
    )
    nothing = await shop.orders_in_statuses(rw, statuses=[])
    everyone = await users.list_users_not_in_roles(rw, org_id=org.id, roles=[])

    assert [row.full_name for row in chosen] == ["Ada", "Cy"]
    assert [(row.id, row.role) for row in others] == [(bob.id, models.MemberRole.ADMIN)]
    assert nothing == []
    assert len(everyone) == 3


async def test_extension_types_travel_as_text(rw: asyncpg.Connection) -> None:
    users, shop, tasks, projects = (
        rw_module("users"),
        rw_module("shop"),
        rw_module("tasks"),
        rw_module("projects"),
    )
    models = rw_module("models")
    org, people = await an_organization_with_users(rw)
    product = await shop.create_product(
        rw,
        sku="sku-1",
        name="Lamp",
        price=1,
        stock=3,
        category_path="home.lighting",
        embedding="[1,2,3]",
        attributes={"colour": "red"},
    )
    project = await projects.create_project(
        rw, org_id=org.id, name="P", description=None, budget=None
    )
    for path in ("a", "a.b", "a.b.c", "z"):
        await tasks.create_task(
            rw,
            project_id=project.id,
            parent_id=None,
            path=path,
            title=path,
            body=None,
            priority=models.Priority.VALUE_3,
            assignee_id=None,
            due_on=None,
            estimate=None,
            labels=[],
        )

    assert await users.user_attributes(rw, id=people[0].id) == '"team"=>"core"'
    assert await users.user_attribute(rw, name="team", id=people[0].id) == "core"
    assert product.embedding == "[1,2,3]"
    assert await shop.product_embedding(rw, id=product.id) == "[1,2,3]"
    subtree = await tasks.task_subtree(rw, root="a.b")
    assert [row.path for row in subtree] == ["a.b", "a.b.c"]
    nearest = await shop.nearest_products(rw, target="[1,2,4]", max_results=1)
    assert [(row.id, row.distance) for row in nearest] == [(product.id, 1.0)]


async def test_enum_labels_that_are_not_identifiers_round_trip(rw: asyncpg.Connection) -> None:
    shop, models = rw_module("shop"), rw_module("models")
    assert [(m.name, m.value) for m in models.Rating] == [
        ("VALUE_1", "+1"),
        ("VALUE_1_2", "-1"),
        ("VALUE_0", "0"),
    ]
    assert [m.name for m in models.HttpMethod] == [
        "GET",
        "GET_2",
        "POST",
        "POST_2",
        "SO_SO",
        "SO_SO_2",
    ]
    customer = await shop.create_customer(rw, email="c@shop.test", name="C", country="NL")
    product = await shop.create_product(
        rw,
        sku="sku-2",
        name="Desk",
        price=10,
        stock=1,
        category_path="home",
        embedding=None,
        attributes={},
    )

    review = await shop.add_review(
        rw,
        product_id=product.id,
        customer_id=customer.id,
        rating=models.Rating.VALUE_1_2,
        body=None,
    )
    found = await shop.reviews_with_rating(rw, ratings=[models.Rating.VALUE_1_2])

    assert review.rating is models.Rating.VALUE_1_2
    assert [(row.id, row.rating) for row in found] == [(review.id, models.Rating.VALUE_1_2)]
    assert await shop.product_ratings(rw, product_id=product.id) == [
        shop.ProductRatingsRow(rating=models.Rating.VALUE_1_2, reviews=1)
    ]


async def test_void_results_run_as_exec_and_pseudo_types_as_object(
    rw: asyncpg.Connection,
) -> None:
    tasks, users = rw_module("tasks"), rw_module("users")
    _, people = await an_organization_with_users(rw)

    assert await tasks.lock_task(rw, pg_advisory_xact_lock=42) is None
    assert await tasks.try_lock_task(rw, pg_try_advisory_xact_lock=42) is True
    assert await users.user_attribute(rw, name="missing", id=people[1].id) is None
