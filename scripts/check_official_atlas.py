"""Prove that the official Atlas CLI accepts what our Atlas build writes and records.

Deploys run the official `atlas migrate apply`; day to day we run our own build on the
Atlas engine library (tools/atlas). The only official CLI the module proxy serves is
Community Edition v0.13.1, which speaks to PostgreSQL <= 15, so this check runs a
PostgreSQL 15 server (Debian's binaries, PG15_BIN) under .devdb-pg15/ and shows:

1. the official CLI validates migrations/ + atlas.sum and finds schema.sql in sync;
2. the official CLI applies migrations/ to an empty database, and our build then
   reports that database current with nothing pending;
3. our build applies migrations/, and the official CLI then reports it current;
4. both CLIs print the same stdout, stderr and exit code for lint (renames, backfills,
   atlas:nolint), apply without atlas.sum and a quoted --var (tools/atlas TestOfficial*).

Exits non-zero naming the first step that failed. Stops the server if it started it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from identity_store import dev

ROOT = Path(__file__).resolve().parent.parent
OURS = os.environ.get("ATLAS") or str(ROOT / ".tools" / "bin" / "atlas")
OFFICIAL = os.environ.get("ATLAS_CE") or str(ROOT / ".tools" / "bin" / "atlas-ce-v0.13.1")
PG15_ROOT = ROOT / ".devdb-pg15"


class StepError(Exception):
    pass


def atlas(binary: str, *args: str) -> str:
    proc = subprocess.run(  # noqa: S603
        [binary, *args],
        cwd=ROOT,
        env=dict(os.environ, ATLAS_NO_UPDATE_NOTIFIER="1"),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    who = "official v0.13.1" if binary == OFFICIAL else "ours"
    if proc.returncode != 0:
        raise StepError(f"atlas ({who}) {' '.join(args[:2])} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def expect(text: str, needle: str, what: str) -> None:
    if needle not in text:
        raise StepError(f"{what}: expected {needle!r} in:\n{text}")


def same_output(base_url: str) -> None:
    """Run tools/atlas's side-by-side tests: same stdout, stderr and exit code as official."""
    env = dict(os.environ, ATLAS_CE_BIN=OFFICIAL, ATLAS_ENGINE_TEST_PG15_URL_BASE=base_url)
    proc = subprocess.run(
        ["go", "test", "-count=1", "-run", "TestOfficial", "./..."],  # noqa: S607
        cwd=ROOT / "tools" / "atlas",
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if proc.returncode != 0:
        raise StepError(f"ours and the official CLI differ:\n{proc.stdout}{proc.stderr}")


def main() -> int:
    pg15 = os.environ.get("PG15_BIN", "/usr/lib/postgresql/15/bin")
    if not Path(pg15, "postgres").exists():
        print(f"PostgreSQL 15 binaries not found in {pg15} (apt-get install postgresql-15)")
        return 1
    os.environ["IDENTITY_STORE_PG_BIN"] = pg15
    started = dev.server_status(PG15_ROOT) is None
    server = dev.start_server(PG15_ROOT)
    official_db, ours_db = "compat_official", "compat_ours"
    try:
        steps = 0
        dev.recreate_database(server, dev.DEV_DATABASE)
        dev_url = server.url(dev.DEV_DATABASE)
        atlas(OFFICIAL, "migrate", "validate", "--dir", "file://migrations", "--dev-url", dev_url)
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / "migrations"
            shutil.copytree(ROOT / "migrations", copy)
            dev.recreate_database(server, dev.DEV_DATABASE)
            out = atlas(
                OFFICIAL,
                "migrate",
                "diff",
                "--dir",
                f"file://{copy}",
                "--to",
                "file://schema.sql",
                "--dev-url",
                dev_url,
            )
            expect(out, "no changes to be made", "official migrate diff")
            if sorted(p.name for p in copy.iterdir()) != sorted(
                p.name for p in (ROOT / "migrations").iterdir()
            ):
                raise StepError("the official migrate diff wrote a new migration")
        steps += 1
        print("ok    official CLI validates migrations/ and finds schema.sql in sync")

        for name in (official_db, ours_db):
            dev.recreate_database(server, name)
        official_url, ours_url = server.url(official_db), server.url(ours_db)
        migrations = ("--dir", "file://migrations")

        atlas(OFFICIAL, "migrate", "apply", *migrations, "--url", official_url)
        expect(
            atlas(OURS, "migrate", "status", *migrations, "--url", official_url),
            "Already at latest version",
            "our status after the official apply",
        )
        expect(
            atlas(OURS, "migrate", "apply", *migrations, "--url", official_url),
            "No migration files to execute",
            "our apply after the official apply",
        )
        steps += 1
        print("ok    official apply, then our build sees the database current")

        atlas(OURS, "migrate", "apply", *migrations, "--url", ours_url)
        expect(
            atlas(OFFICIAL, "migrate", "status", *migrations, "--url", ours_url),
            "Already at latest version",
            "official status after our apply",
        )
        expect(
            atlas(OFFICIAL, "migrate", "apply", *migrations, "--url", ours_url),
            "No migration files to execute",
            "official apply after our apply",
        )
        steps += 1
        print("ok    our apply, then the official CLI sees the database current")

        same_output(server.url("postgres"))
        steps += 1
        print("ok    our CLI answers like the official one (go test -run TestOfficial)")
    except StepError as exc:
        print(f"FAIL  {exc}", file=sys.stderr)
        return 1
    finally:
        for name in (official_db, ours_db):
            dev.drop_database(server, name)
        if started:
            dev.stop_server(PG15_ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
