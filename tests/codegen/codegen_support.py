"""Helpers of the plugin tests: running sqlc, finding the PostgreSQL server."""

import os
import subprocess
import sys
from pathlib import Path

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


def record(project: Path, request_file: Path, expected_dir: Path) -> None:
    """Record the request sqlc sends for ``project``, and the files the plugin makes of it.

    sqlc runs a stand-in plugin that saves its stdin; the PostgreSQL system schemas are
    dropped from the catalog to keep the recording small. Run as
    ``python tests/codegen/codegen_support.py`` after changing ``recorded/project``.
    """
    import json
    import tempfile

    from sqlc_gen_asyncpg import generate

    with tempfile.TemporaryDirectory() as scratch:
        saved = Path(scratch) / "request.json"
        stand_in = Path(scratch) / "record-request"
        stand_in.write_text(f"#!/bin/sh\ncat > '{saved}'\necho '{{\"files\": []}}'\n")
        stand_in.chmod(0o755)
        config = (project / "sqlc.yaml").read_text()
        recording = project / "sqlc.record.yaml"
        recording.write_text(config.replace("cmd: sqlc-gen-asyncpg", f"cmd: {stand_in}"))
        try:
            subprocess.run([str(SQLC), "generate", "-f", recording.name], cwd=project, check=True)
        finally:
            recording.unlink()
        request = json.loads(saved.read_text())
    request["catalog"]["schemas"] = [
        s
        for s in request["catalog"]["schemas"]
        if s["name"] not in ("pg_catalog", "information_schema")
    ]
    request["settings"]["codegen"]["process"]["cmd"] = "sqlc-gen-asyncpg"
    request_file.write_text(json.dumps(request, indent=1, sort_keys=True) + "\n")
    for stale in expected_dir.glob("*.py"):
        stale.unlink()
    for name, text in generate(request_file.read_bytes()).items():
        (expected_dir / name).write_text(text)


if __name__ == "__main__":
    record(
        HERE / "recorded" / "project",
        HERE / "recorded" / "request.json",
        HERE / "recorded" / "expected",
    )
