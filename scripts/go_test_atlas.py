"""Run `go test ./...` in tools/atlas with a PostgreSQL server for its integration tests.

The tests create and drop their own `atlasengine_it_*` databases on the server named by
ATLAS_ENGINE_TEST_URL_BASE. That is DATABASE_URL's server when set (environment, .env,
.env.local, DB_URL: read as the library reads them), else the embedded
one, started here if needed and stopped again if this script started it.

With the embedded server, a streaming standby of it is started too (pg_basebackup into a
temporary folder, stopped and removed afterwards) and named by
ATLAS_ENGINE_TEST_STANDBY_HOST, for the multi-host `target_session_attrs` test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from identity_store import dev
from identity_store.infrastructure.settings import database_url, parse_database_url

ROOT = Path(__file__).resolve().parent.parent


class Standby:
    """A streaming standby of the embedded server, in a temporary folder."""

    def __init__(self, primary_url: str) -> None:
        self.owner = dev.server_user()
        # As root the server user runs these: from a private folder (a clone's .venv in a
        # 0700 folder), only devdb's copy is reachable.
        self.bin = dev.server_bin_dir(self.owner)
        self.root = Path(tempfile.mkdtemp(prefix="atlas-standby-"))
        if self.owner is not None:
            os.chown(self.root, self.owner.pw_uid, self.owner.pw_gid)
        self.data = self.root / "data"
        with socket.socket() as probe:  # a free port on loopback
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.started = False
        self.primary_url = primary_url

    def start(self) -> None:
        primary = parse_database_url(self.primary_url)
        host, port = primary.hosts[0] if primary.hosts else ("127.0.0.1", None)
        self._pg(
            [
                "pg_basebackup",
                "--pgdata",
                str(self.data),
                "--write-recovery-conf",
                "--wal-method=stream",
                "--checkpoint=fast",
                "--host",
                host,
                "--port",
                str(port or 5432),
                "--username",
                primary.user or "postgres",
            ],
            password=primary.password or "",
        )
        self._pg(
            [
                "pg_ctl",
                "start",
                "--wait",
                "--timeout",
                "60",
                "--pgdata",
                str(self.data),
                "--log",
                str(self.root / "server.log"),
                "-o",
                f"-p {self.port} -c listen_addresses=127.0.0.1",
            ]
        )
        self.started = True

    def _demote(self) -> Callable[[], None] | None:
        owner = self.owner
        if owner is None:
            return None

        def demote() -> None:  # pragma: no cover - runs in the child
            os.setgid(owner.pw_gid)
            os.setgroups([])
            os.setuid(owner.pw_uid)

        return demote

    def _pg(self, args: list[str], password: str = "") -> None:
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "LANG": "C"}
        if password:
            env["PGPASSWORD"] = password
        proc = subprocess.run(  # noqa: S603
            [str(self.bin / args[0]), *args[1:]],
            preexec_fn=self._demote(),
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd="/",
        )
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            raise RuntimeError(f"{args[0]} failed: {lines[-1] if lines else proc.returncode}")

    def stop(self) -> None:
        try:
            if self.started:
                self._pg(["pg_ctl", "stop", "--pgdata", str(self.data), "--mode", "fast", "--wait"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def main() -> int:
    env = dict(os.environ)
    started = False
    standby: Standby | None = None
    configured = database_url()
    if configured:
        base = parse_database_url(configured).with_database("postgres").render()
    else:
        started = dev.server_status() is None
        base = dev.start_server().url("postgres")
        try:
            standby = Standby(base)
            standby.start()
            env["ATLAS_ENGINE_TEST_STANDBY_HOST"] = f"127.0.0.1:{standby.port}"
        except (dev.DevServerError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
            print(f"go_test_atlas: no standby, the primary+standby test is skipped: {exc}")
            if standby is not None:
                standby.stop()
                standby = None
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
        if standby is not None:
            standby.stop()
        if started:
            dev.stop_server()


if __name__ == "__main__":
    sys.exit(main())
