"""PNG plots of the policy simulation: latency CDFs and model calls per policy."""

from __future__ import annotations

from pathlib import Path

from .simulate import MODEL_KINDS, POLICIES, Cell, Workload

__all__ = ["plot_all"]

_COLORS = {
    "direct": "#7f7f7f",
    "rust": "#d62728",
    "coalesce": "#1f77b4",
    "coalesce-idle": "#2ca02c",
}
_METADATA = {"Software": None}  # no version stamp, so re-running changes only what changed


def plot_all(cells: list[Cell], workloads: list[Workload], out: Path) -> list[Path]:
    """Write every plot to *out* and return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    by = {(c.workload, c.model, c.policy): c for c in cells}

    for workload in workloads:
        for model in MODEL_KINDS:
            fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
            for policy in POLICIES:
                cell = by[(workload.name, model, policy.name)]
                xs = list(cell.latencies)
                ys = [(i + 1) / len(xs) for i in range(len(xs))]
                ax.step(
                    xs,
                    ys,
                    where="post",
                    color=_COLORS[policy.name],
                    label=f"{policy.name} ({cell.calls} calls)",
                )
            ax.set_xscale("log")
            ax.set_xlabel("latency (s, log scale)")
            ax.set_ylabel("fraction of requests answered")
            ax.set_ylim(0, 1.02)
            ax.set_title(f"{workload.label}, {model} model")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(loc="lower right", fontsize="small")
            fig.tight_layout()
            path = out / f"cdf_{workload.name}_{model}.png"
            fig.savefig(path, metadata=_METADATA)
            plt.close(fig)
            written.append(path)

    fig, axes = plt.subplots(1, len(MODEL_KINDS), figsize=(10, 4.0), dpi=100, sharey=True)
    width = 0.8 / len(POLICIES)
    for ax, model in zip(axes, MODEL_KINDS, strict=True):
        for p, policy in enumerate(POLICIES):
            xs = [w + (p - (len(POLICIES) - 1) / 2) * width for w in range(len(workloads))]
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
