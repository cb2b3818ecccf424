"""Run every benchmark, print the tables, write ``benchmarks/results/``, check the targets.

Usage::

    python -m benchmarks [--seed N] [--sweep N] [--quick] [--no-plots] [--out DIR]

Exits 1 and names each failed target if any target is missed.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path

from .demux import (
    chunked_table,
    demux_table,
    hostile_table,
    measure_chunked,
    measure_demux,
    measure_hostile,
    measure_small,
    small_table,
)
from .importtime import TARGET_MS, importtime_table, measure_imports
from .memory import measure_memory
from .overhead import measure_overhead
from .report import table
from .simulate import Cell, Check, Workload, check_targets, run_all, workloads

OVERHEAD_TARGET = 0.8
OVERHEAD_STRETCH = 0.5
DEMUX_TARGET = 0.5
SMALL_REPLY_TARGET = 2.0
CHUNKED_TARGET = 2.0
HOSTILE_GOAL = 20.0

_RESULTS = Path(__file__).parent / "results"


def sim_table(cells: list[Cell]) -> str:
    rows = [
        (
            c.workload,
            c.model,
            c.policy,
            c.requests,
            c.calls,
            f"{c.p50:.2f}",
            f"{c.p95:.2f}",
            f"{c.prompt_chars:,}",
        )
        for c in cells
    ]
    header = ("workload", "model", "policy", "requests", "calls", "p50 s", "p95 s", "prompt chars")
    return table(header, rows)


def sweep_table(seeds: int, first: int) -> str:
    passed: dict[str, int] = defaultdict(int)
    order: list[str] = []
    for seed in range(first, first + seeds):
        for check in check_targets(run_all(seed)):
            if check.target not in passed:
                order.append(check.target)
            passed[check.target] += check.ok
    rows = [(target, f"{passed[target]}/{seeds}") for target in order if passed[target] < seeds]
    held = len(order) - len(rows)
    note = f"\n\nThe other {held} targets held on every random seed."
    if not rows:
        return f"Every one of the {held} targets held on every random seed."
    return table(("target", "random seeds passing"), rows) + note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--seed", type=int, default=0, help="random seed of the simulation")
    parser.add_argument(
        "--sweep", type=int, default=20, help="random seeds for the robustness table (0: skip)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, 10k pending")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--out", type=Path, default=_RESULTS, help="where results are written")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    checks: list[Check] = []
    sections: list[str] = []

    def section(title: str, body: str) -> None:
        print(f"\n{title}\n{'-' * len(title)}\n\n{body}\n", flush=True)
        sections.append(f"{title}\n{'-' * len(title)}\n\n{body}\n")

    # 1. Policy simulation.
    loads = workloads(args.seed)
    cells = run_all(args.seed)
    section(
        f"Policy simulation (virtual time, random seed {args.seed})",
        "Latency from request to answer; p50/p95 by nearest rank; prompt characters are\n"
        "system prompt plus messages, over every call the model received.\n\n" + sim_table(cells),
    )
    checks += check_targets(cells)

    if args.sweep:
        body = sweep_table(args.sweep, args.seed)
        section(
            f"Robustness: the simulation's targets over random seeds {args.seed}..."
            f"{args.seed + args.sweep - 1}",
            "Informational: how often each target holds when the Poisson arrivals are drawn\n"
            "again. Only the run above (one random seed) is checked.\n\n" + body,
        )

    # 3. CPU overhead.
    overhead = measure_overhead(repeat=7 if args.quick else 21)
    overhead_rows = [
        (row.batch, f"{row.direct_us:.1f}", f"{row.coalesced_us:.1f}", f"{row.added:+.2f}")
        for row in overhead
    ]
    section(
        "CPU overhead per request (ratios; process CPU time, best of several runs)",
        table(("batch", "direct us", "coalesced us", "added / direct call"), overhead_rows),
    )
    at10 = next(row for row in overhead if row.batch == 10)
    checks.append(
        Check(
            f"CPU: at batch 10 the coordinator adds <= {OVERHEAD_TARGET} of a direct call "
            f"(stretch {OVERHEAD_STRETCH})",
            f"adds {at10.added:.2f}" + (" (stretch met)" if at10.added <= OVERHEAD_STRETCH else ""),
            at10.added <= OVERHEAD_TARGET,
        )
    )

    # 4. Demux: throughput, small replies, chunked reading, hostile shapes.
    demux = measure_demux(repeat=3 if args.quick else 5)
    section("Demux throughput (ratio to a bare json.loads of the same text)", demux_table(demux))
    checks += [
        Check(
            f"demux: {row.size / 1e6:.0f} MB reply at >= {DEMUX_TARGET} of json.loads' throughput",
            f"{row.ratio:.2f}",
            row.ratio >= DEMUX_TARGET,
        )
        for row in demux
    ]
    small = measure_small(repeat=3 if args.quick else 5)
    section(
        "Demux of a ~1 KB well-formed reply (times json.loads of the same text)",
        "split_text decodes a well-formed reply once and routes it; the reader alone is what\n"
        "it would cost without that fast path; demux_reply also builds a result per task.\n\n"
        + small_table(small),
    )
    checks.append(
        Check(
            f"demux: a 1 KB well-formed reply costs <= {SMALL_REPLY_TARGET}x json.loads",
            f"{small.split:.2f}x",
            small.split <= SMALL_REPLY_TARGET,
        )
    )
    chunked = measure_chunked(repeat=3 if args.quick else 5)
    section("The reply reader on a 1 MB reply, whole and in chunks", chunked_table(chunked))
    at64 = next(row for row in chunked if row.chunk == 64)
    checks.append(
        Check(
            f"reader: a 1 MB reply in 64-character chunks costs <= {CHUNKED_TARGET}x whole",
            f"{at64.ratio:.2f}x",
            at64.ratio <= CHUNKED_TARGET,
        )
    )
    hostile = measure_hostile(repeat=2 if args.quick else 3)
    section(
        "Hostile replies (split_text; json.loads per character on the 1 MB reply as the unit)",
        hostile_table(hostile),
    )
    worst = max(hostile, key=lambda row: row.ratio)
    checks.append(
        Check(
            f"reader: hostile shapes cost <= {HOSTILE_GOAL:.0f}x json.loads per character (goal)",
            f"worst {worst.ratio:.0f}x ({worst.name})",
            worst.ratio <= HOSTILE_GOAL,
        )
    )

    # 5. Memory.
    memory = measure_memory(pending=10_000 if args.quick else 100_000)
    section(
        f"Memory with {memory.pending:,} requests pending (tracemalloc peak)",
        table(
            ("per pending request", "bytes"),
            [
                ("in all (caller's parked task included)", f"{memory.total_bytes:.0f}"),
                ("a caller parked without a coordinator", f"{memory.baseline_bytes:.0f}"),
                ("the difference", f"{memory.coordinator_bytes:.0f}"),
            ],
        ),
    )

    # 6. Import time.
    imports = measure_imports(repeat=3 if args.quick else 7)
    section(
        "Import time (fresh interpreter per import, best run)",
        importtime_table(imports),
    )
    by_module = {cost.module: cost.ms for cost in imports}
    extra = by_module["coalesce"] - by_module["mcp.types"]
    checks.append(
        Check(
            f"import: `import coalesce` costs <= {TARGET_MS:.0f} ms more than `import mcp.types`",
            f"{extra:+.0f} ms",
            extra <= TARGET_MS,
        )
    )

    # 7. Plots and the results file.
    if not args.no_plots:
        written = plot_all_safely(cells, loads, args.out)
        if written:
            print("plots: " + ", ".join(str(path) for path in written))
    failed = [check for check in checks if not check.ok]
    check_rows = [("PASS" if c.ok else "FAIL", c.target, c.measured) for c in checks]
    section("Targets", table(("", "target", "measured"), check_rows))
    write_results(args, sections)
    print(f"\n{len(checks) - len(failed)} of {len(checks)} targets met", end="")
    print(f" in {time.perf_counter() - started:.0f} s.")
    if failed:
        print("\nFAILED targets:", file=sys.stderr)
        for check in failed:
            print(f"  - {check.target}: {check.measured}", file=sys.stderr)
        return 1
    return 0


def plot_all_safely(cells: list[Cell], loads: list[Workload], out: Path) -> list[Path]:
    try:
        from .plots import plot_all
    except ImportError as exc:  # matplotlib is in the `bench` dependency group
        print(f"plots skipped ({exc}); install the `bench` dependency group", file=sys.stderr)
        return []
    return plot_all(cells, loads, out)


def write_results(args: argparse.Namespace, sections: list[str]) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    header = (
        ".. Written by `nox -s bench` (python -m benchmarks); do not edit by hand.\n\n"
        f"Python {platform.python_version()}, trio {version('trio')}, "
        f"pydantic {version('pydantic')}, mcp {version('mcp')}, "
        f"on {platform.machine()}.\n\n"
    )
    (args.out / "results.rst").write_text(header + "\n".join(sections))


if __name__ == "__main__":
    sys.exit(main())
