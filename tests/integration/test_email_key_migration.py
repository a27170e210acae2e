"""The email_key migration on a database that already holds users: every existing row
gets its key (a stored generated column is computed when it is added), and lookups
find exactly the rows they should."""

from __future__ import annotations

import asyncpg
import pytest

from identity_store.domain.validation import email_key
from identity_store.infrastructure.db import Settings, create_pool
from identity_store.infrastructure.persistence.user_repo import PostgresUserRepository
from tests.conftest import DATABASE_LOCALES, ROOT, MakeDatabase, atlas

pytestmark = pytest.mark.integration

MIGRATION = "_email_key.sql"


def _versions_before_the_email_key() -> int:
    names = sorted(path.name for path in (ROOT / "migrations").glob("*.sql"))
    return next(i for i, name in enumerate(names) if name.endswith(MIGRATION))


@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])
async def test_existing_users_get_their_key_and_lookups_stay_within_their_account(
    make_database: MakeDatabase, locale: str
) -> None:
    url = await make_database("emailkey", DATABASE_LOCALES[locale])
    before = str(_versions_before_the_email_key())
    applied = atlas("migrate", "apply", "--dir", "file://migrations", "--url", url, before)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    # What older versions could hold: mixed case, and (written by anything but this
    # package's validation) an address with a Kelvin sign, distinct from kate@ in C.
    stored = ["Kate@Example.Test", "admin@example.test", "\u212aelvin@example.test"]
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany(
            "INSERT INTO users (email, display_name, created_at, updated_at)"
            " VALUES ($1, 'Old', now(), now())",
            [(address,) for address in stored],
        )
    finally:
        await conn.close()

    rest = atlas("migrate", "apply", "--dir", "file://migrations", "--url", url)
    assert rest.returncode == 0, rest.stdout + rest.stderr

    pool = await create_pool(Settings(database_url=url, pool_max_size=2))
    try:
        keys = dict(await pool.fetch("SELECT email, email_key FROM users"))
        assert keys == {address: email_key(address) for address in stored}
        users = PostgresUserRepository(pool)
        kate = await users.get_by_email("kate@example.test")
        assert kate is not None and kate.email == "Kate@Example.Test"
        assert await users.get_by_email("\u212aate@example.test") is None
        assert await users.get_by_email("kelvin@example.test") is None
        assert await users.get_by_email("adm\u0130n@example.test") is None
    finally:
        await pool.close()
