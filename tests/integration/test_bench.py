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

from bench import run
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
    expected = {w.name for w in run.WORKLOADS} | {"export"}
    assert report["equivalence"] == dict.fromkeys(expected, "same")
    measured = {(r["workload"], r["concurrency"], r["contender"]) for r in report["results"]}
    for workload in run.WORKLOADS:
        levels = (1,) if workload.kind == "bulk" else (1, run.QUICK.pool)
        for level in levels:
            for contender in workload.contenders:
                assert (workload.name, level, contender) in measured
    assert all(r["ops_per_s"] > 0 for r in report["results"])
    assert {r["events"] for r in report["export"]} == {run.QUICK.export_events}
    assert "get user by id" in proc.stdout and "ratio" in proc.stdout


class _WrongName(BaselineContender):
    """Returns the right user with another display name."""

    async def get_user(self, user_id: Any) -> Any:
        user = await super().get_user(user_id)
        return None if user is None else user.model_copy(update={"display_name": "Someone"})


async def test_the_check_names_a_contender_that_returns_something_else(admin_url: str) -> None:
    name = await run.create_database(admin_url, "bench_check")
    try:
        url = run.with_database(admin_url, name)
        conn = await run.connect(url)
        contenders: dict[str, Any] = {}
        try:
            data = run.Data(url=url)
            await run.seed(conn, data, run.QUICK)
            names = list(dict.fromkeys(run.SINGLE + run.BULK))
            contenders = await run.build_contenders(url, 1, data, names)
            contenders["generated"] = _WrongName(contenders["baseline"].db)
            outcome = await run.check_equivalence(url, data, contenders, conn)
        finally:
            await run.close_contenders(contenders)
            await conn.close()
    finally:
        await run.drop_database(admin_url, name)
    assert outcome["get_user"] == "DIFFERENT: generated vs baseline"
    assert all(v == "same" for k, v in outcome.items() if k != "get_user"), outcome
