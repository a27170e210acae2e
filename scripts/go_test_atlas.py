"""Run `go test ./...` in tools/atlas with a PostgreSQL server for its integration tests.

The tests create and drop their own `atlasengine_it_*` databases on the server named by
ATLAS_ENGINE_TEST_URL_BASE. That is DATABASE_URL's server when set (environment, .env,
.env.local, DB_URL: read as the library reads them), else the embedded
one, started here if needed and stopped again if this script started it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from identity_store import devdb
from identity_store.infrastructure.settings import database_url, parse_database_url

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    env = dict(os.environ)
    started = False
    configured = database_url()
    if configured:
        base = parse_database_url(configured).with_database("postgres").render()
    else:
        started = devdb.status() is None
        base = devdb.start().url("postgres")
    env["ATLAS_ENGINE_TEST_URL_BASE"] = base
    try:
        return subprocess.run(
            ["go", "test", "-count=1", "./..."],  # noqa: S607
            cwd=ROOT / "tools" / "atlas",
            env=env,
            check=False,
            timeout=900,
        ).returncode
    finally:
        if started:
            devdb.stop()


if __name__ == "__main__":
    sys.exit(main())
