"""The benchmark's smoke run (issue 11): every contender does the same work.

A comparison is only honest if the contenders return the same results for the same
inputs, so ``python -m bench`` checks that before timing anything and fails when they
do not. These tests run it in its ``--quick`` form and check that the check can fail;
no timing is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import _database as db
from bench import equivalence, measure, workloads
from bench.contenders import BaselineContender

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_measures_every_contender_on_the_same_results(
    admin_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=ROOT,
        env=dict(os.environ, DATABASE_URL=admin_url),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads(out.read_text())
    # A synchronous_commit=off workload makes the same calls as its twin, checked once.
    expected = {w.name for w in workloads.WORKLOADS if not w.sync_off} | {"export"}
    assert report["equivalence"] == dict.fromkeys(expected, "same")
    measured = {(r["workload"], r["concurrency"], r["contender"]) for r in report["results"]}
    for workload in workloads.WORKLOADS:
        levels = (1,) if workload.kind == "bulk" else (1, db.QUICK.pool)
        for level in levels:
            for contender in workload.contenders:
                assert (workload.name, level, contender) in measured
    assert all(r["ops_per_s"] > 0 for r in report["results"])
    assert {r["events"] for r in report["export"]} == {db.QUICK.export_events}
    assert "get user by id" in proc.stdout and "ratio" in proc.stdout
    # The synchronous_commit=off workloads ran on connections that had it off, and said so.
    assert report["synchronous_commit"] == "off"
    assert "synchronous_commit = off for the bench database" in proc.stdout
    assert any(w.sync_off for w in workloads.WORKLOADS)
    assert {"register_e2e", "append_bulk_e2e"} <= {w.name for w in workloads.WORKLOADS}


def test_no_module_of_the_benchmark_imports_its_driver() -> None:
    """bench/run.py is the driver: the pieces it puts together never import it back."""
    import ast

    for path in sorted((ROOT / "bench").glob("*.py")):
        if path.name in ("run.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "bench.run", path.name
                assert not (node.module == "bench" and any(a.name == "run" for a in node.names))


class _WrongName(BaselineContender):
    """Returns the right user with another display name."""

    async def get_user(self, user_id: Any) -> Any:
        user = await super().get_user(user_id)
        return None if user is None else user.model_copy(update={"display_name": "Someone"})


async def test_the_check_names_a_contender_that_returns_something_else(admin_url: str) -> None:
    name = await db.create_database(admin_url, "bench_check")
    try:
        url = db.with_database(admin_url, name)
        conn = await db.connect(url)
        contenders: dict[str, Any] = {}
        try:
            data = db.Data(url=url)
            await db.seed(conn, data, db.QUICK)
            names = list(dict.fromkeys(workloads.SINGLE + workloads.BULK))
            contenders = await measure.build_contenders(url, 1, data, names)
            contenders["generated"] = _WrongName(contenders["baseline"].db)
            outcome = await equivalence.check_equivalence(url, data, contenders, conn)
        finally:
            await measure.close_contenders(contenders)
            await conn.close()
    finally:
        await db.drop_database(admin_url, name)
    assert outcome["get_user"] == "DIFFERENT: generated vs baseline"
    assert all(v == "same" for k, v in outcome.items() if k != "get_user"), outcome
