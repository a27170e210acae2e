"""Connection settings, the asyncpg pool, a framework dependency and a health check.

Settings come from the environment or a ``.env`` file::

    DATABASE_URL=postgresql://app:secret@db.internal:5432/identity   # or DB_URL
    DB_POOL_MIN_SIZE=1
    DB_POOL_MAX_SIZE=10
    DB_COMMAND_TIMEOUT=30
    DB_STATEMENT_CACHE_SIZE=100    # 0 behind PgBouncer in transaction mode
    DB_CONNECT_TIMEOUT=10
    DB_ACQUIRE_TIMEOUT=10          # seconds to wait for a free pooled connection

Nothing connects at import time: the application calls :func:`create_pool` at start-up
and closes the pool at shutdown.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import SplitResult, urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from identity_store._generated.db import init_connection
from identity_store.domain.errors import DatabaseConfigError, DatabaseUnavailable
from identity_store.infrastructure._pool import (
    DEFAULT_ACQUIRE_TIMEOUT,
    acquire_timeout_of,
    open_pool,
)
from identity_store.infrastructure.persistence._errors import translate_errors

__all__ = ["Settings", "check_health", "create_pool", "describe_url", "get_db"]

_SCHEMES = frozenset({"postgres", "postgresql"})


class Settings(BaseSettings):
    """How to reach PostgreSQL and how big the pool is."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,  # the input is a URL with a password in it
    )

    database_url: Annotated[
        SecretStr,
        Field(validation_alias=AliasChoices("DATABASE_URL", "DB_URL", "database_url")),
    ]
    pool_min_size: Annotated[
        int, Field(ge=0, validation_alias=AliasChoices("DB_POOL_MIN_SIZE", "pool_min_size"))
    ] = 1
    pool_max_size: Annotated[
        int, Field(ge=1, validation_alias=AliasChoices("DB_POOL_MAX_SIZE", "pool_max_size"))
    ] = 10
    command_timeout: Annotated[
        float, Field(gt=0, validation_alias=AliasChoices("DB_COMMAND_TIMEOUT", "command_timeout"))
    ] = 30.0
    connect_timeout: Annotated[
        float, Field(gt=0, validation_alias=AliasChoices("DB_CONNECT_TIMEOUT", "connect_timeout"))
    ] = 10.0
    acquire_timeout: Annotated[
        float, Field(gt=0, validation_alias=AliasChoices("DB_ACQUIRE_TIMEOUT", "acquire_timeout"))
    ] = DEFAULT_ACQUIRE_TIMEOUT
    statement_cache_size: Annotated[
        int,
        Field(
            ge=0, validation_alias=AliasChoices("DB_STATEMENT_CACHE_SIZE", "statement_cache_size")
        ),
    ] = 100

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        _parse_url(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _check_pool(self) -> Settings:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError(
                f"DB_POOL_MIN_SIZE ({self.pool_min_size}) exceeds "
                f"DB_POOL_MAX_SIZE ({self.pool_max_size})"
            )
        return self


def _parse_url(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError as exc:
        raise ValueError(f"DATABASE_URL is not a valid URL: {exc}") from None
    if parts.scheme not in _SCHEMES:
        raise ValueError(
            f"DATABASE_URL must start with postgresql:// or postgres://, not {parts.scheme!r}://"
            if parts.scheme
            else "DATABASE_URL must start with postgresql:// (got something that is not a URL)"
        )
    return parts


def describe_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``, safe for logs and errors."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable DATABASE_URL>"
    user = (
        f"{parts.username}:***@"
        if parts.password
        else (f"{parts.username}@" if parts.username else "")
    )
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _load_settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        # pydantic's message would echo the input, password included: name the field only.
        problems = []
        for error in getattr(exc, "errors", lambda: [])():
            where = ".".join(str(part) for part in error.get("loc", ())) or "settings"
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        detail = "; ".join(problems) or "invalid settings"
        if "DATABASE_URL: Field required" in detail:
            detail = "DATABASE_URL (or DB_URL) is not set"
        raise DatabaseConfigError(f"database settings are invalid: {detail}") from None


async def create_pool(settings: Settings | None = None) -> asyncpg.Pool:
    """Open a connection pool and check that the server answers.

    Every connection gets the JSON codecs of the generated layer.

    Raises:
        DatabaseConfigError: the settings are invalid (message names the setting).
        DatabaseUnavailable: the server cannot be reached, refuses the credentials, or
            the database does not exist. The message carries the URL without password.
    """
    settings = settings or _load_settings()
    url = settings.database_url.get_secret_value()
    where = describe_url(url)
    try:
        pool = await open_pool(
            url,
            acquire_timeout=settings.acquire_timeout,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            command_timeout=settings.command_timeout,
            statement_cache_size=settings.statement_cache_size,
            timeout=settings.connect_timeout,
            init=init_connection,
        )
    except asyncpg.InvalidPasswordError:
        raise DatabaseUnavailable(f"{where}: password authentication failed") from None
    except asyncpg.InvalidCatalogNameError:
        raise DatabaseUnavailable(f"{where}: the database does not exist") from None
    except asyncpg.InvalidAuthorizationSpecificationError:
        raise DatabaseUnavailable(f"{where}: the server rejected this role") from None
    except socket.gaierror:
        raise DatabaseUnavailable(f"{where}: unknown host") from None
    except (TimeoutError, OSError):
        raise DatabaseUnavailable(f"{where}: cannot connect (server down or unreachable)") from None
    except asyncpg.PostgresError as exc:
        raise DatabaseUnavailable(f"{where}: refused ({exc.sqlstate})") from None
    except (asyncpg.InterfaceError, ValueError) as exc:
        # asyncpg's own URL parsing (bad option values) ends up here; its message does
        # not include the password, but the URL might: keep only the class of problem.
        raise DatabaseConfigError(
            f"{where}: invalid connection options ({type(exc).__name__})"
        ) from None
    assert pool is not None
    return pool


async def get_db(pool: asyncpg.Pool) -> AsyncIterator[PoolConnectionProxy]:
    """Yield one pooled connection for the duration of a request.

    For FastAPI, wrap it in a dependency that finds the application's pool::

        async def db(request: Request) -> AsyncIterator[asyncpg.Connection]:
            async for conn in get_db(request.app.state.pool):
                yield conn

    Waiting for the connection is bounded by the pool's acquire timeout
    (``DB_ACQUIRE_TIMEOUT``): :class:`DatabaseTimeout` after it,
    :class:`DatabaseUnavailable` when no connection can be opened.
    """
    timeout = acquire_timeout_of(pool)
    with translate_errors(acquire_timeout=timeout):
        conn = await pool.acquire(timeout=timeout)
    try:
        yield conn
    finally:
        await pool.release(conn)


async def check_health(pool: asyncpg.Pool, *, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
    """Return True when the database answers ``SELECT 1`` within ``timeout`` seconds."""
    try:
        async with pool.acquire(timeout=timeout) as conn:
            answer: object = await conn.fetchval("SELECT 1", timeout=timeout)
            return answer == 1
    except (TimeoutError, OSError, asyncpg.InterfaceError, asyncpg.PostgresError):
        return False
