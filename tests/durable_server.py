"""A crash-safe PostgreSQL server of its own, for tests that stop and kill it.

The embedded development server runs with ``fsync=off`` and ``synchronous_commit=off``:
a crash may lose commits it acknowledged, so a fault test there would prove nothing.
This one runs the same binaries (``identity_store.dev.dev.server_bin_dir()``, so
``IDENTITY_STORE_PG_BIN`` applies, and as root a copy the server user can reach) with
``fsync``, ``synchronous_commit`` and ``full_page_writes`` on, listens on 127.0.0.1
only, on one port for its whole life so that a pool can find it again after a restart,
and lives in a temporary folder that :meth:`DurableServer.destroy` removes. As root it
runs as the embedded server's system user, like ``devdb``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from identity_store import dev

__all__ = ["DurableServer"]

StopMode = Literal["smart", "fast", "immediate"]
_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DurableServer:
    """A PostgreSQL server with durable settings; see the module docstring."""

    root: Path
    port: int
    password: str
    binaries: Path
    owner: pwd.struct_passwd | None
    running: bool = False

    @classmethod
    def create(cls) -> DurableServer:
        """Initialise a new cluster in a temporary folder (not started)."""
        root = Path(tempfile.mkdtemp(prefix="identity-store-durable-"))
        owner = dev.server_user()
        if owner is not None:
            os.chown(root, owner.pw_uid, owner.pw_gid)
        root.chmod(0o700)
        # As root the server user may not reach the checkout's .venv (a clone in a 0700
        # folder): devdb gives a copy of the binaries it can run, as for the dev server.
        binaries = dev.server_bin_dir(owner)
        server = cls(root, _free_port(), secrets.token_urlsafe(18), binaries, owner)
        pwfile = root / "pw"
        pwfile.write_text(server.password + "\n")
        if owner is not None:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        try:
            server._run(
                "initdb",
                "--pgdata",
                str(root / "data"),
                "--username",
                "postgres",
                "--pwfile",
                str(pwfile),
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-instructions",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        with (root / "data" / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# identity-store fault tests: crash-safe settings\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {server.port}\n"
                "unix_socket_directories = ''\n"
                "fsync = on\n"
                "synchronous_commit = on\n"
                "full_page_writes = on\n"
                "max_connections = 100\n"
            )
        return server

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        owner = self.owner

        def demote() -> None:  # pragma: no cover - runs in the child
            if owner is not None:
                os.setgid(owner.pw_gid)
                os.setgroups([])
                os.setuid(owner.pw_uid)

        with tempfile.TemporaryFile("w+") as output:
            # A file, not a pipe: the postmaster inherits it and never closes it.
            proc = subprocess.run(
                [str(self.binaries / program), *args],
                preexec_fn=demote if owner is not None else None,
                env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "LANG": "C"},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=_TIMEOUT_S + 30,
                check=False,
                cwd="/",
                text=True,
            )
            output.seek(0)
            text = output.read()
        if proc.returncode != 0:
            raise RuntimeError(f"{program} failed ({proc.returncode}): {text.strip()[-500:]}")
        return proc

    def start(self) -> None:
        """Start the server (same port as before) and wait until it accepts connections."""
        self._run(
            "pg_ctl",
            "start",
            "--wait",
            "--timeout",
            str(_TIMEOUT_S),
            "--pgdata",
            str(self.root / "data"),
            "--log",
            str(self.root / "server.log"),
        )
        self.running = True

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server: ``fast`` (roll back sessions, checkpoint) or ``immediate``
        (no checkpoint: the next start recovers from the WAL, as after a crash)."""
        self._run(
            "pg_ctl",
            "stop",
            "--wait",
            "--timeout",
            str(_TIMEOUT_S),
            "--mode",
            mode,
            "--pgdata",
            str(self.root / "data"),
        )
        self.running = False

    def url(self, database: str = "postgres") -> str:
        """The superuser's URL of ``database``."""
        return (
            f"postgresql://postgres:{quote(self.password, safe='')}@127.0.0.1:{self.port}"
            f"/{quote(database, safe='')}?sslmode=disable"
        )

    def destroy(self) -> None:
        """Stop the server if it runs and remove its folder."""
        if self.running:
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
