"""Helpers of the plugin tests: running sqlc, finding the PostgreSQL server."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
VENV_BIN = Path(sys.executable).parent
SQLC = VENV_BIN / "sqlc"


def run_sqlc(project: Path) -> subprocess.CompletedProcess[str]:
    """Run ``sqlc generate`` in ``project`` with the plugin's console script on PATH."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(SQLC), "generate"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def database_url(url: str, database: str) -> str:
    """Return ``url`` pointing at ``database`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def admin_url() -> str:
    """Return a URL of the server's maintenance database.

    The server of ``DATABASE_URL`` when set, else the embedded development server,
    started if needed (and left running: other test sessions share it).
    """
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return database_url(configured, "postgres")
    from identity_store.devdb import start

    return start().url("postgres")
