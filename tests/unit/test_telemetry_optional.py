"""Telemetry is optional: without the OpenTelemetry API the package imports and works,
and no pool is instrumented."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

WITHOUT_OTEL = """
import sys
sys.modules["opentelemetry"] = None  # as if the extra were not installed
import identity_store
from identity_store.infrastructure import _telemetry
from identity_store.infrastructure._pool import BoundedPool

pool = BoundedPool.__new__(BoundedPool)
pool.telemetry = None
assert not _telemetry.AVAILABLE
assert identity_store.instrument_pool(pool) is None and pool.telemetry is None
assert _telemetry.traced(pool) is pool
print("ok")
"""


def test_without_the_opentelemetry_api_the_package_works_and_stays_off() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_OTEL], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_instrumenting_something_else_than_a_pool_of_create_pool_is_refused() -> None:
    from identity_store import instrument_pool

    with pytest.raises(TypeError, match="create_pool"):
        instrument_pool(object())  # type: ignore[arg-type]
