"""Side-by-side benchmark of identity-store against hand-written asyncpg and SQLAlchemy.

``make bench`` (or ``python -m bench``) runs every contender of every workload in one
run, on one server and one database, taking turns round by round, and prints ops/s,
p50/p99 latency and the ratio to hand-written asyncpg + pydantic. Before timing
anything it checks that every contender returns the same results for the same inputs,
and exits non-zero when one does not. Nothing about speed is asserted.

Options: ``--quick`` (a few seconds: tiny data, two rounds), ``--json FILE`` (every
number, for tools), ``--docs`` (rewrite the results part of docs/benchmarks.md and
docs/benchmarks.png), ``--only a,b`` (some workloads), ``--rounds N``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench._database import (
    FULL,
    QUICK,
    ROOT,
    Data,
    Scale,
    admin_url,
    connect,
    create_database,
    drop_database,
    seed,
    with_database,
)
from bench.equivalence import check_equivalence
from bench.measure import (
    build_contenders,
    close_contenders,
    run_export,
    run_replay,
    run_workload,
    timed,
)
from bench.report import print_series, server_facts, targets
from bench.workloads import BULK, LABELS, SINGLE, WORKLOADS, Workload


async def profile(args: argparse.Namespace) -> int:
    """Run one contender on one workload (concurrency 1) under pyinstrument."""
    from pyinstrument import Profiler

    who, _, what = args.profile.partition(":")
    (workload,) = [w for w in WORKLOADS if w.name == what]
    admin = admin_url()
    name = await create_database(admin, "bench_profile")
    try:
        url = with_database(admin, name)
        conn = await connect(url)
        try:
            scale = QUICK if args.quick else FULL
            data = Data(url=url)
            await seed(conn, data, scale)
            contenders = await build_contenders(url, 1, data, [who])
            try:
                n = workload.ops(scale) if workload.kind == "bulk" else 2000
                warm = await workload.inputs(data, conn, who, min(n, 50), 1)
                await timed(workload.call, contenders[who], warm)
                inputs = await workload.inputs(data, conn, who, n, 1)
                profiler = Profiler(interval=0.0001, async_mode="disabled")
                profiler.start()
                await timed(workload.call, contenders[who], inputs)
                profiler.stop()
                print(profiler.output_text(unicode=True, show_all=False, color=False))
            finally:
                await close_contenders(contenders)
        finally:
            await conn.close()
    finally:
        await drop_database(admin, name)
    return 0


async def set_synchronous_commit(
    conn: asyncpg.Connection, database: str, url: str, value: str | None
) -> str:
    """Set (or reset, with None) synchronous_commit for the bench database's new
    connections; return what a new connection then reports."""
    if value is None:
        await conn.execute(f'ALTER DATABASE "{database}" RESET synchronous_commit')
    else:
        await conn.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = {value}')
    fresh = await connect(url)
    try:
        shown: str = await fresh.fetchval("SHOW synchronous_commit")
    finally:
        await fresh.close()
    return shown


async def run_level(
    url: str,
    data: Data,
    conn: asyncpg.Connection,
    scale: Scale,
    rounds: int,
    concurrency: int,
    names: list[str],
    chosen: list[Workload],
) -> list[dict[str, Any]]:
    """Every chosen workload at one concurrency, on contenders opened for it."""
    results: list[dict[str, Any]] = []
    contenders = await build_contenders(url, concurrency, data, names)
    try:
        for workload in chosen:
            if workload.kind == "bulk" and concurrency > 1:
                continue
            wrounds = scale.bulk_rounds if workload.kind == "bulk" else rounds
            series = await run_workload(
                workload, contenders, data, conn, scale, concurrency, wrounds
            )
            rows = [s.summary() for s in series]
            print_series(workload, concurrency, rows)
            results.extend(rows)
    finally:
        await close_contenders(contenders)
    return results


async def main_async(args: argparse.Namespace) -> int:
    if args.profile:
        return await profile(args)
    scale = QUICK if args.quick else FULL
    rounds = args.rounds or scale.rounds
    wanted = set(args.only.split(",")) if args.only else None
    admin = admin_url()
    name = await create_database(admin, "bench")
    url = with_database(admin, name)
    report: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        conn = await connect(url)
        try:
            report["facts"] = await server_facts(conn)
            report["scale"] = scale.__dict__ | {"rounds": rounds, "quick": args.quick}
            started = time.perf_counter()
            data = Data(url=url)
            await seed(conn, data, scale)
            print(
                f"identity-store benchmark — PostgreSQL {report['facts']['postgresql']},"
                f" Python {report['facts']['python']}, {report['facts']['machine']},"
                f" load {report['facts']['load_average_at_start'][0]:.1f}"
            )
            print(
                f"data: {scale.users:,} users with a token each, {scale.events:,} events"
                f" (seeded in {time.perf_counter() - started:.1f}s)"
            )
            names = list(dict.fromkeys(SINGLE + BULK))
            contenders = await build_contenders(url, 1, data, names)
            try:
                same = await check_equivalence(url, data, contenders, conn)
            finally:
                await close_contenders(contenders)
            report["equivalence"] = same
            print("same results for the same inputs:", end=" ")
            print(", ".join(f"{k} {v}" for k, v in same.items()))
            if any(v != "same" for v in same.values()):
                print("contenders disagree: not timing anything", file=sys.stderr)
                return 1
            results: list[dict[str, Any]] = []
            for sync_off in (False, True):
                chosen = [
                    w
                    for w in WORKLOADS
                    if w.sync_off == sync_off and (not wanted or w.name in wanted)
                ]
                if not chosen:
                    continue
                if sync_off:
                    shown = await set_synchronous_commit(conn, name, url, "off")
                    report["synchronous_commit"] = shown
                    print(
                        f"\nsynchronous_commit = {shown} for the bench database (ALTER DATABASE"
                        " ... SET, new connections): commits do not wait for the disk, so"
                        " these measure the layers, not the disk"
                    )
                try:
                    for concurrency in (1, scale.pool):
                        results += await run_level(
                            url, data, conn, scale, rounds, concurrency, names, chosen
                        )
                finally:
                    if sync_off:
                        await set_synchronous_commit(conn, name, url, None)
            report["results"] = results
            replayed = await run_replay(data, conn, scale, rounds, wanted)
            report["replay"] = replayed
            print(
                "\nPython-side cost per call, the server's answers replayed"
                " (µs; extra = over hand-written):"
            )
            for row in replayed:
                print(
                    f"  {row['workload']:<20} {LABELS[row['contender']]:<34}"
                    f" {row['us_per_call']:>8.1f} µs  extra {row['extra_us']:>+7.1f} µs"
                )
        finally:
            await conn.close()
        export: list[dict[str, Any]] = []
        if not wanted or "export" in wanted:
            export = await run_export(admin, scale)
            print(
                f"\nexport of {scale.export_events:,} events (one pass each; peak by tracemalloc)"
            )
            for row in export:
                print(
                    f"  {row['label']:<48} {row['events_per_s']:>10,.0f} events/s"
                    f" {row['seconds']:>7.2f}s  peak {row['peak_mib']:>8.1f} MiB"
                )
            if len({(row["events"], row["id_sum"]) for row in export}) != 1 or not all(
                row["same_as_traced_run"] for row in export
            ):
                print("export contenders read different events", file=sys.stderr)
                report["equivalence"]["export"] = "DIFFERENT"
                return 1
            report["equivalence"]["export"] = "same"
        report["export"] = export
        report["targets"] = targets(results, export)
        report["facts"]["load_average_at_end"] = os.getloadavg()
        print("\ntargets (ratios at concurrency 1, median of per-round ratios):")
        for t in report["targets"]:
            mark = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
            value = "—" if t["value"] is None else f"{t['value']:.2f}"
            print(f"  {t['target']:<52} {value:>8}  goal {t['goal']:<5} {mark}")
        print(f"\nload average at end: {report['facts']['load_average_at_end'][0]:.1f}")
    finally:
        await drop_database(admin, name)
    if args.json:
        await asyncio.to_thread(
            Path(args.json).write_text, json.dumps(report, indent=1, default=str) + "\n"
        )
    if args.docs:
        from bench.docs import write_docs

        write_docs(report, ROOT / "docs")
    return 0


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds' smoke run")
    parser.add_argument("--json", metavar="FILE", help="write every number to FILE")
    parser.add_argument("--docs", action="store_true", help="rewrite docs/benchmarks.{md,png}")
    parser.add_argument("--only", metavar="A,B", help="run only these workloads (and export)")
    parser.add_argument("--rounds", type=int, help="measured rounds per workload")
    parser.add_argument(
        "--profile",
        metavar="CONTENDER:WORKLOAD",
        help="profile one contender on one workload with pyinstrument instead",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(main_async(parse(argv)))
