"""Helpers of the plugin tests: running sqlc, recording its requests, default checks."""

import contextlib
import json
import os
import re
import socketserver
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
REALWORLD = HERE / "realworld"
VENV_BIN = Path(sys.executable).parent
SQLC = VENV_BIN / "sqlc"


# The command sqlc runs as the plugin in the tests: it hands its stdin and working
# directory to the test process over a Unix socket and writes back what it answers.
RELAY = """\
#!{python} -I
import os, socket, sys
with socket.socket(socket.AF_UNIX) as server:
    server.connect({address!r})
    server.sendall(os.getcwd().encode() + b"\\0" + sys.stdin.buffer.read())
    server.shutdown(socket.SHUT_WR)
    answer = b"".join(iter(lambda: server.recv(65536), b""))
(sys.stdout if answer[:1] == b"0" else sys.stderr).buffer.write(answer[1:])
sys.exit(int(answer[:1]))
"""

# The folder of the relay while plugin_in_process() serves it (one pytest session).
_relay_dir: Path | None = None


class _Answer(socketserver.StreamRequestHandler):
    """Runs one plugin call in this process: what ``sqlc-gen-asyncpg`` does in its own."""

    def handle(self) -> None:
        from sqlc_gen_asyncpg.__main__ import answer

        received = b"".join(iter(lambda: self.request.recv(65536), b""))
        cwd, _, payload = received.partition(b"\0")
        try:
            status, output = answer(payload, Path(cwd.decode()))
        except Exception:  # a crash of the plugin: sqlc shows it and fails
            status, output = 2, traceback.format_exc().encode()
        self.request.sendall(str(status).encode() + output)


@contextlib.contextmanager
def plugin_in_process() -> Iterator[None]:
    """Make :func:`run_sqlc`'s plugin run in this process while the context lasts.

    So the tests exercise the ``sqlc_gen_asyncpg`` this process imported (under mutmut,
    the mutated copy, its trampolines recording which test reached which function),
    not the installed console script in a process of its own. A thread answers the
    relay command sqlc starts; it stops, and its socket goes, at the end.
    """
    global _relay_dir
    with tempfile.TemporaryDirectory(prefix="sqlc-plugin-") as scratch:
        address = str(Path(scratch) / "plugin.sock")
        server = socketserver.ThreadingUnixStreamServer(address, _Answer)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="sqlc-plugin", daemon=True)
        thread.start()
        relay = Path(scratch) / "sqlc-gen-asyncpg"
        relay.write_text(RELAY.format(python=sys.executable, address=address))
        relay.chmod(0o755)
        _relay_dir = Path(scratch)
        try:
            yield
        finally:
            _relay_dir = None
            server.shutdown()
            server.server_close()
            thread.join(timeout=30)


def run_sqlc(project: Path) -> subprocess.CompletedProcess[str]:
    """Run ``sqlc generate`` in ``project``, its plugin answered by this process.

    Needs :func:`plugin_in_process` (the session fixture ``plugin_command``).
    """
    if _relay_dir is None:
        raise RuntimeError("run_sqlc needs plugin_in_process() (the plugin_command fixture)")
    env = {**os.environ, "PATH": f"{_relay_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
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


@dataclass
class CorpusReport:
    """What became of each query of a corpus compiled one query at a time."""

    total: int = 0
    packages: dict[str, str] = field(default_factory=dict)  # package -> query name
    refused: dict[str, str] = field(default_factory=dict)  # query name -> message
    crashed: dict[str, str] = field(default_factory=dict)  # query name -> exception
    unclean: dict[str, list[str]] = field(default_factory=dict)  # query name -> findings

    @property
    def clean(self) -> list[str]:
        """The queries whose code passed every check."""
        return [q for q in self.packages.values() if q not in self.unclean]

    def summary(self) -> str:
        share = len(self.clean) / self.total if self.total else 0.0
        return (
            f"{self.total} queries: {len(self.clean)} compiled clean ({share:.1%}), "
            f"{len(self.unclean)} compiled with findings, {len(self.refused)} refused, "
            f"{len(self.crashed)} crashed"
        )


def compile_each(request: dict[str, Any], out: Path) -> CorpusReport:
    """Compile every query of ``request`` alone into its own package under ``out``.

    A query the plugin refuses is recorded with its message; any other exception is
    a crash. Then the packages are checked as an outside project would check them
    (:func:`default_checks`) and imported; findings are attributed to their query.
    """
    from sqlc_gen_asyncpg import PluginError, generate
    from sqlc_gen_asyncpg.naming import snake

    report = CorpusReport(total=len(request["queries"]))
    for number, query in enumerate(request["queries"], 1):
        single = {**request, "queries": [query]}
        try:
            files = generate(json.dumps(single).encode())
        except PluginError as exc:
            report.refused[query["name"]] = str(exc)
            continue
        except Exception as exc:  # a crash is what this counts
            report.crashed[query["name"]] = repr(exc)
            continue
        package = f"q{number:03d}_{snake(query['name'])}"
        (out / package).mkdir(parents=True)
        for name, text in files.items():
            (out / package / name).write_text(text)
        report.packages[package] = query["name"]
    if not report.packages:
        return report
    findings: dict[str, list[str]] = {}
    for tool, result in default_checks(out, *sorted(report.packages)).items():
        attributed = False
        for line in (result.stdout + result.stderr).splitlines():
            found = re.search(r"\b(q\d{3}_\w+)/", line)
            if found is None or found.group(1) not in report.packages:
                continue
            if tool == "mypy" and ": error:" not in line:
                continue
            findings.setdefault(report.packages[found.group(1)], []).append(f"{tool}: {line}")
            attributed = True
        if result.returncode != 0 and not attributed:
            findings.setdefault("(unattributed)", []).append(f"{tool}: {result.stdout}")
    probe = (
        "import importlib, json, pathlib, sys\n"
        "failed = {}\n"
        "for package in sys.argv[1:]:\n"
        "    for path in sorted(pathlib.Path(package).glob('*.py')):\n"
        "        name = package if path.stem == '__init__' else package + '.' + path.stem\n"
        "        try:\n"
        "            importlib.import_module(name)\n"
        "        except Exception as exc:\n"
        "            failed.setdefault(package, []).append(f'{name}: {exc!r}')\n"
        "print(json.dumps(failed))\n"
    )
    imported = subprocess.run(
        [sys.executable, "-c", probe, *sorted(report.packages)],
        cwd=out,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert imported.returncode == 0, imported.stderr
    for package, errors in json.loads(imported.stdout).items():
        findings.setdefault(report.packages[package], []).extend(f"import: {e}" for e in errors)
    report.unclean = findings
    return report


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
