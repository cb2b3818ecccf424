"""The ``coalesce`` command (``python -m coalesce``): for now, ``coalesce demo``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["main"]

DEMO_HELP = """\
Run a real MCP round trip twice, without and with coalescing: an in-process
server's tool asks its client for one sampling per task, all at once, and the
client answers with a scripted model that takes real time. Prints a progress
bar for each run, a table of tasks, model calls and wall time, and a few
tasks beside their own answers.
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the command's argument parser."""
    parser = argparse.ArgumentParser(
        prog="coalesce",
        description="Coalesce concurrent MCP sampling requests into one LLM call.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="show what coalescing saves, over a real MCP round trip",
        description=DEMO_HELP,
    )
    demo.add_argument(
        "--tasks",
        type=_positive_int,
        default=20,
        help="sampling requests the tool sends at once (default: %(default)s)",
    )
    demo.add_argument(
        "--window",
        type=_seconds,
        default=0.1,
        help="seconds a batch may gather after its first request arrives (default: %(default)s)",
    )
    demo.add_argument(
        "--max-batch",
        type=_positive_int,
        default=10,
        help="most requests that share one model call (default: %(default)s)",
    )
    demo.add_argument(
        "--model-slots",
        type=int,
        default=4,
        help="calls the model serves at once, as a rate-limited API or a local model "
        "does; 0 for no limit (default: %(default)s)",
    )
    demo.add_argument(
        "--latency",
        type=_seconds,
        default=0.5,
        help="seconds every model call takes (default: %(default)s)",
    )
    demo.add_argument(
        "--latency-per-task",
        type=_seconds,
        default=0.05,
        help="seconds a model call takes per task it carries (default: %(default)s)",
    )
    demo.add_argument(
        "--backend",
        choices=["trio", "asyncio"],
        default="trio",
        help="the event loop to run on (default: %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``coalesce`` command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        # The demo runs an MCP server and client: import them only to run it.
        from ._demo import demo  # noqa: PLC0415

        return demo(
            tasks=args.tasks,
            window=args.window,
            max_batch=args.max_batch,
            model_slots=args.model_slots,
            latency=args.latency,
            latency_per_task=args.latency_per_task,
            backend=args.backend,
        )
    parser.print_help()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
