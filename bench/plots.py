"""Pictures of a bench run: a speedup heat map, and where each workload's time goes by op type."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def speedup_heatmap(run: dict, path: Path) -> None:
    records = run["workloads"]
    contenders = [r["contender"] for r in records[0]["results"]]
    grid = np.full((len(records), len(contenders)), np.nan)
    for i, record in enumerate(records):
        for j, r in enumerate(record["results"]):
            if "ratio" in r and r["equivalent"]:
                grid[i, j] = 1 / r["ratio"]
    fig, ax = plt.subplots(figsize=(1.0 * len(contenders) + 5, 0.42 * len(records) + 2.5), layout="constrained")
    spread = max(0.05, np.nanmax(np.abs(np.log2(grid)))) if np.isfinite(grid).any() else 0.1
    image = ax.imshow(np.log2(grid), cmap="RdYlGn", vmin=-spread, vmax=spread, aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            text = "fail" if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(contenders)), contenders, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(records)), [r["workload"] for r in records], fontsize=8)
    ax.set_title(
        "speedup over ORT ENABLE_ALL on the original\n(green: faster; fail: error or wrong outputs)",
        fontsize=9,
        wrap=True,
    )
    fig.colorbar(image, ax=ax, label="log2 speedup", shrink=0.9, pad=0.02)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def op_time_bars(run: dict, path: Path, top: int = 8) -> None:
    records = [r for r in run["workloads"] if len(r.get("op_time_ms", {})) == 2]
    if not records:
        return
    ops = {}
    for record in records:
        for breakdown in record["op_time_ms"].values():
            for op, ms in breakdown.items():
                ops[op] = ops.get(op, 0.0) + ms
    keep = [op for op, _ in sorted(ops.items(), key=lambda kv: -kv[1])[:top]]
    fig, axes = plt.subplots(
        len(records), 1, figsize=(9, 1.3 * len(records) + 1.6), squeeze=False, layout="constrained"
    )
    colors = plt.get_cmap("tab10")
    for ax, record in zip(axes[:, 0], records):
        for row, (_label, breakdown) in enumerate(record["op_time_ms"].items()):
            left = 0.0
            for k, op in enumerate(keep + ["other"]):
                ms = breakdown.get(op, 0.0) if op != "other" else sum(v for o, v in breakdown.items() if o not in keep)
                ax.barh(row, ms, left=left, color=colors(k % 10), label=op if row == 0 else None)
                left += ms
        ax.set_yticks([0, 1], list(record["op_time_ms"]), fontsize=7)
        ax.set_title(record["workload"], fontsize=8, loc="left")
        ax.tick_params(axis="x", labelsize=7)
    fig.legend(
        *axes[0, 0].get_legend_handles_labels(),
        fontsize=7,
        ncol=len(keep) + 1,
        loc="outside lower center",
        frameon=False,
    )
    axes[-1, 0].set_xlabel(
        "ms per run: median latency of the interleaved A/B timing, split by ORT's profiler", fontsize=8
    )
    fig.savefig(path, dpi=120)
    plt.close(fig)
