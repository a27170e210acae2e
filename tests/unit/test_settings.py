"""The one settings loader: where values come from, and database URLs read as asyncpg
reads them without ever repeating a password."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import pytest
from asyncpg import connect_utils

from identity_store.domain.errors import DatabaseConfigError
from identity_store.infrastructure.settings import (
    DatabaseURLError,
    Settings,
    database_url,
    describe_url,
    load_settings,
    parse_database_url,
    read_environment,
)

pytestmark = pytest.mark.unit

SECRET = "Zq9xSecret"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("DATABASE_URL", "DB_URL", "DB_POOL_MAX_SIZE", "DB_POOL_MIN_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- where settings come from ------------------------------------------------------------


def test_env_local_overrides_env_and_the_environment_overrides_both(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".env").write_text(
        "DATABASE_URL=postgresql://a@from-env/db\nDB_POOL_MAX_SIZE=4\nDB_POOL_MIN_SIZE=2\n"
    )
    assert database_url() == "postgresql://a@from-env/db"
    (clean_env / ".env.local").write_text("DB_URL=postgresql://a@from-env-local/db\n")
    assert database_url() == "postgresql://a@from-env-local/db"
    settings = Settings()
    assert settings.parsed_url.hosts == (("from-env-local", None),)
    assert (settings.pool_min_size, settings.pool_max_size) == (2, 4)

    monkeypatch.setenv("DB_URL", "postgresql://a@from-process/db")
    monkeypatch.setenv("DB_POOL_MAX_SIZE", "7")
    assert database_url() == "postgresql://a@from-process/db"
    settings = Settings()
    assert settings.parsed_url.hosts == (("from-process", None),)
    assert settings.pool_max_size == 7
    # Keyword arguments win over everything.
    assert Settings(database_url="postgresql://a@kw/db").parsed_url.hosts == (("kw", None),)


def test_database_url_wins_over_db_url_in_one_source(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_URL", "postgresql://a@alias/db")
    monkeypatch.setenv("DATABASE_URL", "postgresql://a@main/db")
    merged = read_environment()
    assert merged["DATABASE_URL"] == "postgresql://a@main/db"
    assert "DB_URL" not in merged  # a child process sees one answer


def test_nothing_configured_is_none_and_a_clear_error(clean_env: Path) -> None:
    assert database_url() is None
    with pytest.raises(DatabaseConfigError, match=r"DATABASE_URL \(or DB_URL\) is not set"):
        load_settings()


# --- database URLs -----------------------------------------------------------------------


def _asyncpg_reads(url: str) -> tuple[Any, ...]:
    """What asyncpg's own parser makes of ``url``: (hosts+ports, user, password, database)."""
    addrs, params = connect_utils._parse_connect_dsn_and_args(  # type: ignore[attr-defined]
        dsn=url,
        host=None,
        port=None,
        user=None,
        password=None,
        passfile="/nonexistent",
        database=None,
        ssl=None,
        service=None,
        servicefile=None,
        direct_tls=None,
        server_settings=None,
        target_session_attrs=None,
        krbsrvname=None,
        gsslib=None,
    )[:2]
    return (tuple(addrs), params.user, params.password, params.database)


ACCEPTED = [
    "postgresql://app:pw@db.internal:5432/identity",
    "postgres://app@db1:5432,db2:5432/identity?target_session_attrs=read-write",
    "postgresql://app:pw@db1,db2:6432,db3/identity?target_session_attrs=primary",
    "postgresql://app:pw@[::1]:5433/identity",
    "postgresql://app:p%2Fw%23x%3Fy%40z@127.0.0.1/identity?sslmode=disable",
    "postgresql://app:p:w@127.0.0.1/identity",
    "postgresql://%2Fvar%2Frun%2Fpostgresql/identity",
    "postgresql:///identity?host=/var/run/postgresql",
    "postgresql://app@localhost/identity?application_name=a%40b&connect_timeout=5",
    "postgresql://localhost/identity?port=5433",
    "postgresql://app@localhost",
    "postgresql://u%40corp:pw@h/d%20b",
]


@pytest.mark.parametrize("url", ACCEPTED)
def test_every_url_asyncpg_reads_is_accepted_and_means_the_same(url: str) -> None:
    parsed = parse_database_url(url)
    rendered = parsed.render()
    # What we pass on means to asyncpg exactly what the original meant.
    assert _asyncpg_reads(rendered) == _asyncpg_reads(url)
    assert Settings(database_url=url).database_url.get_secret_value() == rendered


def test_multi_host_urls_keep_every_host_and_port() -> None:
    parsed = parse_database_url(
        "postgres://app@db1:5432,db2:5433/identity?target_session_attrs=read-write"
    )
    assert parsed.hosts == (("db1", 5432), ("db2", 5433))
    assert parsed.database == "identity"
    assert dict(parsed.query) == {"target_session_attrs": "read-write"}
    assert parsed.with_database("postgres").render() == (
        "postgres://app@db1:5432,db2:5433/postgres?target_session_attrs=read-write"
    )
    assert describe_url(parsed.render()) == "postgres://app@db1:5432,db2:5433/identity"


AWKWARD_PASSWORD = "p/?#@:w" + SECRET


@pytest.mark.parametrize(
    ("hosts", "read"),
    [
        ("db1:5432,db2:5433", (("db1", 5432), ("db2", 5433))),
        ("[::1]:5433", (("::1", 5433),)),
        # "db1:5432,[::1]:5433" is left out: CPython releases with the bracketed-netloc
        # check (Debian's 3.11.2, 3.12+) refuse it in urlsplit, which asyncpg uses.
    ],
)
def test_another_database_and_role_keep_every_host_and_encode_the_password(
    hosts: str, read: tuple[tuple[str, int], ...]
) -> None:
    parsed = parse_database_url(
        f"postgresql://app:old@{hosts}/identity?target_session_attrs=read-write"
    )
    moved = parsed.with_database("other db", user="owner@x", password=AWKWARD_PASSWORD)
    rendered = moved.render()
    assert parse_database_url(rendered) == moved
    assert _asyncpg_reads(rendered)[:3] == (read, "owner@x", AWKWARD_PASSWORD)
    assert (moved.database, moved.query) == ("other db", parsed.query)
    assert parsed.with_database("x").password == "old"


def test_an_ipv6_host_among_several_keeps_its_brackets() -> None:
    parsed = parse_database_url("postgresql://app:old@db1:5432,[::1]:5433/identity")
    assert parsed.hosts == (("db1", 5432), ("::1", 5433))
    assert parse_database_url(parsed.with_database("x").render()).hosts == parsed.hosts


@pytest.mark.parametrize(
    ("url", "location"),
    [
        (f"postgresql://app:{SECRET}@db1:5432,db2/identity", "db1:5432,db2/identity"),
        (f"postgresql://app:{SECRET}@[::1]:5432/identity", "[::1]:5432/identity"),
        ("postgresql:///identity?host=/run/pg&port=5433", "/run/pg:5433/identity"),
        ("postgresql:///identity?host=a,b&port=1,2", "a:1,b:2/identity"),
        ("postgresql://app@/identity", "localhost/identity"),
    ],
)
def test_the_location_names_every_host_and_never_the_credentials(url: str, location: str) -> None:
    assert parse_database_url(url).location() == location


def test_a_bare_at_sign_in_the_password_is_read_as_libpq_means_it() -> None:
    parsed = parse_database_url(f"postgresql://app:{SECRET}@x@db:5432/identity")
    assert (parsed.user, parsed.password, parsed.hosts) == ("app", f"{SECRET}@x", (("db", 5432),))
    # Passed on encoded, so asyncpg (which splits at the first '@') reads the same.
    assert _asyncpg_reads(parsed.render())[:3] == ((("db", 5432),), "app", f"{SECRET}@x")


BROKEN = [
    (f"postgresql://app:{SECRET}/x@db:5432/identity", "an '@' follows the host"),
    (f"postgresql://app:{SECRET}#x@db:5432/identity", "an '@' follows the host"),
    (f"postgresql://app:{SECRET}?x@db:5432/identity", "port of the host is not a number"),
    (f"postgresql://app:12/{SECRET}@db/identity", "an '@' follows the host"),
    (f"postgresql://app:{SECRET}@db:99999/identity", "out of range 1-65535"),
    (f"postgresql://app:{SECRET}@db:54x/identity", "port of the host is not a number"),
    (f"postgresql://app:{SECRET}@db1:5432,:5433/identity", "host 2 is empty"),
    (f"postgresql://app:{SECRET}@db1:5432,db2:x/identity", "port of host 2 is not a number"),
    (f"postgresql://app:{SECRET}@[::1/identity", "IPv6"),
    (f"mysql://app:{SECRET}@db/identity", "must start with postgresql:// or postgres://"),
    (f"app:{SECRET}@db/identity", "is not a URL"),
    (f"postgresql://app:{SECRET}@db/identity?{SECRET}", "key=value"),
]


@pytest.mark.parametrize(("url", "expected"), BROKEN)
def test_unreadable_urls_name_the_problem_and_never_the_password(url: str, expected: str) -> None:
    with pytest.raises(DatabaseURLError, match=expected) as caught:
        parse_database_url(url)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None

    with pytest.raises(ValueError) as via_settings:
        Settings(database_url=url)
    shown = "".join(traceback.format_exception(via_settings.value))
    assert SECRET not in shown
    assert SECRET not in repr(via_settings.value)
    assert describe_url(url) == "<unparseable DATABASE_URL>"


@pytest.mark.parametrize(("url", "expected"), BROKEN)
def test_load_settings_gives_one_precise_line(
    url: str, expected: str, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(DatabaseConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert SECRET not in message
    assert "\n" not in message
    assert expected.split("[")[0] in message or expected in message
    assert caught.value.__cause__ is None


def test_settings_and_parsed_urls_never_show_the_password() -> None:
    url = f"postgresql://app:{SECRET}@db1:5432,db2:5432/identity"
    settings = Settings(database_url=url)
    parsed = settings.parsed_url
    for text in (repr(settings), str(settings), repr(parsed), str(parsed), describe_url(url)):
        assert SECRET not in text
    assert parsed.password == SECRET
