"""Write a run's numbers into docs/benchmarks.md (between markers) and docs/benchmarks.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.workloads import BULK_LABELS, LABELS, WORKLOADS

START = "<!-- results:start (written by `python -m bench --docs`) -->"
END = "<!-- results:end -->"
COLUMNS = ("baseline", "generated", "repository", "sqla_core", "sqla_orm")
BULK_COLUMNS = ("baseline", "executemany", "generated", "repository", "sqla_orm")


def _machine(load: float) -> str:
    """How busy the machine was, from the load average at the start (issue 21: quiet is
    at most 0.5)."""
    return "quiet" if load <= 0.5 else "shared with other work"


def _find(report: dict[str, Any], workload: str, contender: str, level: int) -> Any:
    for row in report["results"]:
        if (row["workload"], row["contender"], row["concurrency"]) == (workload, contender, level):
            return row
    return None


def _levels(report: dict[str, Any]) -> list[int]:
    return sorted({row["concurrency"] for row in report["results"]})


def results_markdown(report: dict[str, Any]) -> str:
    facts = report["facts"]
    scale = report["scale"]
    lines = [
        START,
        "",
        f"Run of {report['date']} (`python -m bench{' --quick' if scale['quick'] else ''}`):"
        f" PostgreSQL {facts['postgresql']} (embedded server, TCP on 127.0.0.1),"
        f" Python {facts['python']}, asyncpg {facts['asyncpg']}, pydantic {facts['pydantic']},"
        f" SQLAlchemy {facts['sqlalchemy']}; {facts['cpu']}, {facts['machine']}."
        f" Load average {facts['load_average_at_start'][0]:.1f} at the start and"
        f" {facts['load_average_at_end'][0]:.1f} at the end"
        f" ({_machine(facts['load_average_at_start'][0])}).",
        "",
        f"Data: {scale['users']:,} users with a live token each, {scale['events']:,} events."
        f" Single-row workloads: {scale['rounds']} measured rounds after a warm-up round,"
        f" {scale.get('read_ops', scale['ops']):,} reads or {scale['ops']} writes per"
        f" contender per round on one connection and twice as many spread over"
        f" {scale['pool']} workers on a pool of"
        f" {scale['pool']};"
        f" bulk: {scale['bulk_rounds']} rounds of {scale['bulk_rows']:,} rows."
        " The contenders take turns within every round, the starting one rotating.",
        "",
        "Ratio = the contender's ops/s over hand-written asyncpg's in the same round, median"
        " over the rounds (above 1 is faster than hand-written).",
        "",
    ]
    for level in _levels(report):
        lines += [
            f"### Ratios to hand-written asyncpg + pydantic, concurrency {level}",
            "",
            "| workload | " + " | ".join(LABELS[c] for c in COLUMNS) + " |",
            "| --- |" + " ---: |" * len(COLUMNS),
        ]
        for workload in WORKLOADS:
            if workload.kind == "bulk":
                continue
            cells = []
            for contender in COLUMNS:
                row = _find(report, workload.name, contender, level)
                cells.append("—" if row is None or row["ratio"] is None else f"{row['ratio']:.2f}")
            lines.append(f"| {workload.title} | " + " | ".join(cells) + " |")
        lines.append("")
    for bulk in (w for w in WORKLOADS if w.kind == "bulk"):
        lines += [
            f"### {bulk.title.capitalize()} (one connection)",
            "",
            "| contender | rows/s | ms per call (p50) | ratio to raw COPY |",
            "| --- | ---: | ---: | ---: |",
        ]
        for contender in BULK_COLUMNS:
            row = _find(report, bulk.name, contender, 1)
            if row is not None:
                lines.append(
                    f"| {BULK_LABELS[contender]} | {row['ops_per_s']:,.0f} |"
                    f" {row['p50_us'] / 1000:,.0f} | {row['ratio']:.2f} |"
                )
        lines.append("")
    if report.get("export"):
        lines += [
            f"### Export of {report['export'][0]['events']:,} events",
            "",
            "| how | events/s | seconds | peak Python memory (tracemalloc) |",
            "| --- | ---: | ---: | ---: |",
        ]
        for row in report["export"]:
            lines.append(
                f"| {row['label']} | {row['events_per_s']:,.0f} | {row['seconds']:.1f} |"
                f" {row['peak_mib']:,.1f} MiB |"
            )
        lines.append("")
    if report.get("replay"):
        lines += [
            "### Python-side cost per call (the server's answers replayed)",
            "",
            "Each layer run against an executor that answers every statement with the"
            " server's first answer, instantly: what is left is the layer's own Python"
            " (arguments, checks, error translation, building models), in CPU µs per"
            " call, best round. This hardly moves with the machine's load, unlike the"
            " ratios above.",
            "",
            "| workload | "
            + " | ".join(LABELS[c] for c in ("baseline", "generated", "repository"))
            + " | repositories minus hand-written |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        by_workload: dict[str, dict[str, float]] = {}
        for row in report["replay"]:
            by_workload.setdefault(row["workload"], {})[row["contender"]] = row["us_per_call"]
        for name, cost in by_workload.items():
            lines.append(
                f"| {name} | {cost['baseline']:,.1f} | {cost['generated']:,.1f} |"
                f" {cost['repository']:,.1f} | {cost['repository'] - cost['baseline']:+,.1f} |"
            )
        lines.append("")
    lines += ["### Targets", "", "| target | measured | goal | |", "| --- | ---: | ---: | --- |"]
    for t in report["targets"]:
        value = "—" if t["value"] is None else f"{t['value']:.2f}"
        goal = f"< {t['goal']}" if "MiB" in t["target"] else f"≥ {t['goal']}"
        mark = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {value} | {goal} | {mark} |")
    lines.append("")
    for level in _levels(report):
        lines += [
            f"### Every number, concurrency {level}",
            "",
            "| workload | contender | ops/s | p50 µs | p99 µs | ratio | client CPU µs/op"
            " | ops/s per round |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for workload in WORKLOADS:
            labels = BULK_LABELS if workload.kind == "bulk" else LABELS
            for row in report["results"]:
                if row["workload"] != workload.name or row["concurrency"] != level:
                    continue
                per_round = ", ".join(f"{r:,.0f}" for r in row["round_ops_per_s"])
                lines.append(
                    f"| {workload.name} | {labels[row['contender']]} | {row['ops_per_s']:,.0f} |"
                    f" {row['p50_us']:,.0f} | {row['p99_us']:,.0f} | {row['ratio']:.2f} |"
                    f" {row['cpu_us_per_op']:,.0f} | {per_round} |"
                )
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def write_chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = _levels(report)
    names = list(WORKLOADS)
    fig, axes = plt.subplots(1, len(levels), figsize=(7 * len(levels), 8), sharey=True)
    if len(levels) == 1:
        axes = [axes]
    width = 0.8 / len(COLUMNS)
    for ax, level in zip(axes, levels, strict=True):
        for index, contender in enumerate(COLUMNS):
            ys, xs = [], []
            for position, workload in enumerate(names):
                row = _find(report, workload.name, contender, level)
                if row is not None and row["ratio"] is not None:
                    ys.append(position + index * width)
                    xs.append(row["ratio"])
            ax.barh(ys, xs, height=width, label=LABELS[contender])
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_title(f"concurrency {level}")
        ax.set_xlabel("ops/s ratio to hand-written asyncpg + pydantic (higher is faster)")
        ax.set_yticks([p + 0.4 - width / 2 for p in range(len(names))])
        ax.set_yticklabels(
            [(f"{w.title} vs raw COPY" if w.kind == "bulk" else w.title) for w in names]
        )
        ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()  # the axes share y: invert once
    axes[0].legend(loc="lower right", fontsize="small")
    fig.suptitle(
        f"identity-store benchmark, PostgreSQL {report['facts']['postgresql']}, {report['date']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


HEAD_START = "<!-- headline:start -->"
HEAD_END = "<!-- headline:end -->"
HEADLINE = (
    "get_user",
    "get_user_by_email",
    "register",
    "update_user",
    "verify_token",
    "append_event",
)


def headline_markdown(report: dict[str, Any]) -> str:
    """The few ratios the README quotes, from a run's report."""
    lines = [
        HEAD_START,
        "| workload | generated | repositories | SQLAlchemy Core | SQLAlchemy ORM |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    titles = {w.name: w.title for w in WORKLOADS}
    for name in HEADLINE:
        cells = []
        for contender in ("generated", "repository", "sqla_core", "sqla_orm"):
            row = _find(report, name, contender, 1)
            cells.append("—" if row is None or row["ratio"] is None else f"{row['ratio']:.2f}")
        lines.append(f"| {titles[name]} | " + " | ".join(cells) + " |")
    bulk = {c: _find(report, "append_bulk", c, 1) for c in BULK_COLUMNS}
    if bulk["repository"] and bulk["executemany"]:
        ours = bulk["repository"]["ops_per_s"]
        lines += [
            "",
            f"Appending {report['scale']['bulk_rows']:,} events with `append_many`:"
            f" {bulk['repository']['ratio']:.2f}x the"
            f" speed of a raw COPY of the same rows, {ours / bulk['executemany']['ops_per_s']:.1f}x"
            " asyncpg's `executemany`"
            + (
                f", {ours / bulk['sqla_orm']['ops_per_s']:.1f}x SQLAlchemy's bulk insert."
                if bulk["sqla_orm"]
                else "."
            ),
        ]
    e2e = {c: _find(report, "append_bulk_e2e", c, 1) for c in ("repository", "executemany")}
    if e2e["repository"] and e2e["executemany"]:
        many = e2e["repository"]["ops_per_s"] / e2e["executemany"]["ops_per_s"]
        lines.append(
            "The same with the caller building each `NewEvent` from plain values as it is"
            f" sent: {e2e['repository']['ratio']:.2f}x the speed of a raw COPY of tuples,"
            f" {many:.1f}x asyncpg's `executemany`."
        )
    for row in report.get("export", []):
        if row["contender"] == "repository":
            lines.append(
                f"Exporting {row['events']:,} events through `read_stream` peaks at"
                f" {row['peak_mib']:.1f} MiB of Python memory"
                + "".join(
                    f" (fetching them all at once: {other['peak_mib']:,.0f} MiB)"
                    for other in report["export"]
                    if other["contender"] == "fetch_all"
                )
                + "."
            )
    load = report["facts"]["load_average_at_start"][0]
    lines += [
        "",
        f"Run of {report['date'][:10]} on a 2-CPU machine, {_machine(load)} (load average"
        f" {load:.1f} at the start): single ratios move by"
        " several per cent from run to run; see the per-round numbers and the load-free"
        " Python cost per call in the docs.",
        HEAD_END,
    ]
    return "\n".join(lines)


def write_docs(report: dict[str, Any], docs: Path) -> None:
    page = docs / "benchmarks.md"
    text = page.read_text() if page.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    page.write_text(before + results_markdown(report) + after)
    write_chart(report, docs / "benchmarks.png")
    readme = docs.parent / "README.md"
    if readme.exists() and HEAD_START in (text := readme.read_text()):
        before, _, rest = text.partition(HEAD_START)
        _, _, after = rest.partition(HEAD_END)
        readme.write_text(before + headline_markdown(report) + after)


if __name__ == "__main__":
    import json
    import sys

    # python -m bench.docs FILE: rewrite the docs from a run saved with --json FILE.
    write_docs(json.loads(Path(sys.argv[1]).read_text()), Path(__file__).parent.parent / "docs")
