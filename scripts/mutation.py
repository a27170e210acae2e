"""Mutation testing of the persistence and domain modules (``make mutation``).

    python scripts/mutation.py run [MODULE ...] [--again | --sample N [--seed S]]
    python scripts/mutation.py report
    python scripts/mutation.py run|report --plugin ...   (build, render, types of sqlc-gen-asyncpg)

``run`` tests the mutants of each MODULE (short names: validation, _errors, token_repo,
event_repo, user_repo, unit_of_work; default: all six) with mutmut, one module at a time.
Results accumulate in ``mutants/`` (git-ignored): a run tests the mutants with no result
yet (new, or in a function that changed since) and the survivors again (tests may have
been added since); a killed mutant stays killed, as tests are only ever added or made
stricter. ``--again`` tests every mutant afresh; ``--sample N`` tests N mutants per
module drawn with ``--seed`` (default 12), for a quick estimate.

``report`` prints, per module, killed / survived / timeout / untested and the score, with
the survivors by name (``mutmut show NAME`` prints one's diff). The mutants listed in
``mutation/equivalent.md`` (they cannot change behaviour; the file says why) are left
out of the score. Score = (killed + timeout) / (checked - equivalent).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MUTMUT = str(Path(sys.executable).parent / "mutmut")
ROOT = REPO
PACKAGE = "src/identity_store"
DOTTED = "identity_store."
MODULES = {
    "validation": "domain/validation.py",
    "_errors": "infrastructure/_errors.py",
    "token_repo": "infrastructure/persistence/token_repo.py",
    "event_repo": "infrastructure/persistence/event_repo.py",
    "user_repo": "infrastructure/persistence/user_repo.py",
    "unit_of_work": "infrastructure/persistence/unit_of_work.py",
}
# The plugin's tests run it in process (tests/codegen_support.py: plugin_in_process), so
# its mutants are live in every test, sqlc's runs included.
PLUGIN_MODULES = {"build": "build.py", "render": "render.py", "types": "types.py"}
EQUIVALENT = REPO / "mutation" / "equivalent.md"
KILLED = {1, 3, -24, 24, 36, 152, 255}  # a failing test, or a timeout (the mutant hung)
TIMEOUT = {-24, 24, 36, 152, 255}


def dotted(module: str) -> str:
    return DOTTED + MODULES[module].removesuffix(".py").replace("/", ".")


def meta(module: str) -> dict[str, int | None]:
    path = ROOT / "mutants" / PACKAGE / (MODULES[module] + ".meta")
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return dict(data["exit_code_by_key"])


def equivalent() -> set[str]:
    if not EQUIVALENT.exists():
        return set()
    return set(re.findall(r"^- `([^`]+)`", EQUIVALENT.read_text(), flags=re.M))


def generate() -> None:
    """Write mutants/ (all modules) without running any test."""
    code = (
        "import os; os.makedirs('mutants', exist_ok=True)\n"
        "from mutmut.__main__ import copy_src_dir, copy_also_copy_files, create_mutants\n"
        "copy_src_dir(); copy_also_copy_files(); create_mutants(2)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)  # noqa: S603


def forget_stale_test_map() -> None:
    """Delete mutmut's map of which tests reach which function when a mutated module
    changed since it was made: mutmut extends the map for new tests only, so a new or
    changed function would be tested by too few tests and survive falsely."""
    stats = ROOT / "mutants" / "mutmut-stats.json"
    if stats.exists() and any(
        (ROOT / PACKAGE / path).stat().st_mtime > stats.stat().st_mtime for path in MODULES.values()
    ):
        stats.unlink()


def run(modules: list[str], sample: int | None, seed: int, *, again: bool = False) -> int:
    forget_stale_test_map()
    generate()  # new mutants for changed functions; unchanged ones keep their result
    names: list[str] = []
    for module in modules:
        codes = meta(module)
        if sample is not None:
            everything = sorted(codes)
            chosen = sorted(random.Random(seed).sample(everything, min(sample, len(everything))))  # noqa: S311
        elif again:
            chosen = [dotted(module) + ".*"]
        else:
            skip = equivalent()
            chosen = sorted(k for k, v in codes.items() if k not in skip and v not in KILLED)
        print(f"== {module}: {len(codes) if again else len(chosen)} mutants to test", flush=True)
        names += chosen
    status = 0
    if names:
        # One mutmut run for all modules: one test run to map tests to functions, and
        # the cheapest mutants of every module first.
        status = subprocess.run(  # noqa: S603 - our own mutmut, our arguments
            [MUTMUT, "run", "--max-children", os.environ.get("MUTATION_JOBS", "1"), *names],
            cwd=ROOT,
            check=False,
            stdout=subprocess.DEVNULL if sample is not None else None,
        ).returncode
    below = report(modules)
    if sample is None and below:
        print(f"mutation score below {THRESHOLD}% in: {', '.join(below)}")
        return status or 1
    return status


THRESHOLD = 90.0


def report(modules: list[str]) -> list[str]:
    """Print the table and the survivors; return the modules scoring below THRESHOLD."""
    below: list[str] = []
    skip = equivalent()
    out = [
        "| module | mutants | checked | killed | timeout | survived | equivalent | score |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    survivors: list[str] = []
    for module in modules:
        codes = meta(module)
        checked = {k: v for k, v in codes.items() if v is not None and v not in (33, 5, 34)}
        counts = Counter(
            "equivalent"
            if k in skip
            else "timeout"
            if v in TIMEOUT
            else "killed"
            if v in KILLED
            else "survived"
            for k, v in checked.items()
        )
        scored = len(checked) - counts["equivalent"]
        caught = counts["killed"] + counts["timeout"]
        score = f"{100 * caught / scored:.1f}%" if scored else "-"
        if scored and 100 * caught / scored < THRESHOLD:
            below.append(module)
        out.append(
            f"| {module} | {len(codes)} | {len(checked)} | {counts['killed']} | "
            f"{counts['timeout']} | {counts['survived']} | {counts['equivalent']} | {score} |"
        )
        survivors += sorted(k for k, v in checked.items() if k not in skip and v not in KILLED)
    print("\n".join(out))
    if survivors:
        print("\nsurvivors (mutmut show NAME):")
        print("\n".join(f"  {name}" for name in survivors))
    return below


def use_plugin() -> None:
    """Switch to the plugin's distribution (its own pyproject.toml and tests)."""
    global ROOT, PACKAGE, DOTTED, MODULES
    ROOT = REPO / "sqlc-gen-asyncpg"
    PACKAGE = "src/sqlc_gen_asyncpg"
    DOTTED = "sqlc_gen_asyncpg."
    MODULES = dict(PLUGIN_MODULES)


def main() -> int:
    if "--plugin" in sys.argv:
        sys.argv.remove("--plugin")
        use_plugin()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("modules", nargs="*", default=list(MODULES))
    run_parser.add_argument("--sample", type=int)
    run_parser.add_argument("--seed", type=int, default=12)
    run_parser.add_argument("--again", action="store_true", help="test every mutant afresh")
    report_parser = sub.add_parser("report")
    report_parser.add_argument("modules", nargs="*", default=list(MODULES))
    args = parser.parse_args()
    unknown = set(args.modules) - set(MODULES)
    if unknown:
        parser.error(f"unknown modules {sorted(unknown)}; choose from {sorted(MODULES)}")
    if args.command == "report":
        report(args.modules)
        return 0
    return run(args.modules or list(MODULES), args.sample, args.seed, again=args.again)


if __name__ == "__main__":
    sys.exit(main())
