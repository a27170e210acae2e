"""The one place settings are read, and the parser of database URLs.

Every consumer reads settings through this module: the library (:class:`Settings`,
``create_pool()``), the embedded development server and the Makefile's helpers
(``python -m identity_store.dev db exec``), and the scripts under ``scripts/``.

Where a setting comes from, later sources winning::

    .env            (in the current folder; shared defaults, never committed)
    .env.local      (in the current folder; your machine's overrides, never committed)
    the process environment
    keyword arguments to Settings(...)

``DB_URL`` is an alias of ``DATABASE_URL``; within one source ``DATABASE_URL`` wins, and
a later source wins over an earlier one whichever of the two names it uses.

Database URLs are parsed the way libpq and asyncpg read them, multi-host lists
included (``postgres://app@db1:5432,db2:5432/identity?target_session_attrs=read-write``).
A URL that cannot be read gives a message naming what is wrong and never any part of
the URL: a password holding an unencoded ``/``, ``?`` or ``#`` cuts the URL in the wrong
place, and what would be echoed as a "port" or "path" is then the password.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from identity_store.domain.errors import DatabaseConfigError
from identity_store.infrastructure._observe import DEFAULT_SLOW_STATEMENT_SECONDS
from identity_store.infrastructure._pool import DEFAULT_ACQUIRE_TIMEOUT

__all__ = [
    "ENV_FILES",
    "DatabaseURL",
    "DatabaseURLError",
    "Settings",
    "database_url",
    "describe_url",
    "load_settings",
    "parse_database_url",
    "read_environment",
]

ENV_FILES = (".env", ".env.local")
"""Files read from the current folder, in this order (the later overrides)."""

_URL_NAMES = ("DATABASE_URL", "DB_URL")
_SCHEMES = frozenset({"postgres", "postgresql"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_ENCODE_HINT = (
    " (a user name or password holding '/', '?', '#', '@' or ':' must be percent-encoded: "
    "%2F %3F %23 %40 %3A)"
)


# --- where settings come from ----------------------------------------------------------


def _layers(
    environ: Mapping[str, str] | None, directory: Path | str | None
) -> list[Mapping[str, str]]:
    """The sources of settings, lowest priority first."""
    folder = Path(directory) if directory is not None else Path.cwd()
    layers: list[Mapping[str, str]] = []
    for name in ENV_FILES:
        path = folder / name
        if path.is_file():
            values = dotenv_values(path, interpolate=False)
            layers.append({k: v for k, v in values.items() if v is not None})
    layers.append(os.environ if environ is None else environ)
    return layers


def read_environment(
    environ: Mapping[str, str] | None = None, directory: Path | str | None = None
) -> dict[str, str]:
    """Return every setting: ``.env``, then ``.env.local``, then the environment.

    ``DATABASE_URL`` in the result is the effective database URL (from ``DATABASE_URL``
    or its alias ``DB_URL``, whichever the highest source that sets one uses), and
    ``DB_URL`` is removed, so a child process given this mapping sees one answer.
    """
    merged: dict[str, str] = {}
    url = None
    for layer in _layers(environ, directory):
        merged.update(layer)
        url = _url_of(layer) or url
    merged.pop("DB_URL", None)
    merged.pop("DATABASE_URL", None)
    if url:
        merged["DATABASE_URL"] = url
    return merged


def _url_of(layer: Mapping[str, str]) -> str | None:
    for name in _URL_NAMES:
        value = layer.get(name)
        if value:
            return value
    return None


def database_url(
    environ: Mapping[str, str] | None = None, directory: Path | str | None = None
) -> str | None:
    """Return the configured database URL (``DATABASE_URL`` or ``DB_URL``), or None."""
    return read_environment(environ, directory).get("DATABASE_URL")


# --- database URLs -----------------------------------------------------------------------


class DatabaseURLError(ValueError):
    """A database URL that cannot be read. The message never holds any part of the URL."""


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """A parsed ``postgresql://`` URL. ``repr`` and ``str`` hide the password."""

    scheme: str
    user: str | None
    password: str | None = field(repr=False)
    hosts: tuple[tuple[str, int | None], ...]
    database: str | None
    query: tuple[tuple[str, str], ...]

    def render(self) -> str:
        """Return the URL, every part percent-encoded as asyncpg and libpq expect."""
        auth = ""
        if self.user is not None or self.password is not None:
            auth = quote(self.user or "", safe="")
            if self.password is not None:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        hosts = ",".join(
            (f"[{host}]" if ":" in host else quote(host, safe=""))
            + (f":{port}" if port is not None else "")
            for host, port in self.hosts
        )
        path = "/" + quote(self.database, safe="") if self.database is not None else ""
        query = "?" + urlencode(self.query) if self.query else ""
        return f"{self.scheme}://{auth}{hosts}{path}{query}"

    def redacted(self) -> str:
        """Return the URL with the password as ``***`` and no query: safe for messages."""
        user = ""
        if self.user:
            user = quote(self.user, safe="") + (":***" if self.password else "") + "@"
        path = "/" + quote(self.database, safe="") if self.database is not None else ""
        return f"{self.scheme}://{user}{self._hosts()}{path}"

    def with_database(
        self, name: str, *, user: str | None = None, password: str | None = None
    ) -> DatabaseURL:
        """Return the same hosts and options for database ``name``, logging in as
        ``user`` with ``password`` when given (else with the same credentials);
        ``render()`` it for a URL."""
        return replace(
            self,
            database=name,
            user=self.user if user is None else user,
            password=self.password if password is None else password,
        )

    def with_option(self, name: str, value: str) -> DatabaseURL:
        """Return the same URL with the query option ``name`` set to ``value``."""
        kept = tuple((key, v) for key, v in self.query if key != name)
        return replace(self, query=(*kept, (name, value)))

    def location(self) -> str:
        """Return ``host:port,...`` and ``/database``, without role, password or
        options: safe for logs. Hosts given as ``?host=`` options (Unix sockets) count;
        with none, ``localhost``, as libpq."""
        hosts = self._hosts()
        if not hosts:
            options = dict(self.query)
            names = [h for h in options.get("host", "").split(",") if h] or ["localhost"]
            ports = options.get("port", "").split(",")
            ports = ports * len(names) if len(ports) == 1 else ports
            hosts = ",".join(
                name + (f":{port}" if port else "")
                for name, port in zip(names, ports, strict=False)
            )
        return f"{hosts}/{self.database or ''}"

    def _hosts(self) -> str:
        return ",".join(
            (f"[{host}]" if ":" in host else host) + (f":{port}" if port is not None else "")
            for host, port in self.hosts
        )

    def __str__(self) -> str:
        return self.redacted()


def _port(text: str, where: str) -> int | None:
    text = unquote(text)
    if not text:
        return None
    if not text.isdigit():
        raise DatabaseURLError(f"DATABASE_URL: the port of {where} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise DatabaseURLError(f"DATABASE_URL: the port of {where} is out of range 1-65535")
    return port


def _hosts(hostspec: str) -> tuple[tuple[str, int | None], ...]:
    if not hostspec:
        return ()
    specs = hostspec.split(",")
    hosts: list[tuple[str, int | None]] = []
    for number, spec in enumerate(specs, start=1):
        where = f"host {number}" if len(specs) > 1 else "the host"
        if spec.startswith("["):
            match = re.fullmatch(r"\[([^\]]+)\](?::([^:]*))?", spec)
            if match is None:
                raise DatabaseURLError(
                    f"DATABASE_URL: {where} is not a valid bracketed IPv6 address"
                )
            host, port = match.group(1), match.group(2) or ""
        else:
            host, _, port = spec.partition(":")
            if ":" in port:
                raise DatabaseURLError(f"DATABASE_URL: the port of {where} is not a number")
        host = unquote(host)
        if not host:
            raise DatabaseURLError(f"DATABASE_URL: {where} is empty")
        hosts.append((host, _port(port, where)))
    return tuple(hosts)


def parse_database_url(url: str) -> DatabaseURL:
    """Read a ``postgresql://`` or ``postgres://`` URL as libpq and asyncpg do.

    Accepts user and password (percent-encoded, or holding a bare ``@``), one host or a
    comma-separated list of ``host:port`` (IPv6 in brackets), a database and a query
    string of ``key=value`` options (``sslmode``, ``target_session_attrs``, ``host``,
    ``port``, ...).

    Raises:
        DatabaseURLError: the URL cannot be read; the message says which part is
            wrong and repeats no part of the URL.
    """
    try:
        return _parse(url)
    except DatabaseURLError as exc:
        problem = str(exc)
    # Raised outside the handler: no chained exception, no traceback frame holding more.
    hint = _ENCODE_HINT if any(c in url for c in "@/?#") else ""
    raise DatabaseURLError(f"{problem}{hint}")


def _parse(url: str) -> DatabaseURL:
    if not isinstance(url, str) or not url.strip():
        raise DatabaseURLError("DATABASE_URL is empty")
    match = _SCHEME.match(url)
    if match is None:
        raise DatabaseURLError(
            "DATABASE_URL is not a URL: it must start with postgresql:// or postgres://"
        )
    scheme = match.group(1)
    if scheme.lower() not in _SCHEMES:
        raise DatabaseURLError(
            f"DATABASE_URL must start with postgresql:// or postgres://, not {scheme}://"
        )
    rest = url[match.end() :]
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    tail, _, fragment = tail.partition("#")
    path, _, query = tail.partition("?")
    userinfo: str | None
    if "@" in authority:
        userinfo, _, hostspec = authority.rpartition("@")
    else:
        userinfo, hostspec = None, authority
        if "@" in path or "@" in fragment:
            # user:pa/ss@host or user:pa#ss@host: the URL was cut inside the password.
            raise DatabaseURLError(
                "DATABASE_URL: an '@' follows the host part, so the user name or "
                "password holds a character that ends it"
            )
    user = password = None
    if userinfo is not None:
        raw_user, colon, raw_password = userinfo.partition(":")
        user = unquote(raw_user)
        password = unquote(raw_password) if colon else None
    hosts = _hosts(hostspec)
    pairs: list[tuple[str, str]] = []
    if query:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise DatabaseURLError(
                "DATABASE_URL: the query string is not key=value options joined by '&'"
            ) from None
        for key, value in pairs:
            if key == "port":
                for number, item in enumerate(value.split(","), start=1):
                    _port(item, f"port option {number}")
    database = unquote(path[1:]) if path.startswith("/") and len(path) > 1 else None
    return DatabaseURL(
        scheme=scheme.lower(),
        user=user,
        password=password,
        hosts=hosts,
        database=database,
        query=tuple(pairs),
    )


def describe_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``, safe for logs and errors."""
    try:
        return parse_database_url(url).redacted()
    except DatabaseURLError:
        return "<unparseable DATABASE_URL>"


# --- the library's settings --------------------------------------------------------------


class _LayeredSource(PydanticBaseSettingsSource):
    """Reads each field's names (its upper-case aliases) from :func:`_layers`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ does the work

    def __call__(self) -> dict[str, Any]:
        layers = _layers(None, None)
        values: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            alias = info.validation_alias
            names = (
                [c for c in alias.choices if isinstance(c, str) and c.isupper()]
                if isinstance(alias, AliasChoices)
                else ([alias] if isinstance(alias, str) else [name.upper()])
            )
            for layer in layers:
                for env_name in names:
                    if layer.get(env_name):
                        values[name] = layer[env_name]
                        break
        return values


class Settings(BaseSettings):
    """How to reach PostgreSQL and how big the pool is.

    Read from the environment, ``.env`` and ``.env.local`` (see the module docstring);
    keyword arguments win over all of them.
    """

    model_config = SettingsConfigDict(
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,  # the input is a URL with a password in it
    )

    database_url: Annotated[
        SecretStr,
        Field(validation_alias=AliasChoices("DATABASE_URL", "DB_URL", "database_url")),
    ]
    read_database_url: Annotated[
        SecretStr | None,
        Field(
            validation_alias=AliasChoices("DATABASE_READ_URL", "DB_READ_URL", "read_database_url")
        ),
    ] = None
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
    slow_statement_seconds: Annotated[
        float,
        Field(
            ge=0,
            validation_alias=AliasChoices("DB_SLOW_STATEMENT_SECONDS", "slow_statement_seconds"),
        ),
    ] = DEFAULT_SLOW_STATEMENT_SECONDS

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _LayeredSource(settings_cls))

    @field_validator("database_url", "read_database_url")
    @classmethod
    def _check_url(cls, value: SecretStr | None) -> SecretStr | None:
        # Stored in the canonical spelling asyncpg reads the same way (a bare '@' in
        # the password is encoded), so what was checked here is what connects.
        if value is None:
            return None
        return SecretStr(parse_database_url(value.get_secret_value()).render())

    @model_validator(mode="after")
    def _check_pool(self) -> Settings:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError(
                f"DB_POOL_MIN_SIZE ({self.pool_min_size}) exceeds "
                f"DB_POOL_MAX_SIZE ({self.pool_max_size})"
            )
        return self

    @property
    def parsed_url(self) -> DatabaseURL:
        """The database URL, parsed (never fails: it was checked when read)."""
        return parse_database_url(self.database_url.get_secret_value())

    def for_reads(self) -> Settings:
        """The same settings for a read pool (``create_pool(settings.for_reads())``, for
        :class:`~identity_store.PostgresReadUnitOfWork`): ``DATABASE_READ_URL`` when set,
        else the database URL's hosts with ``target_session_attrs=prefer-standby``."""
        if self.read_database_url is not None:
            url = self.read_database_url.get_secret_value()
        else:
            url = self.parsed_url.with_option("target_session_attrs", "prefer-standby").render()
        return self.model_copy(update={"database_url": SecretStr(url)})


def load_settings() -> Settings:
    """Read :class:`Settings`, turning any problem into one line that names it.

    Raises:
        DatabaseConfigError: a setting is missing or invalid; the message names the
            setting and never repeats a value.
    """
    try:
        return Settings()
    except ValueError as exc:
        # pydantic's message would echo the input, password included: name the field only.
        problems = []
        for error in getattr(exc, "errors", lambda: [])():
            where = ".".join(str(part) for part in error.get("loc", ())) or "settings"
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
            if not message.startswith("DATABASE_URL"):
                message = f"{where}: {message}"
            problems.append(message)
        detail = "; ".join(problems) or "invalid settings"
        if "database_url: Field required" in detail or "DATABASE_URL: Field required" in detail:
            detail = "DATABASE_URL (or DB_URL) is not set"
        raise DatabaseConfigError(f"database settings are invalid: {detail}") from None
