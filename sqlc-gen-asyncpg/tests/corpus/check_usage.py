"""Type-checked next to the generated corpus (never run).

asyncpg's objects fit the protocols, and the results have the promised types.
"""

import asyncpg

from gencorpus import authors, types
from gencorpus.db import CursorExecutor, Executor, init_connection
from gencorpus.models import Author, Mood


async def pool_and_connections_are_executors(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    executors: list[Executor] = [pool, conn]
    cursor_sources: list[CursorExecutor] = [conn]
    async with pool.acquire() as proxy:
        executors.append(proxy)
        cursor_sources.append(proxy)
    await asyncpg.create_pool("postgresql://", init=init_connection)
    await init_connection(conn)


async def results_are_typed(pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    author: Author | None = await authors.get_author(pool, id=1)
    many: list[Author] = await authors.list_authors_by_ids(pool, ids=[1, 2])
    async with conn.transaction():
        async for streamed in authors.iter_list_authors_by_ids(
            conn, ids=[1], prefetch=10
        ):
            many.append(streamed)
    mood: Mood | None = await types.get_mood(conn, id=1)
    count: int | None = await types.count_everything(conn)
    new_id: int = await authors.create_author_id(conn, name="x")
    deleted: int = await authors.delete_authors_named(conn, name="x")
    status: str = await authors.touch_authors(conn, name="x")
    copied: int = await authors.copy_authors(
        conn,
        params=[
            authors.CopyAuthorsParams(
                name="a", bio=None, mood=Mood.SAD, tags=[], data={}
            )
        ],
    )
    found: list[Author | None] = await authors.batch_get_author(
        conn, params=[authors.BatchGetAuthorParams(id=1)]
    )
    names: list[list[str]] = await authors.batch_author_names(
        conn, params=[authors.BatchAuthorNamesParams(name="a%")]
    )
    print(author, many, mood, count, new_id, deleted, status, copied, found, names)
