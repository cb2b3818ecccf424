"""PNG plots: the policy simulation's latency CDFs and model calls, and adaptive coalescing.

matplotlib (the ``bench`` dependency group) is imported when a plot is made,
so importing this module does not need it; making a plot without it raises
``ImportError``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from .adaptive import MODELS, AdaptiveRun
from .simulate import MODEL_KINDS, POLICIES, STREAMED, Cell, Workload

__all__ = ["plot_adaptive", "plot_all"]

_COLORS = {
    "direct": "#7f7f7f",
    "rust": "#d62728",
    "coalesce": "#1f77b4",
    "coalesce-idle": "#2ca02c",
    "coalesce+stream": "#1f77b4",
    "coalesce-idle+stream": "#2ca02c",
    "never": "#d62728",
    "always": "#2ca02c",
    "fails first 3": "#1f77b4",
}
_METADATA = {"Software": None}  # no version stamp, so re-running changes only what changed


_WIDE = {"coalesce", "coalesce+stream"}
_SECONDS = (1, 2, 3, 4, 5, 7, 10, 20, 30, 40, 70, 100, 200)
"""Where the latency axes are labelled."""


def _pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg")
    # import_module keeps this typed whether or not matplotlib (only in the
    # bench group) is installed where mypy runs.
    return importlib.import_module("matplotlib.pyplot")


def plot_all(cells: list[Cell], workloads: list[Workload], out: Path) -> list[Path]:
    """Write the simulation's plots to *out* and return their paths."""
    plt = _pyplot()
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    by = {(c.workload, c.model, c.policy): c for c in cells}

    for workload in workloads:
        for model in MODEL_KINDS:
            fig, ax = plt.subplots(figsize=(8.4, 4.0), dpi=100)
            for policy in POLICIES:
                cell = by[(workload.name, model, policy.name)]
                xs = list(cell.latencies)
                ys = [(i + 1) / len(xs) for i in range(len(xs))]
                ax.step(
                    xs,
                    ys,
                    where="post",
                    color=_COLORS[policy.name],
                    linestyle="--" if policy.stream else "-",
                    # coalesce wide beneath coalesce-idle: where they coincide both show.
                    linewidth=3.5 if policy.name in _WIDE else 1.5,
                    label=f"{policy.name} ({cell.calls} calls)",
                )
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(FixedLocator(_SECONDS))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("latency (s, log scale)")
            ax.set_ylabel("fraction of requests answered")
            ax.set_ylim(0, 1.02)
            ax.set_title(f"{workload.label}, {model} model")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
            fig.tight_layout()
            path = out / f"cdf_{workload.name}_{model}.png"
            fig.savefig(path, metadata=_METADATA)
            plt.close(fig)
            written.append(path)

    # Streaming changes when callers are answered, never how many calls are made.
    policies = [policy for policy in POLICIES if policy.name not in STREAMED]
    fig, axes = plt.subplots(1, len(MODEL_KINDS), figsize=(10, 4.0), dpi=100, sharey=True)
    width = 0.8 / len(policies)
    for ax, model in zip(axes, MODEL_KINDS, strict=True):
        for p, policy in enumerate(policies):
            xs = [w + (p - (len(policies) - 1) / 2) * width for w in range(len(workloads))]
            calls = [by[(w.name, model, policy.name)].calls for w in workloads]
            bars = ax.bar(xs, calls, width, color=_COLORS[policy.name], label=policy.name)
            ax.bar_label(bars, fontsize="x-small")
        ax.set_xticks(range(len(workloads)), [w.name for w in workloads])
        ax.set_title(f"model calls, {model} model")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("model calls")
    axes[-1].legend(fontsize="small")
    fig.tight_layout()
    path = out / "model_calls.png"
    fig.savefig(path, metadata=_METADATA)
    plt.close(fig)
    written.append(path)
    return written


def plot_adaptive(runs: list[AdaptiveRun], out: Path) -> Path:
    """Plot each burst's batch size and calls, per model; write ``adaptive.png``, return its path.

    One panel per model. The line is the largest call of each burst with
    adaptive coalescing on (1: the whole burst went alone); the bars are the
    model calls the burst cost with it on, the dashed line those with it off.
    """
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(MODELS), 1, figsize=(7.0, 7.5), dpi=100, sharex=True)
    for ax, name in zip(axes, MODELS, strict=True):
        on = next(run for run in runs if run.model == name and run.adaptive)
        off = next(run for run in runs if run.model == name and not run.adaptive)
        xs = list(range(1, len(on.bursts) + 1))
        ax.bar(
            xs,
            [burst.calls for burst in on.bursts],
            width=0.7,
            color="#cccccc",
            label="model calls, adaptive on",
        )
        ax.step(
            xs,
            [burst.calls for burst in off.bursts],
            where="mid",
            color="#7f7f7f",
            linestyle="--",
            label="model calls, adaptive off",
        )
        ax.plot(
            xs,
            [burst.largest for burst in on.bursts],
            color=_COLORS[name],
            marker="o",
            markersize=3,
            drawstyle="steps-mid",
            label="batch size, adaptive on",
        )
        ax.set_title(
            f"follows the format: {name}. {on.calls()} calls adaptive, "
            f"{off.calls()} without ({len(on.bursts) * 10} requests)",
            fontsize="medium",
        )
        ax.set_ylim(0, 12)
        ax.set_yticks([0, 2, 4, 6, 8, 10])
        ax.grid(True, alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize="small", frameon=False)
    axes[-1].set_xlabel("burst of 10 requests (max_batch 10)")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path = out / "adaptive.png"
    fig.savefig(path, metadata=_METADATA)
    plt.close(fig)
    return path
