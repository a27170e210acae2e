"""OpenTelemetry traces and metrics named after the queries: everything OTel lives here.

Optional (``pip install identity-store[otel]``, the API only) and off unless an
application set a tracer or meter provider before :func:`create_pool` (or calls
:func:`instrument_pool`). Off, a pool carries ``telemetry = None`` and the hot path
checks that one attribute per unit of work; nothing else runs.

On, a unit of work is a span ``identity_store.uow`` (attribute
``identity_store.uow.outcome``: committed, rolled_back, outcome_unknown) and each
statement a client span named after its sqlc query (``GetUserById``) with the stable
database conventions. Never a parameter value, a row, a password or an e-mail address:
statements carry ``$n`` placeholders, and their text is recorded only with
``capture_statements=True``. See docs/telemetry.md for every span, attribute and metric.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Final

import asyncpg

from identity_store.infrastructure._observe import logger, query_name
from identity_store.infrastructure._pool import BoundedPool
from identity_store.infrastructure.settings import DatabaseURL, parse_database_url

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
    from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer, TracerProvider
except ImportError:  # the extra is not installed: telemetry stays off
    AVAILABLE = False
else:
    AVAILABLE = True

__all__ = [
    "AVAILABLE",
    "COMMITTED",
    "OUTCOME_UNKNOWN",
    "ROLLED_BACK",
    "Telemetry",
    "instrument_pool",
    "telemetry_of",
    "traced",
]

COMMITTED: Final = "committed"
ROLLED_BACK: Final = "rolled_back"
OUTCOME_UNKNOWN: Final = "outcome_unknown"

_SCOPE = "identity_store"
_UOW_SPAN = "identity_store.uow"
_OUTCOME = "identity_store.uow.outcome"
_POOL_NAME = "db.client.connection.pool.name"
_DURATION_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
DEFAULT_LAG_INTERVAL = 30.0
"""Seconds between two readings of the event stream's lag (one small query each)."""
_LAG_MAX_ROWS = 100_000


def telemetry_of(pool: object) -> Telemetry | None:
    """Return the telemetry of ``pool``, or None (the one check of the hot path)."""
    return getattr(pool, "telemetry", None) if isinstance(pool, BoundedPool) else None


def traced(db: Any) -> Any:
    """Return ``db``, or ``db`` with one span per statement when it is an instrumented pool."""
    telemetry = telemetry_of(db)
    return db if telemetry is None else _Traced(db, telemetry)


def _enabled(provider: object, off: tuple[type, ...]) -> bool:
    return provider is not None and not isinstance(provider, off)


def instrument_pool(
    pool: asyncpg.Pool,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_statements: bool = False,
    lag_interval: float = DEFAULT_LAG_INTERVAL,
) -> Telemetry | None:
    """Turn telemetry on for ``pool`` (from :func:`create_pool`) and return it.

    The providers default to the global ones; a provider that is not set (OTel's proxy
    or no-op) stays off. Returns None, and leaves the pool untouched, when the
    OpenTelemetry API is not installed or neither provider is set. ``capture_statements``
    adds each statement's text (with ``$n`` placeholders, never values) to its span.
    The event stream's lag is read every ``lag_interval`` seconds (0: never), by a task
    on the running event loop: call this from async code, as ``create_pool`` does.

    Raises:
        TypeError: ``pool`` is not a pool from :func:`create_pool`.
    """
    if not isinstance(pool, BoundedPool):
        raise TypeError("instrument_pool() takes a pool from identity_store.create_pool()")
    if not AVAILABLE:
        return None
    tracer_provider = tracer_provider or trace.get_tracer_provider()
    meter_provider = meter_provider or metrics.get_meter_provider()
    tracing = _enabled(tracer_provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))
    measuring = _enabled(meter_provider, (metrics.NoOpMeterProvider,)) and (
        type(meter_provider).__name__ != "_ProxyMeterProvider"
    )
    if not tracing and not measuring:
        return None
    old = pool.telemetry
    if old is not None:
        old.stop()
    telemetry = Telemetry(
        pool,
        tracer=tracer_provider.get_tracer(_SCOPE) if tracing else None,
        meter=meter_provider.get_meter(_SCOPE) if measuring else None,
        capture_statements=capture_statements,
        lag_interval=lag_interval,
    )
    pool.telemetry = telemetry
    if tracing:
        logger.addFilter(_TRACE_IDS)  # once: a logger keeps one of each filter
    return telemetry


class _TraceIds(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex, as OTLP writes them) to the package's log
    records while a span is active, so that logs join traces."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


_TRACE_IDS = _TraceIds()


class _Instruments:
    """The instruments of one meter; observable ones read every live pool."""

    def __init__(self, meter: Meter) -> None:
        self.pools: weakref.WeakSet[Telemetry] = weakref.WeakSet()
        self.duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of database client operations, by sqlc query.",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self.wait_time = meter.create_histogram(
            "db.client.connection.wait_time",
            unit="s",
            description="Time a unit of work waited for a pooled connection.",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.pending_requests",
            callbacks=[self._pending],
            unit="{request}",
            description="Units of work waiting for a pooled connection.",
        )
        self.timeouts = meter.create_counter(
            "db.client.connection.timeouts",
            unit="{timeout}",
            description="Acquires that found no free pooled connection in time.",
        )
        self.outcome_unknown = meter.create_counter(
            "identity_store.uow.commit_outcome_unknown",
            unit="{commit}",
            description="COMMITs without an answer (CommitOutcomeUnknown).",
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.count",
            callbacks=[self._connections],
            unit="{connection}",
            description="Pooled connections by state (used, idle).",
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.max",
            callbacks=[self._max],
            unit="{connection}",
            description="The most connections the pool opens.",
        )
        for name, index, unit, description in (
            ("pending_events", 0, "{event}", "Committed events above the stream's horizon."),
            ("pending_seconds", 1, "s", "Age of the oldest event above the horizon."),
            (
                "oldest_transaction_seconds",
                2,
                "s",
                "Age of the oldest transaction holding the horizon back.",
            ),
        ):
            meter.create_observable_gauge(
                f"identity_store.event_stream.{name}",
                callbacks=[self._lag_reader(index)],
                unit=unit,
                description=description,
            )

    def _live(self) -> list[Telemetry]:
        return [t for t in list(self.pools) if t.pool is not None]

    def _connections(self, _options: CallbackOptions) -> Iterable[Observation]:
        for telemetry in self._live():
            pool = telemetry.pool
            assert pool is not None
            size, idle = pool.get_size(), pool.get_idle_size()
            base = telemetry.pool_attributes
            yield Observation(size - idle, {**base, "db.client.connection.state": "used"})
            yield Observation(idle, {**base, "db.client.connection.state": "idle"})

    def _pending(self, _options: CallbackOptions) -> Iterable[Observation]:
        for telemetry in self._live():
            yield Observation(telemetry.waiting, telemetry.pool_attributes)

    def _max(self, _options: CallbackOptions) -> Iterable[Observation]:
        for telemetry in self._live():
            pool = telemetry.pool
            assert pool is not None
            yield Observation(pool.get_max_size(), telemetry.pool_attributes)

    def _lag_reader(self, index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def read(_options: CallbackOptions) -> Iterable[Observation]:
            for telemetry in self._live():
                if telemetry.lag is not None:
                    yield Observation(telemetry.lag[index], telemetry.pool_attributes)

        return read


_INSTRUMENTS: dict[int, tuple[Meter, _Instruments]] = {}


def _instruments_of(meter: Meter) -> _Instruments:
    # The SDK keeps the first instrument of a name: one set per meter, for every pool.
    found = _INSTRUMENTS.get(id(meter))
    if found is None or found[0] is not meter:
        found = (meter, _Instruments(meter))
        _INSTRUMENTS[id(meter)] = found
    return found[1]


class Telemetry:
    """One pool's tracer and instruments (see the module docstring)."""

    __slots__ = (
        "__weakref__",
        "_lag_task",
        "_pool",
        "_queries",
        "_servers",
        "capture_statements",
        "instruments",
        "lag",
        "pool_attributes",
        "tracer",
        "waiting",
    )

    def __init__(
        self,
        pool: BoundedPool,
        *,
        tracer: Tracer | None,
        meter: Meter | None,
        capture_statements: bool,
        lag_interval: float,
    ) -> None:
        self._pool = pool
        self.tracer = tracer
        self.capture_statements = capture_statements
        self.instruments = None if meter is None else _instruments_of(meter)
        self.pool_attributes: dict[str, Any] = {
            "db.system.name": "postgresql",
            _POOL_NAME: _url_of(pool).location(),
        }
        self.lag: tuple[float, float, float] | None = None
        self.waiting = 0  # units of work waiting for a connection
        self._queries: dict[str, tuple[str, dict[str, Any]]] = {}
        self._servers: dict[object, dict[str, Any]] = {}
        self._lag_task: asyncio.Task[None] | None = None
        if self.instruments is not None:
            self.instruments.pools.add(self)
            if lag_interval > 0:
                self._lag_task = asyncio.get_running_loop().create_task(
                    self._watch_lag(lag_interval), name="identity_store stream lag"
                )

    @property
    def pool(self) -> BoundedPool | None:
        """The pool, while it is open."""
        return None if self._pool.is_closing() else self._pool

    def stop(self) -> None:
        """Stop reading the stream's lag and reporting this pool (it is closing)."""
        if self._lag_task is not None:
            self._lag_task.cancel()
            self._lag_task = None
        if self.instruments is not None:
            self.instruments.pools.discard(self)

    async def read_stream_lag(self) -> tuple[float, float, float] | None:
        """Read the stream's lag now (what the gauges report until the next reading)."""
        from identity_store._generated import events

        pool = self.pool
        if pool is None:
            return None
        async with pool.acquire() as conn:
            row = await events.get_stream_lag(conn, max_rows=_LAG_MAX_ROWS)
        if row is not None:
            self.lag = (
                float(row.pending_events),
                float(row.pending_seconds),
                float(row.oldest_transaction_seconds),
            )
        return self.lag

    async def _watch_lag(self, interval: float) -> None:
        while self.pool is not None:
            try:
                await self.read_stream_lag()
            except Exception as exc:  # the next reading may work; the pool logs outages
                logger.debug("stream lag not read (%s)", type(exc).__name__)
            await asyncio.sleep(interval)

    # -- statements ------------------------------------------------------------------

    def query(self, sql: str) -> tuple[str, dict[str, Any]]:
        """Return the span name and attributes of ``sql`` (cached per text)."""
        found = self._queries.get(sql)
        if found is None:
            name = query_name(sql)
            # A sqlc name (CamelCase) is followed by the statement; else name is its keyword.
            operation = name if name.isupper() else query_name(sql.partition("\n")[2])
            attributes: dict[str, Any] = {"db.query.summary": name}
            if operation.isupper() and operation != "WITH":
                attributes["db.operation.name"] = operation
            if self.capture_statements:
                attributes["db.query.text"] = sql
            found = (name, attributes)
            if len(self._queries) < 1000:  # application SQL could be anything
                self._queries[sql] = found
        return found

    def server(self, db: object) -> dict[str, Any]:
        """Return the server attributes of a connection (a pool: its database only)."""
        database: object
        if isinstance(db, BoundedPool):
            addr: object = None
            database = _url_of(db).database
        else:
            addr = getattr(db, "_addr", None)
            database = getattr(getattr(db, "_params", None), "database", None)
        key = (addr, database)
        found = self._servers.get(key)
        if found is None:
            found = {"db.system.name": "postgresql"}
            if database:
                found["db.namespace"] = str(database)
            if isinstance(addr, tuple) and len(addr) >= 2:
                found["server.address"], found["server.port"] = str(addr[0]), int(addr[1])
            elif isinstance(addr, str):
                found["server.address"] = addr
            self._servers[key] = found
        return found

    async def run(
        self,
        server: dict[str, Any],
        sql: str,
        call: Callable[[], Awaitable[Any]],
        executor: object,
    ) -> Any:
        """Run ``call`` (the statement ``sql``) in a span, timing it."""
        name, attributes = self.query(sql)
        attributes = {**server, **attributes}
        span = None
        token = None
        if self.tracer is not None:
            span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
            if _generic_asyncpg_instrumentation():
                # It would add a second span for the same statement, named by its first
                # word and carrying its text: suppressed under ours.
                token = otel_context.attach(
                    otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True)
                )
        started = time.perf_counter()
        try:
            return await call()
        except BaseException as exc:
            failure = _failure_attributes(exc, executor)
            attributes.update(failure)
            if span is not None:
                span.set_attributes(failure)
                span.set_status(StatusCode.ERROR)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
            if self.instruments is not None:
                attributes.pop("db.query.text", None)
                self.instruments.duration.record(time.perf_counter() - started, attributes)
            if span is not None:
                span.end()

    # -- units of work ---------------------------------------------------------------

    def unit(self) -> Unit:
        """Start a unit of work's span and make it the current one."""
        return Unit(self)


def _url_of(pool: BoundedPool) -> DatabaseURL:
    """The URL the pool connects with (checked when the settings were read)."""
    return parse_database_url(str(pool._connect_args[0]))


def _generic_asyncpg_instrumentation() -> bool:
    """Whether opentelemetry-instrumentation-asyncpg wrapped asyncpg's methods."""
    return hasattr(asyncpg.Connection.fetchrow, "__wrapped__")


def _failure_attributes(exc: BaseException, executor: object) -> dict[str, Any]:
    from identity_store.infrastructure._errors import (
        translate_error,
    )

    translated = translate_error(exc, executor=executor)
    failure: dict[str, Any] = {"error.type": type(translated or exc).__name__}
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.PostgresError) and sqlstate:
        failure["db.response.status_code"] = str(sqlstate)
    return failure


class Unit:
    """One unit of work's span, its wait for a connection, and its outcome."""

    __slots__ = ("_span", "_telemetry", "_token")

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry
        self._span: Span | None = None
        self._token: object = None
        if telemetry.tracer is not None:
            self._span = telemetry.tracer.start_span(
                _UOW_SPAN, kind=SpanKind.INTERNAL, attributes=telemetry.pool_attributes
            )
            self._token = otel_context.attach(trace.set_span_in_context(self._span))

    async def acquire(self, pool: asyncpg.Pool, timeout: float) -> Any:  # noqa: ASYNC109
        """Take a connection from ``pool``, measuring the wait."""
        instruments = self._telemetry.instruments
        if instruments is None:
            return await pool.acquire(timeout=timeout)
        telemetry = self._telemetry
        telemetry.waiting += 1
        started = time.perf_counter()
        try:
            return await pool.acquire(timeout=timeout)
        except TimeoutError:
            instruments.timeouts.add(1, telemetry.pool_attributes)
            raise
        finally:
            telemetry.waiting -= 1
            instruments.wait_time.record(time.perf_counter() - started, telemetry.pool_attributes)

    def traced(self, connection: Any) -> Any:
        """The connection the repositories use: with a span per statement when tracing."""
        return _Traced(connection, self._telemetry)

    def finish(self, outcome: str | None, error: BaseException | None) -> None:
        """End the span with the outcome (None: the transaction never began)."""
        if outcome == OUTCOME_UNKNOWN and self._telemetry.instruments is not None:
            self._telemetry.instruments.outcome_unknown.add(1, self._telemetry.pool_attributes)
        span, self._span = self._span, None
        if span is None:
            return
        if outcome is not None:
            span.set_attribute(_OUTCOME, outcome)
        if error is not None:
            span.set_attributes(_failure_attributes(error, None))
            span.set_status(StatusCode.ERROR)
        span.end()
        with contextlib.suppress(Exception):  # ended in another context than it began
            otel_context.detach(self._token)  # type: ignore[arg-type]


class _Traced:
    """An executor running each statement of ``db`` through :meth:`Telemetry.run`."""

    __slots__ = ("_db", "_server", "_telemetry")

    def __init__(self, db: Any, telemetry: Telemetry) -> None:
        self._db = db
        self._telemetry = telemetry
        self._server = telemetry.server(db)

    def __getattr__(self, name: str) -> Any:  # is_closed(), cursor(), ...: untraced
        return getattr(self._db, name)

    @contextlib.asynccontextmanager
    async def acquire(self, *, timeout: float | None = None) -> AsyncIterator[_Traced]:  # noqa: ASYNC109
        """A connection of the pool, its statements traced like the pool's own."""
        async with self._db.acquire(timeout=timeout) as connection:
            yield _Traced(connection, self._telemetry)

    async def execute(self, query: str, *args: object, timeout: float | None = None) -> str:  # noqa: ASYNC109
        return await self._telemetry.run(  # type: ignore[no-any-return]
            self._server, query, lambda: self._db.execute(query, *args, timeout=timeout), self._db
        )

    async def executemany(self, command: str, args: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._telemetry.run(
            self._server,
            command,
            lambda: self._db.executemany(command, args, timeout=timeout),
            self._db,
        )

    async def fetch(self, query: str, *args: object, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        return await self._telemetry.run(
            self._server, query, lambda: self._db.fetch(query, *args, timeout=timeout), self._db
        )

    async def fetchrow(self, query: str, *args: object, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        return await self._telemetry.run(
            self._server, query, lambda: self._db.fetchrow(query, *args, timeout=timeout), self._db
        )

    async def fetchval(
        self,
        query: str,
        *args: object,
        column: int = 0,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any:
        return await self._telemetry.run(
            self._server,
            query,
            lambda: self._db.fetchval(query, *args, column=column, timeout=timeout),
            self._db,
        )

    async def copy_records_to_table(self, table_name: str, **kwargs: Any) -> str:
        return await self._telemetry.run(  # type: ignore[no-any-return]
            self._server,
            f"COPY {table_name}",
            lambda: self._db.copy_records_to_table(table_name, **kwargs),
            self._db,
        )
