"""Traces and metrics (docs/telemetry.md), read back from the SDK's in-memory exporter
and metric reader; every test scans all it exported for the secrets it used."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import SecretStr

from identity_store import (
    CommitOutcomeUnknown,
    DatabaseTimeout,
    EmailAlreadyRegistered,
    NewEvent,
    NewToken,
    NewUser,
    PostgresEventRepository,
    PostgresUnitOfWork,
    PostgresUserRepository,
    TokenKind,
    create_pool,
    instrument_pool,
)
from identity_store._generated import users as user_queries
from identity_store.infrastructure._telemetry import Telemetry
from identity_store.infrastructure.db import Settings

pytestmark = pytest.mark.integration


@dataclass
class Otel:
    pool: asyncpg.Pool[Any]
    telemetry: Telemetry
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    secrets: list[str] = field(default_factory=list)

    def finished(self, name: str | None = None) -> list[ReadableSpan]:
        spans = list(self.spans.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    def points(self, metric: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        assert data is not None
        found: list[Any] = []
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for m in scope.metrics:
                    if m.name == metric:
                        found.extend(m.data.data_points)
        return found


async def open_otel(settings: Settings, **options: Any) -> Otel:
    tracer_provider = TracerProvider()
    spans = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    pool = await create_pool(settings)
    telemetry = instrument_pool(
        pool,
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
        lag_interval=0,
        **options,
    )
    assert telemetry is not None
    password = settings.parsed_url.password
    return Otel(pool, telemetry, spans, reader, secrets=[password] if password else [])


async def close_otel(otel: Otel) -> None:
    await otel.pool.close()
    exported = json.dumps([json.loads(s.to_json()) for s in otel.finished()])
    data = otel.metrics.get_metrics_data()
    exported += data.to_json() if data is not None else ""
    for secret in otel.secrets:
        assert secret.lower() not in exported.lower(), "a secret was exported"


@pytest.fixture
async def otel(settings: Settings) -> AsyncIterator[Otel]:
    otel = await open_otel(settings)
    yield otel
    await close_otel(otel)


def new_user(otel: Otel) -> NewUser:
    email = f"Otel-{uuid.uuid4().hex[:12]}@Example.test"
    password_hash = f"$argon2id$v=19$secret-{uuid.uuid4().hex}"
    otel.secrets += [email, password_hash]
    return NewUser(email=email, display_name="Traced", password_hash=SecretStr(password_hash))


def only(spans: list[ReadableSpan]) -> ReadableSpan:
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


async def test_a_committed_unit_of_work_is_a_span_with_one_child_span_per_query(
    otel: Otel, settings: Settings
) -> None:
    payload_value = f"payload-{uuid.uuid4().hex}"
    otel.secrets.append(payload_value)
    async with PostgresUnitOfWork(otel.pool) as uow:
        user = await uow.users.register(new_user(otel))
        await uow.events.append(
            NewEvent(type="user.registered", user_id=user.id, payload={"k": payload_value})
        )
        issued = await uow.tokens.issue(
            NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(minutes=1))
        )
        otel.secrets.append(issued.secret.get_secret_value())
        assert await uow.tokens.verify(issued.secret.get_secret_value()) is not None
        assert await uow.users.get(user.id) is not None

    unit = only(otel.finished("identity_store.uow"))
    assert unit.attributes is not None
    assert unit.attributes["identity_store.uow.outcome"] == "committed"
    assert unit.kind is SpanKind.INTERNAL
    assert unit.status.status_code is not StatusCode.ERROR
    queries = [s for s in otel.finished() if s.name != "identity_store.uow"]
    assert [s.name for s in queries] == [
        "CreateUser",
        "AppendEvent",
        "CreateToken",
        "GetLiveTokenByHash",
        "GetUserById",
    ]
    url = settings.parsed_url
    for span in queries:
        assert span.parent is not None and span.parent.span_id == unit.context.span_id
        assert span.context.trace_id == unit.context.trace_id
        assert span.kind is SpanKind.CLIENT
        attributes = dict(span.attributes or {})
        assert attributes["db.system.name"] == "postgresql"
        assert attributes["db.query.summary"] == span.name
        assert attributes["db.namespace"] == url.database
        assert (attributes["server.address"], attributes["server.port"]) == url.hosts[0]
        assert "db.query.text" not in attributes
        assert "error.type" not in attributes
    operations = [dict(s.attributes or {}).get("db.operation.name") for s in queries]
    # AppendEvent is a WITH statement (the insert, its count, the wake-up): no one verb.
    assert operations == ["INSERT", None, "INSERT", "SELECT", "SELECT"]


async def test_a_unit_of_work_left_by_an_exception_is_rolled_back_with_its_error_type(
    otel: Otel,
) -> None:
    class Refused(Exception):
        pass

    with pytest.raises(Refused):
        async with PostgresUnitOfWork(otel.pool) as uow:
            await uow.users.register(new_user(otel))
            raise Refused

    unit = only(otel.finished("identity_store.uow"))
    assert unit.attributes is not None
    assert unit.attributes["identity_store.uow.outcome"] == "rolled_back"
    assert unit.attributes["error.type"] == "Refused"
    assert unit.status.status_code is StatusCode.ERROR
    assert "error.type" not in (only(otel.finished("CreateUser")).attributes or {})


async def test_a_refused_statement_carries_its_sqlstate_and_domain_error(otel: Otel) -> None:
    new = new_user(otel)
    async with PostgresUnitOfWork(otel.pool) as uow:
        await uow.users.register(new)
    otel.spans.clear()

    with pytest.raises(EmailAlreadyRegistered):
        async with PostgresUnitOfWork(otel.pool) as uow:
            await uow.users.register(new.model_copy(update={"email": new.email.upper()}))

    refused = only(otel.finished("CreateUser"))
    assert refused.attributes is not None
    assert refused.attributes["error.type"] == "EmailAlreadyRegistered"
    assert refused.attributes["db.response.status_code"] == "23505"
    assert refused.status.status_code is StatusCode.ERROR
    assert refused.events == ()  # no exception event: its message could hold values
    unit = only(otel.finished("identity_store.uow"))
    assert unit.attributes is not None
    assert unit.attributes["identity_store.uow.outcome"] == "rolled_back"
    assert unit.attributes["error.type"] == "EmailAlreadyRegistered"
    failed = [
        p
        for p in otel.points("db.client.operation.duration")
        if p.attributes.get("error.type") == "EmailAlreadyRegistered"
    ]
    assert [(p.attributes["db.query.summary"], p.count) for p in failed] == [("CreateUser", 1)]
    assert failed[0].attributes["db.response.status_code"] == "23505"


async def test_a_commit_without_an_answer_has_an_unknown_outcome_and_is_counted(
    otel: Otel,
) -> None:
    with pytest.raises(CommitOutcomeUnknown):
        async with PostgresUnitOfWork(otel.pool) as uow:
            await uow.users.register(new_user(otel))
            pid = await uow.users._db.fetchval("SELECT pg_backend_pid()")
            await otel.pool.execute("SELECT pg_terminate_backend($1)", pid)
            for _ in range(100):
                gone = await otel.pool.fetchval(
                    "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", pid
                )
                if gone:
                    break
                await asyncio.sleep(0.02)

    unit = only(otel.finished("identity_store.uow"))
    assert unit.attributes is not None
    assert unit.attributes["identity_store.uow.outcome"] == "outcome_unknown"
    assert unit.attributes["error.type"] == "CommitOutcomeUnknown"
    assert [p.value for p in otel.points("identity_store.uow.commit_outcome_unknown")] == [1]


async def test_statement_text_is_recorded_only_when_asked_with_placeholders(
    settings: Settings,
) -> None:
    otel = await open_otel(settings, capture_statements=True)
    try:
        user = await PostgresUserRepository(otel.pool).register(new_user(otel))
        await PostgresUserRepository(otel.pool).get(user.id)
    finally:
        await close_otel(otel)

    span = only(otel.finished("GetUserById"))
    assert span.attributes is not None
    assert span.attributes["db.query.text"] == user_queries.GET_USER_BY_ID
    assert "$1" in user_queries.GET_USER_BY_ID
    assert "db.query.text" not in otel.points("db.client.operation.duration")[0].attributes


async def test_operation_durations_are_a_histogram_by_query_name(otel: Otel) -> None:
    users = PostgresUserRepository(otel.pool)
    user = await users.register(new_user(otel))
    for _ in range(3):
        await users.get(user.id)

    counts = {
        p.attributes["db.query.summary"]: p.count
        for p in otel.points("db.client.operation.duration")
    }
    assert counts == {"CreateUser": 1, "GetUserById": 3}
    point = next(
        p
        for p in otel.points("db.client.operation.duration")
        if p.attributes["db.query.summary"] == "GetUserById"
    )
    assert point.attributes["db.operation.name"] == "SELECT"
    assert point.sum > 0


async def test_the_pool_reports_connections_waits_and_timeouts(settings: Settings) -> None:
    small = settings.model_copy(
        update={"pool_min_size": 1, "pool_max_size": 1, "acquire_timeout": 0.2}
    )
    otel = await open_otel(small)
    try:
        async with PostgresUnitOfWork(otel.pool):
            used = {
                p.attributes["db.client.connection.state"]: p.value
                for p in otel.points("db.client.connection.count")
            }
            assert used == {"used": 1, "idle": 0}
            with pytest.raises(DatabaseTimeout):
                async with PostgresUnitOfWork(otel.pool):
                    pass
        idle = {
            p.attributes["db.client.connection.state"]: p.value
            for p in otel.points("db.client.connection.count")
        }
        assert idle == {"used": 0, "idle": 1}
        assert [p.value for p in otel.points("db.client.connection.max")] == [1]
        assert [p.value for p in otel.points("db.client.connection.timeouts")] == [1]
        assert [p.value for p in otel.points("db.client.connection.pending_requests")] == [0]
        (waits,) = otel.points("db.client.connection.wait_time")
        assert waits.count == 2 and waits.max >= 0.2
        timed_out = only(
            [s for s in otel.finished("identity_store.uow") if s.status.status_code.name == "ERROR"]
        )
        assert timed_out.attributes is not None
        assert timed_out.attributes["error.type"] == "DatabaseTimeout"
        assert "identity_store.uow.outcome" not in timed_out.attributes
    finally:
        await close_otel(otel)
    assert otel.points("db.client.connection.count") == []  # a closed pool is not reported


async def test_the_stream_lag_shows_events_held_back_by_an_open_transaction(
    otel: Otel, settings: Settings
) -> None:
    holder = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        holding = holder.transaction()
        await holding.start()
        await holder.fetchval("SELECT pg_current_xact_id()")  # takes a transaction id
        async with PostgresUnitOfWork(otel.pool) as uow:
            await uow.events.append(NewEvent(type="otel.lag"))
        await asyncio.sleep(0.05)
        lag = await otel.telemetry.read_stream_lag()
        await holding.rollback()
    finally:
        await holder.close()

    assert lag is not None
    (events,) = otel.points("identity_store.event_stream.pending_events")
    (seconds,) = otel.points("identity_store.event_stream.pending_seconds")
    (oldest,) = otel.points("identity_store.event_stream.oldest_transaction_seconds")
    assert events.value >= 1
    assert seconds.value > 0
    assert oldest.value >= 0.05
    assert otel.finished("GetStreamLag") == []  # the background reading makes no traces


async def test_log_records_carry_the_ids_of_the_active_span(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    otel = await open_otel(settings.model_copy(update={"slow_statement_seconds": 1e-9}))
    try:
        with caplog.at_level(logging.WARNING, logger="identity_store"):
            async with PostgresUnitOfWork(otel.pool) as uow:
                await uow.users.get(uuid.uuid4())
            await asyncio.sleep(0)  # asyncpg calls query loggers soon after the statement
    finally:
        await close_otel(otel)

    unit = only(otel.finished("identity_store.uow"))
    slow = [r for r in caplog.records if getattr(r, "query_name", None) == "GetUserById"]
    assert slow, "no slow-statement record"
    assert slow[0].trace_id == format(unit.context.trace_id, "032x")  # type: ignore[attr-defined]
    assert slow[0].span_id == format(unit.context.span_id, "016x")  # type: ignore[attr-defined]


async def test_without_a_provider_a_pool_has_no_telemetry_and_repositories_run_plain(
    pool: asyncpg.Pool[Any],
) -> None:
    assert instrument_pool(pool) is None  # no global provider is set in the tests
    assert pool.telemetry is None  # type: ignore[attr-defined]
    async with PostgresUnitOfWork(pool) as uow:
        assert type(uow.users._db).__name__ == "PoolConnectionProxy"
    assert PostgresUserRepository(pool)._db is pool


async def test_the_generic_asyncpg_instrumentation_is_suppressed_under_query_spans(
    otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What opentelemetry-instrumentation-asyncpg does: wrap the method, and make a span
    # only when instrumentation is not suppressed in the current context.
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    seen: list[bool] = []
    original = asyncpg.Connection.fetchrow

    async def generic(self: asyncpg.Connection, *args: Any, **kwargs: Any) -> Any:
        seen.append(is_instrumentation_enabled())
        return await original(self, *args, **kwargs)

    generic.__wrapped__ = original  # type: ignore[attr-defined]
    monkeypatch.setattr(asyncpg.Connection, "fetchrow", generic)

    await PostgresUserRepository(otel.pool).get(uuid.uuid4())
    await otel.pool.fetchrow("SELECT 1")  # the application's own SQL: not ours to name

    assert seen == [False, True]
    assert [s.name for s in otel.finished()] == ["GetUserById"]


async def test_a_bulk_append_on_an_instrumented_pool_is_traced(otel: Otel) -> None:
    events = PostgresEventRepository(otel.pool)
    appended = await events.append_many(
        NewEvent(type="otel.bulk", payload={"i": i}) for i in range(3)
    )
    assert appended == 3
    # asyncpg's COPY sends no SQL text to name it by: the span is "COPY".
    assert [s.name for s in otel.finished()] == [
        "COPY",
        "AddEventTypeCounts",
        "NotifyEventsAppended",
    ]
