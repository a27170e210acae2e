"""A PgBouncer in transaction mode on loopback, started and stopped by a test session.

Uses the ``pgbouncer`` binary on PATH or in /usr/sbin (Debian's package: ``apt-get
install pgbouncer``; ``make setup-pgbouncer`` does it). PgBouncer refuses to run as
root, so as root it runs as the embedded server's system user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from identity_store import dev
from identity_store.infrastructure.settings import parse_database_url

__all__ = ["PgBouncer", "PgBouncerUnavailable", "find_pgbouncer"]

_START_TIMEOUT_S = 20.0


class PgBouncerUnavailable(RuntimeError):
    """PgBouncer is not installed or did not start; the message says which."""


def find_pgbouncer() -> str | None:
    """Return the path of the pgbouncer binary, or None."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@dataclass
class PgBouncer:
    """A running PgBouncer; :meth:`route` turns a server URL into one through it."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes]

    @classmethod
    def start(
        cls, folder: Path, *, server_url: str, users: dict[str, str], pool_size: int = 40
    ) -> PgBouncer:
        """Start PgBouncer in ``folder`` in front of ``server_url``'s host and port.

        ``users`` maps each role that may log in through it to its password (PgBouncer
        authenticates clients with SCRAM and logs in to the server as them).

        Raises:
            PgBouncerUnavailable: no binary, or it did not accept connections in time.
        """
        binary = find_pgbouncer()
        if binary is None:
            raise PgBouncerUnavailable(
                "pgbouncer is not installed (Debian: apt-get install pgbouncer, "
                "or `make setup-pgbouncer`)"
            )
        host, server_port = parse_database_url(server_url).hosts[0]
        port = _free_port()
        folder.mkdir(parents=True, exist_ok=True)
        userlist = folder / "userlist.txt"
        userlist.write_text(
            "".join(f"{_quote(user)} {_quote(password)}\n" for user, password in users.items())
        )
        config = folder / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host={host} port={server_port or 5432}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {port}\n"
            "unix_socket_dir =\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {userlist}\n"
            "pool_mode = transaction\n"
            "max_client_conn = 1000\n"
            f"default_pool_size = {pool_size}\n"
            "server_reset_query =\n"
            "ignore_startup_parameters = extra_float_digits\n"
            f"logfile = {folder / 'pgbouncer.log'}\n"
            f"pidfile = {folder / 'pgbouncer.pid'}\n"
        )
        owner = _run_as()
        for path in (folder, userlist, config):
            path.chmod(0o700 if path.is_dir() else 0o600)
            if owner is not None:
                os.chown(path, owner.pw_uid, owner.pw_gid)

        def demote() -> None:  # pragma: no cover - runs in the child
            if owner is not None:
                os.setgid(owner.pw_gid)
                os.setgroups([])
                os.setuid(owner.pw_uid)

        process = subprocess.Popen(
            [binary, str(config)],
            preexec_fn=demote if owner is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
        )
        bouncer = cls(folder, port, process)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise PgBouncerUnavailable(f"pgbouncer exited at start: {bouncer.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return bouncer
            except OSError:
                time.sleep(0.05)
        bouncer.stop()
        raise PgBouncerUnavailable(f"pgbouncer did not listen in time: {bouncer.log_tail()}")

    def route(self, url: str) -> str:
        """Return ``url`` with its host and port replaced by this PgBouncer's."""
        return replace(parse_database_url(url), hosts=(("127.0.0.1", self.port),)).render()

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = (self.folder / "pgbouncer.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        """Stop PgBouncer (SIGINT: close at once) and wait for it, 10 s at most."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _run_as() -> pwd.struct_passwd | None:
    """PgBouncer refuses root: run it as the embedded server's system user then."""
    try:
        return dev.server_user()
    except dev.DevServerError as exc:
        raise PgBouncerUnavailable(str(exc)) from None
