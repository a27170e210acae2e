"""The corpus compiled by the real sqlc and the plugin, checked and run on PostgreSQL."""

import datetime as dt
import importlib
import ipaddress
import uuid
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import pytest
from codegen_support import default_checks, run_sqlc

pytestmark = pytest.mark.codegen


def module(name: str) -> ModuleType:
    return importlib.import_module(f"gencorpus.{name}")


def test_generated_code_is_clean_under_default_ruff_and_mypy_strict(
    compiled_corpus: Path,
) -> None:
    results = default_checks(compiled_corpus, "gencorpus", "check_usage.py")

    for tool, result in results.items():
        assert result.returncode == 0, f"{tool}:\n{result.stdout}{result.stderr}"


def test_running_sqlc_twice_gives_byte_identical_files(
    compiled_corpus: Path, tmp_path: Path
) -> None:
    first = {p.name: p.read_bytes() for p in (compiled_corpus / "gencorpus").glob("*.py")}
    project = tmp_path / "again"
    project.mkdir()
    for name in ("schema.sql", "sqlc.yaml"):
        (project / name).write_bytes((compiled_corpus / name).read_bytes())
    (project / "queries").mkdir()
    for path in (compiled_corpus / "queries").iterdir():
        (project / "queries" / path.name).write_bytes(path.read_bytes())

    assert run_sqlc(project).returncode == 0
    second = {p.name: p.read_bytes() for p in (project / "gencorpus").glob("*.py")}
    assert second == first


def everything_values(mood: Any) -> dict[str, Any]:
    return {
        "c_smallint": -32768,
        "c_integer": 2_147_483_647,
        "c_bigint": -9_223_372_036_854_775_808,
        "c_numeric": Decimal("123456789.125"),
        "c_real": 1.5,
        "c_double": 2.718281828459045,
        "c_boolean": True,
        "c_text": "héllo ✓",
        "c_varchar": "varchar",
        "c_char": "abc",
        "c_citext": "MiXeD",
        "c_name": "a_name",
        "c_uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "c_date": dt.date(2024, 2, 29),
        "c_time": dt.time(23, 59, 58, 123456),
        "c_timetz": dt.time(12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "c_timestamp": dt.datetime(2024, 1, 2, 3, 4, 5, 6),
        "c_timestamptz": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "c_interval": dt.timedelta(days=3, hours=4, microseconds=5),
        "c_json": {"list": [1, 2.5, "x", None, True], "nested": {"a": {}}},
        "c_jsonb": ["jsonb", {"k": 1}],
        "c_bytea": b"\x00\xffbytes",
        "c_inet": ipaddress.IPv6Address("2001:db8::1"),
        "c_cidr": ipaddress.IPv4Network("10.1.0.0/16"),
        "c_macaddr": "08:00:2b:01:02:03",
        "c_money": "$12.34",
        "c_bit": "1010",
        "c_varbit": "110",
        "c_oid": 4_000_000_000,
        "c_mood": mood.SO_SO,
        "c_text_array": ["a", "b,c", ""],
        "c_int_grid": [[1, 2], [3, 4]],
        "c_mood_array": [mood.HAPPY, mood.SAD],
        "c_uuid_array": [uuid.UUID(int=1)],
        "c_point": asyncpg.Point(1.5, -2),
        "n_integer": None,
        "n_text": None,
        "n_jsonb": None,
        "n_mood": None,
        "n_timestamptz": None,
        "n_int_array": None,
    }


async def test_every_type_round_trips_through_a_table_model(
    conn: asyncpg.Connection, gencorpus: ModuleType
) -> None:
    types, models = module("types"), module("models")
    values = everything_values(models.Mood)

    inserted = await types.insert_everything(conn, **values)

    assert isinstance(inserted, models.Everything)
    fetched = await types.get_everything(conn, id=inserted.id)
    assert fetched == inserted
    for name, value in values.items():
        assert getattr(fetched, name) == value, name
    assert type(fetched.c_mood) is models.Mood
    assert all(type(m) is models.Mood for m in fetched.c_mood_array)
    assert isinstance(fetched.c_xid8, int) and fetched.c_xid8 > 0
    raw = await conn.fetchrow(
        "SELECT c_jsonb = $2::jsonb AS same_jsonb, c_money::text, c_bit::text "
        "FROM everything WHERE id = $1",
        inserted.id,
        ["jsonb", {"k": 1}],
    )
    assert raw is not None
    assert raw["same_jsonb"] is True
    assert (raw["c_money"], raw["c_bit"]) == ("$12.34", "1010")


async def test_nullable_columns_round_trip_values_and_none(
    conn: asyncpg.Connection, gencorpus: ModuleType
) -> None:
    types, models = module("types"), module("models")
    values = everything_values(models.Mood) | {
        "n_integer": 7,
        "n_text": "t",
        "n_jsonb": {"k": [None]},
        "n_mood": models.Mood.HAPPY,
        "n_timestamptz": dt.datetime(2020, 5, 6, tzinfo=dt.UTC),
        "n_int_array": [1, 2, 3],
    }

    row = await types.insert_everything(conn, **values)

    assert row is not None
    assert (row.n_integer, row.n_text, row.n_jsonb) == (7, "t", {"k": [None]})
    assert row.n_mood is models.Mood.HAPPY
    assert await types.get_nullable_mood(conn, id=row.id) is models.Mood.HAPPY
    assert row.n_int_array == [1, 2, 3]


async def test_scalar_results_are_bare_values_converted_to_their_types(
    conn: asyncpg.Connection, gencorpus: ModuleType
) -> None:
    types, models = module("types"), module("models")
    row = await types.insert_everything(conn, **everything_values(models.Mood))
    assert row is not None

    assert await types.get_mood(conn, id=row.id) is models.Mood.SO_SO
    assert await types.get_nullable_mood(conn, id=row.id) is None
    assert await types.get_mood(conn, id=-1) is None
    moods = await types.get_mood_array(conn, id=row.id)
    assert moods == [models.Mood.HAPPY, models.Mood.SAD]
    assert moods is not None and all(type(m) is models.Mood for m in moods)
    assert ["jsonb", {"k": 1}] in await types.list_jsonb(conn)
    count = await types.count_everything(conn)
    assert isinstance(count, int) and count >= 1


async def test_parameter_casts_come_back_as_python_values(
    conn: asyncpg.Connection, gencorpus: ModuleType
) -> None:
    types, models = module("types"), module("models")
    at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

    row = await types.echo_types(conn, a=[1, 2], b=at, c={"x": [1]}, d=models.Mood.SAD)

    assert row is not None
    assert (row.ints, row.at, row.doc, row.feeling) == ([1, 2], at, {"x": [1]}, models.Mood.SAD)


async def test_one_many_and_streaming_return_models(
    conn: asyncpg.Connection, gencorpus: ModuleType
) -> None:
    authors, models = module("authors"), module("models")
    ids = []
    for n in range(5):
        created = await authors.create_author(
            conn, name=f"stream-{n}", bio=None, mood=models.Mood.SAD, tags=["t"], data={"n": n}
        )
        assert isinstance(created, models.Author)
        ids.append(created.id)

    listed = await authors.list_authors_by_ids(conn, ids=ids)
    async with conn.transaction():
        streamed = [a async for a in authors.iter_list_authors_by_ids(conn, ids=ids)]

    assert [a.id for a in listed] == ids
    assert streamed == listed
    assert listed[0].data == {"n": 0}
    assert await authors.get_author(conn, id=ids[0]) == listed[0]
    assert await authors.get_author(conn, id=-1) is None


async def test_functions_run_on_a_pool_as_on_a_connection(
    pool: asyncpg.Pool, gencorpus: ModuleType
) -> None:
    authors, models = module("authors"), module("models")

    created = await authors.create_author(
        pool, name="pooled", bio="b", mood=models.Mood.HAPPY, tags=[], data={"p": True}
    )

    assert created is not None
    assert created.data == {"p": True}
    assert await authors.get_author(pool, id=created.id) == created
    async with pool.acquire() as proxy, proxy.transaction():
        assert [a async for a in authors.iter_list_authors_by_ids(proxy, ids=[created.id])] == [
            created
        ]


async def test_exec_commands_report_rows_and_status(
    conn: asyncpg.Connection, gencorpus: ModuleType
) -> None:
    authors = module("authors")
    name = f"exec-{uuid.uuid4().hex}"
    new_id = await authors.create_author_id(conn, name=name)
    assert isinstance(new_id, int)
    await authors.create_author_id(conn, name=name)

    assert await authors.rename_author(conn, name=name, id=new_id) is None
    assert await authors.touch_authors(conn, name=name) == "UPDATE 2"
    assert await authors.delete_authors_named(conn, name=name) == 2
    assert await authors.delete_authors_named(conn, name=name) == 0
    assert await conn.fetchval("SELECT count(*) FROM authors WHERE name = $1", name) == 0


async def test_copyfrom_and_batches_work_over_parameter_sets(
    conn: asyncpg.Connection, gencorpus: ModuleType
) -> None:
    authors, models = module("authors"), module("models")
    prefix = f"batch-{uuid.uuid4().hex[:8]}"

    copied = await authors.copy_authors(
        conn,
        params=[
            authors.CopyAuthorsParams(
                name=f"{prefix}-a", bio="x", mood=models.Mood.SAD, tags=["1"], data={"c": [1]}
            ),
            authors.CopyAuthorsParams(
                name=f"{prefix}-b", bio=None, mood=models.Mood.HAPPY, tags=[], data="s"
            ),
        ],
    )
    await authors.batch_create_authors(
        conn,
        params=[authors.BatchCreateAuthorsParams(name=f"{prefix}-c", mood=models.Mood.SAD)],
    )
    names = await authors.batch_author_names(
        conn,
        params=[
            authors.BatchAuthorNamesParams(name=f"{prefix}-%"),
            authors.BatchAuthorNamesParams(name="nobody"),
        ],
    )
    ids = await conn.fetch("SELECT id FROM authors WHERE name LIKE $1 ORDER BY id", f"{prefix}%")
    found = await authors.batch_get_author(
        conn,
        params=[authors.BatchGetAuthorParams(id=ids[0]["id"]), authors.BatchGetAuthorParams(id=-1)],
    )

    assert copied == 2
    assert names == [[f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"], []]
    assert found[0] is not None and found[0].name == f"{prefix}-a"
    assert found[0].mood is models.Mood.SAD
    assert found[1] is None
    assert found[0].data == {"c": [1]}


async def test_copyfrom_draws_its_parameter_sets_from_a_generator_as_it_sends(
    conn: asyncpg.Connection, gencorpus: ModuleType
) -> None:
    authors, models = module("authors"), module("models")
    prefix = f"stream-{uuid.uuid4().hex[:8]}"
    drawn = 0

    def params() -> Any:
        nonlocal drawn
        for n in range(3000):
            drawn += 1
            yield authors.CopyAuthorsParams(
                name=f"{prefix}-{n}", bio=None, mood=models.Mood.SAD, tags=[], data={}
            )

    source = params()
    assert drawn == 0
    assert await authors.copy_authors(conn, params=source) == 3000
    assert drawn == 3000
    count = "SELECT count(*) FROM authors WHERE name LIKE $1"
    assert await conn.fetchval(count, f"{prefix}-%") == 3000


async def test_embedded_tables_and_outer_joins_have_the_right_shape(
    conn: asyncpg.Connection, gencorpus: ModuleType
) -> None:
    authors, models = module("authors"), module("models")
    author = await authors.create_author(
        conn, name="embed", bio=None, mood=models.Mood.HAPPY, tags=[], data=[]
    )
    lonely = await authors.create_author(
        conn, name="lonely", bio=None, mood=models.Mood.HAPPY, tags=[], data=[]
    )
    assert author is not None and lonely is not None
    book = await authors.create_book(conn, author_id=author.id, title="T", price=9.5)
    assert isinstance(book, models.Book) and book.price == 9.5

    embedded = await authors.list_books_with_authors(conn, author_id=author.id)
    left = await authors.list_authors_left_join_books(conn, ids=[author.id, lonely.id])
    right = await authors.list_books_right_join_authors(conn, author_id=lonely.id)
    both = await authors.list_both_ids(conn, id=author.id)

    assert [(r.books, r.authors) for r in embedded] == [(book, author)]
    assert [(r.name, r.title, r.price) for r in left] == [
        ("embed", "T", 9.5),
        ("lonely", None, None),
    ]
    assert [(r.title, r.name) for r in right] == [(None, "lonely")]
    assert [(r.id, r.id_2) for r in both] == [(author.id, book.id)]


async def test_keyword_columns_become_fields_with_aliases(
    conn: asyncpg.Connection, gencorpus: ModuleType
) -> None:
    authors, models = module("authors"), module("models")

    row = await authors.create_keyword(conn, id=1, from_="f", class_=2, json="j", schema=None)

    assert row == models.Keyword(id=1, from_="f", class_=2, json_="j", schema_=None)
    assert row is not None and row.model_dump(by_alias=True)["from"] == "f"


async def test_functions_with_long_names_run_like_the_others(
    conn: asyncpg.Connection, gencorpus: ModuleType
) -> None:
    authors, models = module("authors"), module("models")
    author = await authors.create_author(
        conn, name="long", bio=None, mood=models.Mood.SAD, tags=[], data={}
    )
    assert author is not None

    names = await authors.list_author_names_and_moods_for_the_layout_of_long_lines(
        conn, ids_of_the_authors_to_read=[author.id]
    )
    moods = await authors.list_author_mood_arrays_for_the_layout_of_long_lines_of_scalars(
        conn, ids_of_the_authors_to_read=[author.id]
    )
    batch = await authors.batch_get_author_name_and_mood_for_the_layout_of_long_lines(
        conn,
        params=[authors.BatchGetAuthorNameAndMoodForTheLayoutOfLongLinesParams(id=author.id)],
    )

    assert [(r.name, r.mood) for r in names] == [("long", models.Mood.SAD)]
    assert moods == [[models.Mood.SAD, models.Mood.SAD]]
    assert [(r.name, r.mood) for r in batch if r is not None] == [("long", models.Mood.SAD)]
