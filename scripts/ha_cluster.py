"""A local high-availability PostgreSQL cluster: etcd and three Patroni nodes on loopback.

    python scripts/ha_cluster.py up            # start (or reuse) the cluster, print its URL
    python scripts/ha_cluster.py status        # the members, their roles and lag
    python scripts/ha_cluster.py url           # the multi-host URL (read-write)
    python scripts/ha_cluster.py primary-url   # the current primary alone
    python scripts/ha_cluster.py switchover    # planned: the sync standby takes over
    python scripts/ha_cluster.py kill-primary  # unplanned: SIGKILL its Patroni and postmaster
    python scripts/ha_cluster.py rejoin        # restart stopped nodes (they rejoin as standbys)
    python scripts/ha_cluster.py down          # stop everything and delete the cluster

The engines are the real ones, from Debian's packages: ``etcd`` (etcd-server) as the
consensus store and ``patroni`` as the HA manager, on Debian's PostgreSQL 15 binaries
(``HA_PG_BIN`` points at another ``bin/``). Patroni runs with ``synchronous_mode``, so a
commit is acknowledged only once a standby has it and an unplanned failover promotes only
that standby: nothing acknowledged is lost. Every process listens on 127.0.0.1 only.

As root the nodes run as the embedded server's system user (PostgreSQL refuses root) and
the cluster lives in that user's folder (``identity_store.dev.dev.system_area`` of
``.ha/``, under ``/var/lib/identity-store-pg``); otherwise under ``.ha/`` in the
checkout. ``state.json`` there records ports, processes
and the generated superuser password (mode 0600).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from identity_store import dev

ROOT = Path(__file__).resolve().parent.parent
SCOPE = "identity-ha"
NODES = ("node1", "node2", "node3")
DATABASE = "identity_store"
_TTL_S = 10
"""Patroni's leader lease: an unplanned failover starts at most this long after the primary dies."""
_WAIT_S = 90


class ClusterError(RuntimeError):
    """The cluster could not be started, reached or changed."""


@dataclass
class Node:
    name: str
    pg_port: int
    rest_port: int
    pid: int = 0


@dataclass
class State:
    folder: str
    password: str
    replication_password: str
    etcd_client_port: int
    etcd_peer_port: int
    etcd_pid: int = 0
    nodes: list[Node] = field(default_factory=list)

    @classmethod
    def load(cls, folder: Path) -> State | None:
        path = folder / "state.json"
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        raw["nodes"] = [Node(**n) for n in raw["nodes"]]
        return cls(**raw)

    def save(self) -> None:
        path = Path(self.folder) / "state.json"
        path.write_text(json.dumps(asdict(self), indent=2))
        path.chmod(0o600)

    def url(self, database: str = DATABASE, *, attrs: str = "read-write") -> str:
        hosts = ",".join(f"127.0.0.1:{n.pg_port}" for n in self.nodes)
        return (
            f"postgresql://postgres:{quote(self.password, safe='')}@{hosts}/{database}"
            f"?sslmode=disable&target_session_attrs={attrs}"
        )

    def node_url(self, node: Node, database: str = DATABASE) -> str:
        return (
            f"postgresql://postgres:{quote(self.password, safe='')}@127.0.0.1:{node.pg_port}"
            f"/{database}?sslmode=disable"
        )

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)


def folder() -> Path:
    """``.ha/`` in the checkout; as root, the server user's folder for it (devdb's rule)."""
    local = ROOT / ".ha"
    return local if os.geteuid() != 0 else dev.system_area(local)


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _spawn(command: Sequence[str], log: Path, owner: pwd.struct_passwd | None, cwd: Path) -> int:
    def demote() -> None:  # pragma: no cover - runs in the child
        if owner is not None:
            os.setgid(owner.pw_gid)
            os.setgroups([])
            os.setuid(owner.pw_uid)

    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "HOME": str(cwd)}
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            preexec_fn=demote if owner is not None else None,
            start_new_session=True,
        )
    return proc.pid


def _chown(path: Path, owner: pwd.struct_passwd | None) -> None:
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)


def _patroni_config(state: State, node: Node, pg_bin: str) -> str:
    base = Path(state.folder) / node.name
    etcd = f"127.0.0.1:{state.etcd_client_port}"
    config: dict[str, Any] = {
        "scope": SCOPE,
        "name": node.name,
        "log": {"level": "WARNING"},
        "restapi": {
            "listen": f"127.0.0.1:{node.rest_port}",
            "connect_address": f"127.0.0.1:{node.rest_port}",
        },
        "etcd3": {"hosts": [etcd]},
        "bootstrap": {
            "dcs": {
                "ttl": _TTL_S,
                "loop_wait": 1,
                "retry_timeout": 4,
                "maximum_lag_on_failover": 1048576,
                "synchronous_mode": True,
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": {
                        "wal_level": "replica",
                        "hot_standby": "on",
                        "wal_log_hints": "on",
                        "max_wal_senders": 10,
                        "max_replication_slots": 10,
                        "max_connections": 200,
                        "wal_keep_size": "128MB",
                    },
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{node.pg_port}",
            "connect_address": f"127.0.0.1:{node.pg_port}",
            "data_dir": str(base / "data"),
            "bin_dir": pg_bin,
            "pgpass": str(base / "pgpass"),
            "authentication": {
                "superuser": {"username": "postgres", "password": state.password},
                "replication": {
                    "username": "replicator",
                    "password": state.replication_password,
                },
                "rewind": {"username": "postgres", "password": state.password},
            },
            "parameters": {"unix_socket_directories": str(base)},
            "pg_hba": [
                "local all all trust",
                "host replication replicator 127.0.0.1/32 scram-sha-256",
                "host all all 127.0.0.1/32 scram-sha-256",
            ],
        },
        "tags": {"nofailover": False, "noloadbalance": False},
    }
    # JSON is YAML: no YAML writer needed.
    return json.dumps(config, indent=2)


def _get(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return json.loads(response.read() or b"null")


def members(state: State) -> list[dict[str, Any]]:
    """Patroni's view of the cluster, asked of any node that answers."""
    for node in state.nodes:
        try:
            data = _get(f"http://127.0.0.1:{node.rest_port}/cluster")
        except (OSError, urllib.error.URLError, ValueError):
            continue
        return list(data.get("members", []))
    return []


def leader(state: State) -> str | None:
    """The node that answers Patroni's ``/primary`` check itself (the leader key in etcd
    outlives a killed primary by up to the lease, so the DCS's word is not enough)."""
    for node in state.nodes:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{node.rest_port}/primary", timeout=2
            ) as response:
                if response.status == 200:
                    return node.name
        except (OSError, urllib.error.URLError, ValueError):
            continue
    return None


def _wait(what: str, check: Any, timeout: float = _WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}")


def healthy(state: State) -> bool:
    found = members(state)
    running = [m for m in found if m.get("state") in ("running", "streaming")]
    sync = [m for m in found if m.get("role") == "sync_standby"]
    return len(running) == len(state.nodes) and leader(state) is not None and bool(sync)


def _start_node(state: State, node: Node, owner: pwd.struct_passwd | None) -> None:
    base = Path(state.folder) / node.name
    node.pid = _spawn(["patroni", str(base / "patroni.yml")], base / "patroni.log", owner, base)


def up(pg_bin: str) -> State:
    owner = dev.server_user()
    where = folder()
    state = State.load(where)
    if (
        state is not None
        and dev.process_alive(state.etcd_pid)
        and all(dev.process_alive(n.pid) for n in state.nodes)
    ):
        _wait("a healthy cluster", lambda: healthy(state))
        return state
    if state is not None:
        down()
    for tool in ("etcd", "patroni"):
        if shutil.which(tool) is None:
            raise ClusterError(
                f"{tool} is not installed: make setup-ha (Debian: etcd-server patroni)"
            )
    if not Path(pg_bin, "postgres").exists():
        raise ClusterError(
            f"no PostgreSQL server in {pg_bin}: set HA_PG_BIN, or apt-get install postgresql-15"
        )
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    _chown(where, owner)
    ports = _free_ports(2 + 2 * len(NODES))
    state = State(
        folder=str(where),
        password=secrets.token_urlsafe(18),
        replication_password=secrets.token_urlsafe(18),
        etcd_client_port=ports[0],
        etcd_peer_port=ports[1],
        nodes=[Node(name, ports[2 + 2 * i], ports[3 + 2 * i]) for i, name in enumerate(NODES)],
    )
    (where / "checkout").write_text(f"{ROOT}\n")
    etcd_dir = where / "etcd"
    etcd_dir.mkdir(mode=0o700, exist_ok=True)
    _chown(etcd_dir, owner)
    peer = f"http://127.0.0.1:{state.etcd_peer_port}"
    client = f"http://127.0.0.1:{state.etcd_client_port}"
    state.etcd_pid = _spawn(
        [
            "etcd",
            "--name=ha",
            f"--data-dir={etcd_dir / 'data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=ha={peer}",
            "--log-level=warn",
        ],
        etcd_dir / "etcd.log",
        owner,
        etcd_dir,
    )
    state.save()
    _wait("etcd", lambda: _etcd_ready(state), timeout=30)
    for node in state.nodes:
        base = where / node.name
        base.mkdir(mode=0o700, exist_ok=True)
        config = base / "patroni.yml"
        config.write_text(_patroni_config(state, node, pg_bin))
        config.chmod(0o600)
        for path in (base, config):
            _chown(path, owner)
    # The first node bootstraps alone; the others clone it once it leads.
    _start_node(state, state.nodes[0], owner)
    state.save()
    _wait("the first node to lead", lambda: leader(state) == state.nodes[0].name)
    for node in state.nodes[1:]:
        _start_node(state, node, owner)
    state.save()
    _wait("a healthy cluster (a leader, a synchronous standby)", lambda: healthy(state))
    _create_database(state)
    return state


def _etcd_ready(state: State) -> bool:
    try:
        _get(f"http://127.0.0.1:{state.etcd_client_port}/health")
    except (OSError, urllib.error.URLError, ValueError):
        return False
    return True


def _psql(state: State, node: Node, sql: str, database: str = "postgres") -> str:
    env = {**os.environ, "PGPASSWORD": state.password, "PGCONNECT_TIMEOUT": "5"}
    proc = subprocess.run(  # noqa: S603
        [
            shutil.which("psql") or "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(node.pg_port),
            "-U",
            "postgres",
            "-d",
            database,
            "-Atqc",
            sql,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        raise ClusterError(f"psql on {node.name} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout.strip()


def _create_database(state: State) -> None:
    primary = state.node(_wait("a leader", lambda: leader(state)))
    exists = "SELECT 1 FROM pg_database WHERE datname = 'identity_store'"
    if _psql(state, primary, exists) != "1":
        _psql(state, primary, f'CREATE DATABASE "{DATABASE}"')


def primary_url(state: State, database: str = DATABASE) -> str:
    return state.node_url(state.node(_wait("a leader", lambda: leader(state))), database)


def switchover(state: State) -> tuple[str, str]:
    """Planned: hand the leader role to the synchronous standby; return (old, new)."""
    old = _wait("a leader", lambda: leader(state))
    candidate = next(m["name"] for m in members(state) if m.get("role") == "sync_standby")
    body = json.dumps({"leader": old, "candidate": candidate}).encode()
    rest = state.node(old).rest_port
    request = urllib.request.Request(
        f"http://127.0.0.1:{rest}/switchover",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        response.read()
    _wait(f"{candidate} to lead", lambda: leader(state) == candidate)
    return old, candidate


def kill_primary(state: State) -> str:
    """Unplanned: SIGKILL the leader's Patroni, then its postmaster; return its name."""
    name = str(_wait("a leader", lambda: leader(state)))
    node = state.node(name)
    _signal(node.pid, signal.SIGKILL)
    pidfile = Path(state.folder) / name / "data" / "postmaster.pid"
    if pidfile.exists():
        _signal(int(pidfile.read_text().split()[0]), signal.SIGKILL)
    return name


def rejoin(state: State) -> list[str]:
    """Start every node whose Patroni is not running; it rejoins as a standby."""
    owner = dev.server_user()
    started = []
    for node in state.nodes:
        if not dev.process_alive(node.pid):
            _start_node(state, node, owner)
            started.append(node.name)
    state.save()
    _wait(
        "a healthy cluster",
        lambda: (
            healthy(state)
            and all(m.get("state") in ("running", "streaming") for m in members(state))
            and len(members(state)) == len(state.nodes)
        ),
    )
    return started


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def down() -> bool:
    where = folder()
    state = State.load(where)
    if state is None:
        if where.exists():
            shutil.rmtree(where, ignore_errors=True)
        return False
    for node in state.nodes:
        _signal(node.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while any(dev.process_alive(n.pid) for n in state.nodes) and time.monotonic() < deadline:
        for node in state.nodes:
            _reap(node.pid)
        time.sleep(0.2)
    for node in state.nodes:
        _signal(node.pid, signal.SIGKILL)
        pidfile = where / node.name / "data" / "postmaster.pid"
        if pidfile.exists():
            _signal(int(pidfile.read_text().split()[0]), signal.SIGKILL)
    _signal(state.etcd_pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while dev.process_alive(state.etcd_pid) and time.monotonic() < deadline:
        _reap(state.etcd_pid)
        time.sleep(0.2)
    _signal(state.etcd_pid, signal.SIGKILL)
    shutil.rmtree(where, ignore_errors=True)
    return True


def _print_status(state: State) -> None:
    print(f"{'member':8} {'role':14} {'state':10} {'port':>6} {'lag (bytes)':>12}")
    for member in members(state):
        print(
            f"{member['name']:8} {member.get('role', '?'):14} {member.get('state', '?'):10} "
            f"{member.get('port', ''):>6} {member.get('lag', '')!s:>12}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command",
        choices=[
            "up",
            "down",
            "status",
            "url",
            "primary-url",
            "switchover",
            "kill-primary",
            "rejoin",
        ],
    )
    args = parser.parse_args(argv)
    pg_bin = os.environ.get("HA_PG_BIN") or "/usr/lib/postgresql/15/bin"
    try:
        if args.command == "up":
            started = time.monotonic()
            state = up(pg_bin)
            print(f"cluster up in {time.monotonic() - started:.1f} s; DATABASE_URL:")
            print(state.url())
            return 0
        if args.command == "down":
            print("cluster stopped and deleted" if down() else "no cluster")
            return 0
        loaded = State.load(folder())
        if loaded is None:
            print("no cluster: make ha-up", file=sys.stderr)
            return 1
        state = loaded
        if args.command == "status":
            _print_status(state)
        elif args.command == "url":
            print(state.url())
        elif args.command == "primary-url":
            print(primary_url(state))
        elif args.command == "switchover":
            old, new = switchover(state)
            print(f"switchover: {old} -> {new}")
        elif args.command == "kill-primary":
            print(f"killed {kill_primary(state)} (Patroni and postmaster, SIGKILL)")
        elif args.command == "rejoin":
            print("restarted: " + (", ".join(rejoin(state)) or "none"))
    except ClusterError as exc:
        print(f"ha_cluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
