"""OpenTelemetry for the service: one trace per request, from the HTTP span through the
unit of work's span to one span per query (identity-store names them after the sqlc
queries; see docs/telemetry.md of identity-store).

Optional: without ``opentelemetry-sdk`` and ``opentelemetry-instrumentation-fastapi``
installed (``pip install 'identity-example[otel]'``) nothing here does anything.

``python -m identity_example`` picks the exporter from the environment, with
OpenTelemetry's own variable names:

- ``OTEL_TRACES_EXPORTER=console``: spans printed to stdout as JSON;
- ``OTEL_TRACES_EXPORTER=otlp``: spans sent over OTLP/HTTP to
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default ``http://localhost:4318``; needs
  ``opentelemetry-exporter-otlp-proto-http``);
- unset or ``none``: no telemetry at all (no provider is set, so identity-store's
  hooks stay off).

``OTEL_METRICS_EXPORTER`` does the same for metrics (console or otlp, every 60 s).
Tests pass their own providers (``Providers``) instead of setting global ones.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from identity_store import instrument_pool

__all__ = ["Providers", "configure_from_environment", "instrument_app", "instrument_service_pool"]


@dataclass(frozen=True)
class Providers:
    """The tracer and meter providers the service reports to (None: the global ones)."""

    tracer_provider: Any = None
    meter_provider: Any = None


def instrument_app(app: FastAPI, providers: Providers | None) -> None:
    """Give every request an HTTP server span, when a tracer provider is set or given."""
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError:
        return
    tracer_provider = providers.tracer_provider if providers else None
    if tracer_provider is None and isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider
    ):
        return
    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider)


def instrument_service_pool(pool: Any, providers: Providers | None) -> None:
    """Report the pool's units of work, queries and metrics to ``providers``
    (create_pool already did, for the global providers)."""
    if providers is not None:
        instrument_pool(
            pool,
            tracer_provider=providers.tracer_provider,
            meter_provider=providers.meter_provider,
        )


def _exporter(kind: str, signal: str) -> Any:
    """The span or metric exporter named by OTEL_<SIGNAL>_EXPORTER, or None."""
    if kind in ("", "none"):
        return None
    if kind == "console":
        module = importlib.import_module(f"opentelemetry.sdk.{signal}.export")
        return getattr(
            module, "ConsoleSpanExporter" if signal == "trace" else "ConsoleMetricExporter"
        )()
    if kind == "otlp":
        name = "trace_exporter" if signal == "trace" else "metric_exporter"
        try:
            module = importlib.import_module(f"opentelemetry.exporter.otlp.proto.http.{name}")
        except ImportError:
            raise SystemExit(
                "OTEL_*_EXPORTER=otlp needs: pip install opentelemetry-exporter-otlp-proto-http"
            ) from None
        return getattr(module, "OTLPSpanExporter" if signal == "trace" else "OTLPMetricExporter")()
    raise SystemExit(f"OTEL_*_EXPORTER: {kind!r} is not one of console, otlp, none")


def configure_from_environment() -> None:
    """Set the global providers as ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``
    say (see the module docstring); nothing when both are unset."""
    spans = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    measures = os.environ.get("OTEL_METRICS_EXPORTER", "").strip().lower()
    if spans in ("", "none") and measures in ("", "none"):
        return
    try:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise SystemExit("OTEL_*_EXPORTER needs: pip install 'identity-example[otel]'") from None
    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", "identity-example")}
    )
    span_exporter = _exporter(spans, "trace")
    if span_exporter is not None:
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        trace.set_tracer_provider(tracer_provider)
    metric_exporter = _exporter(measures, "metrics")
    if metric_exporter is not None:
        reader = PeriodicExportingMetricReader(metric_exporter)
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
