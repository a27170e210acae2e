"""``python -m identity_example`` as a process: the embedded server it starts is stopped
again however the service is told to stop."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import EXAMPLE, stop, wait_for_line

from identity_store import dev
from identity_store.infrastructure.settings import database_url as configured_database_url

pytestmark = pytest.mark.integration

if configured_database_url():
    pytest.skip(
        "DATABASE_URL is set: the example uses it, no embedded server", allow_module_level=True
    )


@pytest.fixture
def own_root(tmp_path: Path) -> Iterator[Path]:
    # A .devdb of its own: stopping it must not touch the server the suite runs on.
    private = tmp_path / f"private-{secrets.token_hex(4)}"
    private.mkdir(mode=0o700)
    root = private / ".devdb"
    yield root
    dev.destroy_server(root)
    shutil.rmtree(private, ignore_errors=True)


def test_sigterm_stops_the_embedded_server_it_started(own_root: Path, tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "DB_URL", "IDENTITY_STORE_DEVDB"}
    }
    env["IDENTITY_STORE_DEVDB"] = str(own_root)
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLE), os.environ.get("PYTHONPATH", "")])
    log = tmp_path / "example.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "identity_example", "--port", "0"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=out,
        )
    try:
        wait_for_line(process, log, re.compile(r"Uvicorn running on"), timeout=120)
        server = dev.server_status(own_root)
        assert server is not None

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM, log.read_text()
    finally:
        stop(process)

    assert dev.server_status(own_root) is None
    assert not dev.process_alive(server.pid)  # a zombie waiting for its reaper counts as gone
