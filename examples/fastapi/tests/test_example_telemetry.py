"""One trace per request, from the HTTP span to each query span, read back from the SDK's
in-memory exporter; nothing secret in it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from httpx import ASGITransport, AsyncClient
from identity_example import Config, create_app
from identity_example.telemetry import Providers
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from identity_store import Settings

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
async def traced_client(
    identity_store_settings: Settings,
    mailer: Any,
    spans: InMemorySpanExporter,
    reader: InMemoryMetricReader,
) -> AsyncIterator[AsyncClient]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    providers = Providers(tracer_provider, MeterProvider(metric_readers=[reader]))
    app = create_app(
        Config(
            settings=identity_store_settings,
            hasher=FAST_HASHER,
            mailer=mailer,
            telemetry=providers,
            # The reset-mail consumer polls in traces of its own; this test reads one
            # request's trace alone.
            mail_consumer=False,
        )
    )
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://identity.test") as client:
            yield client


def parent_of(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next(s for s in spans if s.context.span_id == span.parent.span_id)


async def test_a_request_is_one_trace_from_the_http_span_to_each_query_span(
    traced_client: AsyncClient,
    spans: InMemorySpanExporter,
    reader: InMemoryMetricReader,
    identity_store_settings: Settings,
) -> None:
    email = f"traced.{uuid.uuid4().hex[:10]}@example.com"
    response = await traced_client.post(
        "/users", json={"email": email, "display_name": "Ada", "password": PASSWORD}
    )
    assert response.status_code == 201, response.text

    finished = list(spans.get_finished_spans())
    (server,) = [s for s in finished if s.kind is SpanKind.SERVER]
    assert server.name == "POST /users"
    (unit,) = [s for s in finished if s.name == "identity_store.uow"]
    queries = [s for s in finished if s.kind is SpanKind.CLIENT]
    assert [s.name for s in queries] == ["CreateUser", "AppendEvent"]
    assert {s.context.trace_id for s in finished} == {server.context.trace_id}
    ancestor = parent_of(unit, finished)
    while ancestor is not None and ancestor is not server:
        ancestor = parent_of(ancestor, finished)
    assert ancestor is server
    for query in queries:
        assert query.parent is not None and query.parent.span_id == unit.context.span_id
        assert query.attributes is not None
        assert query.attributes["db.system.name"] == "postgresql"
        assert query.attributes["db.query.summary"] == query.name
    assert unit.attributes is not None
    assert unit.attributes["identity_store.uow.outcome"] == "committed"

    exported = json.dumps([json.loads(s.to_json()) for s in finished])
    metrics = reader.get_metrics_data()
    exported += metrics.to_json() if metrics is not None else ""
    stored_hash = await _stored_hash(identity_store_settings, response.json()["id"])
    database_password = identity_store_settings.parsed_url.password
    for secret in (email, PASSWORD, stored_hash, database_password):
        assert secret and secret.lower() not in exported.lower()
    assert '"db.client.operation.duration"' in exported


async def _stored_hash(settings: Settings, user_id: str) -> str | None:
    import asyncpg

    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        value: str | None = await conn.fetchval(
            "SELECT password_hash FROM users WHERE id = $1", uuid.UUID(user_id)
        )
        return value
    finally:
        await conn.close()
