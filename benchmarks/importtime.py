"""How long ``import coalesce`` takes, against the MCP types it is built on.

Each import runs in a fresh interpreter (``python -c "import X"``), timed from
inside around the import statement alone, best of several runs; the table
also counts the modules each import leaves loaded. The target: ``import
coalesce`` costs at most 50 ms more than ``import mcp.types``.

Run it on its own with ``python -m benchmarks.importtime``; ``python -m
benchmarks`` includes it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import attrs

from .report import table

__all__ = ["IMPORTS", "TARGET_MS", "ImportCost", "importtime_table", "measure_imports"]

IMPORTS = ("mcp_types", "mcp.types", "coalesce", "coalesce.mcp")
"""What is timed: the wire types alone, the SDK's types, coalesce, and its MCP integration."""

TARGET_MS = 50.0
"""``import coalesce`` may cost at most this much more than ``import mcp.types``."""

_PROBE = """\
import sys, time
started = time.perf_counter()
import {module}
print(time.perf_counter() - started, len(sys.modules))
"""


@attrs.frozen
class ImportCost:
    """What importing one module costs in a fresh interpreter."""

    module: str
    """The module imported."""
    ms: float
    """Milliseconds the import statement took (best run)."""
    modules: int
    """Modules loaded after it (the interpreter's own included)."""


def measure_imports(repeat: int = 5, imports: tuple[str, ...] = IMPORTS) -> list[ImportCost]:
    """Time each of *imports* in *repeat* fresh interpreters; keep each one's best run."""
    costs = []
    for module in imports:
        runs = []
        for _ in range(repeat):
            out = subprocess.run(
                [sys.executable, "-c", _PROBE.format(module=module)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            runs.append((float(out[0]) * 1000, int(out[1])))
        best = min(runs)
        costs.append(ImportCost(module, best[0], best[1]))
    return costs


def importtime_table(costs: list[ImportCost]) -> str:
    """Return the costs as a table, with each one's difference from ``import mcp.types``."""
    base = next((cost.ms for cost in costs if cost.module == "mcp.types"), None)
    rows = [
        (
            f"import {cost.module}",
            f"{cost.ms:.0f}",
            "-" if base is None else f"{cost.ms - base:+.0f}",
            cost.modules,
        )
        for cost in costs
    ]
    return table(("statement", "ms", "vs mcp.types ms", "modules loaded"), rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.importtime", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="fresh interpreters per import")
    args = parser.parse_args(argv)
    costs = measure_imports(args.repeat)
    print(importtime_table(costs))
    by = {cost.module: cost.ms for cost in costs}
    extra = by["coalesce"] - by["mcp.types"]
    met = extra <= TARGET_MS
    print(f"\nimport coalesce costs {extra:+.0f} ms against import mcp.types", end="")
    print(f" (target <= {TARGET_MS:+.0f} ms): {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
