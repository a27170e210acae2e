"""Helpers of the plugin tests: running sqlc, recording its requests, default checks."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

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


def capture_request(project: Path) -> dict[str, Any]:
    """Return the request sqlc sends for ``project``, PostgreSQL's system schemas left out.

    sqlc runs a stand-in plugin that saves its stdin.
    """
    with tempfile.TemporaryDirectory() as scratch:
        saved = Path(scratch) / "request.json"
        stand_in = Path(scratch) / "record-request"
        stand_in.write_text(f"#!/bin/sh\ncat > '{saved}'\necho '{{\"files\": []}}'\n")
        stand_in.chmod(0o755)
        config = (project / "sqlc.yaml").read_text()
        recording = project / "sqlc.record.yaml"
        recording.write_text(config.replace("cmd: sqlc-gen-asyncpg", f"cmd: {stand_in}"))
        try:
            result = subprocess.run(
                [str(SQLC), "generate", "-f", recording.name],
                cwd=project,
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
        finally:
            recording.unlink()
        assert result.returncode == 0, result.stderr
        request: dict[str, Any] = json.loads(saved.read_text())
    request["catalog"]["schemas"] = [
        s
        for s in request["catalog"]["schemas"]
        if s["name"] not in ("pg_catalog", "information_schema")
    ]
    request["settings"]["codegen"]["process"]["cmd"] = "sqlc-gen-asyncpg"
    return request


def default_checks(directory: Path, *targets: str) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run ruff (check, format --check) and mypy --strict as a project with no config would.

    ``directory`` must be outside any project: ruff runs with ``--isolated`` (its
    defaults, line length 88), mypy with ``--strict`` and no config file; asyncpg-stubs
    and pydantic come from the environment.
    """
    tools = {
        "ruff check": [str(VENV_BIN / "ruff"), "check", "--isolated", *targets],
        "ruff format": [str(VENV_BIN / "ruff"), "format", "--isolated", "--check", *targets],
        "mypy": [
            str(VENV_BIN / "mypy"),
            "--strict",
            "--no-incremental",
            "--cache-dir",
            os.devnull,
            *targets,
        ],
    }
    return {
        name: subprocess.run(
            command,
            cwd=directory,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        for name, command in tools.items()
    }


def record(project: Path, request_file: Path, expected_dir: Path) -> None:
    """Record the request sqlc sends for ``project``, and the files the plugin makes of it.

    Run as ``python tests/codegen_support.py`` after changing ``recorded/project`` or the
    plugin's output.
    """
    from sqlc_gen_asyncpg import generate

    request = capture_request(project)
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
