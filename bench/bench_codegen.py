"""Benchmark of sqlc-gen-asyncpg's generated functions against hand-written asyncpg code.

Run: ``python bench/bench_codegen.py`` (uses the embedded PostgreSQL server, or the one
in ``DATABASE_URL``). It compiles a small project with the real sqlc and the plugin,
then prints, from one run, the cost of the generated ``:one`` and ``:many`` functions
relative to hand-written code running the same SQL and building the same models,
and the cost of each way of building models from ``asyncpg.Record``. Numbers are the
best of several rounds; nothing is asserted.
"""

import asyncio
import importlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import GenericAlias
from typing import Any, NamedTuple

import asyncpg
from pydantic import BaseModel, TypeAdapter

from identity_store.infrastructure.settings import parse_database_url

SCHEMA = """
CREATE TYPE user_status AS ENUM ('active', 'disabled');

CREATE TABLE users (
    id            uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    email         text        NOT NULL,
    display_name  text        NOT NULL,
    password_hash text        NULL,
    status        user_status NOT NULL DEFAULT 'active',
    version       integer     NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
"""

QUERIES = """
-- name: GetUser :one
SELECT * FROM users WHERE id = $1;

-- name: ListUsers :many
SELECT * FROM users ORDER BY id LIMIT $1;

-- name: CreateUsers :batchexec
INSERT INTO users (email, display_name) VALUES ($1, $2);
"""

CONFIG = """
version: "2"
plugins:
  - name: asyncpg
    process:
      cmd: sqlc-gen-asyncpg
      format: json
sql:
  - engine: postgresql
    schema: schema.sql
    queries: queries
    codegen:
      - plugin: asyncpg
        out: benchgen
"""

ROWS = 1000
ONE_CALLS = 2000
MANY_CALLS = 40
ROUNDS = 7


def compile_project(root: Path) -> None:
    (root / "queries").mkdir()
    (root / "schema.sql").write_text(SCHEMA)
    (root / "queries" / "users.sql").write_text(QUERIES)
    (root / "sqlc.yaml").write_text(CONFIG)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run([str(bin_dir / "sqlc"), "generate"], cwd=root, env=env, check=True)  # noqa: S603


def admin_url() -> str:
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return configured
    from identity_store.dev import start_server  # only without a server of our own

    url: str = start_server().url("postgres")
    return url


async def interleaved_async(
    first: Callable[[], Awaitable[Any]], second: Callable[[], Awaitable[Any]], calls: int
) -> tuple[float, float]:
    """Return the best per-call times of ``first`` and ``second``, taking turns each round."""
    best = [float("inf"), float("inf")]
    for _ in range(ROUNDS * 10):
        for index, fn in enumerate((first, second)):
            start = time.perf_counter()
            for _ in range(calls):
                await fn()
            best[index] = min(best[index], (time.perf_counter() - start) / calls)
    return best[0], best[1]


def interleaved(variants: list[tuple[str, Callable[[], object]]], calls: int) -> dict[str, float]:
    """Return each variant's best per-call time, the variants taking turns in every round.

    Taking turns spreads the machine's drift (other processes, CPU frequency) evenly.
    """
    timings = {label: float("inf") for label, _ in variants}
    for _ in range(ROUNDS * 3):
        for label, fn in variants:
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            timings[label] = min(timings[label], (time.perf_counter() - start) / calls)
    return timings


def best_sync(fn: Callable[[], Any], calls: int) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return min(times)


async def run(url: str, gen: str) -> None:
    users = importlib.import_module(f"{gen}.users")
    models = importlib.import_module(f"{gen}.models")
    db = importlib.import_module(f"{gen}.db")
    user_model: type[BaseModel] = models.User
    conn = await asyncpg.connect(url)
    await db.init_connection(conn)
    try:
        await conn.execute(SCHEMA)
        await users.create_users(
            conn,
            params=[
                users.CreateUsersParams(email=f"u{i}@example.com", display_name=f"User {i}")
                for i in range(ROWS)
            ],
        )
        some_id = await conn.fetchval("SELECT id FROM users LIMIT 1")
        one_sql, many_sql = users.GET_USER, users.LIST_USERS

        async def hand_one() -> BaseModel | None:
            row = await conn.fetchrow(one_sql, some_id)
            return None if row is None else user_model.model_validate(dict(row))

        async def gen_one() -> Any:
            return await users.get_user(conn, id=some_id)

        async def hand_many() -> list[BaseModel]:
            rows = await conn.fetch(many_sql, ROWS)
            return [user_model.model_validate(dict(row)) for row in rows]

        async def gen_many() -> Any:
            return await users.list_users(conn, limit=ROWS)

        print(f"sqlc-gen-asyncpg benchmark: {ROWS} rows of 8 columns, best of many rounds")
        print()
        print("calls against the server (generated / hand-written asyncpg + pydantic):")
        for label, hand, generated, calls in (
            (":one  get_user", hand_one, gen_one, ONE_CALLS // 10),
            (":many list_users", hand_many, gen_many, MANY_CALLS // 10),
        ):
            h, g = await interleaved_async(hand, generated, calls)
            print(
                f"  {label:<18} hand {h * 1e6:9.1f} us   generated {g * 1e6:9.1f} us   "
                f"ratio {g / h:.3f}"
            )

        records = await conn.fetch(many_sql, ROWS)
        list_of_models: Any = GenericAlias(list, (user_model,))
        adapter: TypeAdapter[list[BaseModel]] = TypeAdapter(list_of_models)
        validator = user_model.__pydantic_validator__
        keys = list(records[0].keys())

        def validate_dict() -> object:
            return [user_model.model_validate(dict(r)) for r in records]

        def validate_kwargs() -> object:
            return [user_model(**r) for r in records]

        def validate_positional() -> object:
            return [user_model.model_validate(dict(zip(keys, r, strict=True))) for r in records]

        def validator_direct() -> object:
            return [validator.validate_python(dict(r)) for r in records]

        def adapter_list() -> object:
            return adapter.validate_python([dict(r) for r in records])

        def construct() -> object:
            return [user_model.model_construct(**r) for r in records]

        variants: list[tuple[str, Callable[[], object]]] = [
            ("Model.model_validate(dict(r))  [:one, iter_]", validate_dict),
            ("Model(**r)", validate_kwargs),
            ("Model.model_validate({key: r[i], ...})  [Row]", validate_positional),
            ("Model.__pydantic_validator__.validate_python", validator_direct),
            ("TypeAdapter(list[Model])  [:many]", adapter_list),
            ("Model.model_construct(**r)  (trusted)", construct),
        ]
        timings = interleaved(variants, 10)
        base = timings[variants[0][0]]
        print()
        print(f"building {ROWS} models from asyncpg.Record (ratio to model_validate(dict(r))):")
        for label, _ in variants:
            t = timings[label]
            print(f"  {label:<46} {t * 1e3:8.2f} ms   ratio {t / base:.3f}")

        class ParamsTuple(NamedTuple):
            email: str
            display_name: str

        @dataclass(frozen=True, slots=True)
        class ParamsDataclass:
            email: str
            display_name: str

        class ParamsModel(BaseModel):
            email: str
            display_name: str

        print()
        print("building 1000 parameter sets for a batch (asyncpg takes a tuple as it is):")
        nt = best_sync(lambda: [ParamsTuple(email="a", display_name="b") for _ in range(1000)], 20)
        dc = best_sync(
            lambda: [ParamsDataclass(email="a", display_name="b") for _ in range(1000)], 20
        )
        pm = best_sync(lambda: [ParamsModel(email="a", display_name="b") for _ in range(1000)], 20)
        print(f"  NamedTuple [generated]               {nt * 1e3:8.2f} ms")
        print(f"  frozen slotted dataclass             {dc * 1e3:8.2f} ms   ratio {dc / nt:.2f}")
        print(f"  pydantic model                       {pm * 1e3:8.2f} ms   ratio {pm / nt:.2f}")
    finally:
        await conn.close()


async def main() -> None:
    admin = admin_url()
    name = f"codegen_bench_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    workdir = Path(tempfile.mkdtemp(prefix="bench_codegen_"))
    try:
        compile_project(workdir)
        sys.path.insert(0, str(workdir))
        await run(parse_database_url(admin).with_database(name).render(), "benchgen")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
