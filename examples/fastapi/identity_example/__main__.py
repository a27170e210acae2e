"""Run the service: ``python -m identity_example [--host 127.0.0.1] [--port 8000]``.

With ``DATABASE_URL`` set, the service uses that database (migrate it first with
``atlas migrate apply``). Without it, it starts identity-store's embedded PostgreSQL
server under ``./.devdb`` (``pip install 'identity-store[embedded]'``), applies the
migrations shipped in the package, and stops the server again on exit if it started it
(Ctrl+C or SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from types import FrameType

import uvicorn

from identity_example.app import create_app
from identity_example.telemetry import configure_from_environment
from identity_store import IdentityStoreError
from identity_store.dev import apply_migrations


class _TerminatedError(Exception):
    """SIGTERM arrived (uvicorn sends it again once its own shutdown is done)."""


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise _TerminatedError


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m identity_example")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    # The application configures logging; the library only logs to "identity_store".
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    configure_from_environment()  # OTEL_TRACES_EXPORTER=console|otlp (identity_example.telemetry)

    started_server = False
    if not (os.environ.get("DATABASE_URL") or os.environ.get("DB_URL")):
        from identity_store import dev

        started_server = dev.server_status() is None
        os.environ["DATABASE_URL"] = dev.start_server().url(dev.APP_DATABASE)
        try:
            asyncio.run(apply_migrations(os.environ["DATABASE_URL"]))
        except IdentityStoreError as exc:
            print(f"identity_example: {exc}")
            return 1
    # uvicorn handles SIGTERM while it serves, then restores this handler and raises the
    # signal again: the default handler would end the process before `finally` runs.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        uvicorn.run(create_app(), host=args.host, port=args.port)
    except _TerminatedError:
        return 128 + signal.SIGTERM
    finally:
        if started_server:
            from identity_store import dev

            dev.stop_server()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
