"""`optimize --plot`: where the time goes, by operator type, in the input and the output.

The split by op type comes from the target's profiler (ORT's), with the input's and the output's
runs interleaved (see targets/onnxruntime/profile.py); each bar is rescaled to the median latency the
interleaved A/B timing measured, so bar lengths agree with the reported ratio. Beside it, the
fused kernels in the graph ORT runs for each. Needs matplotlib (the ``plot`` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from graphopt.core.errors import GraphoptError
from graphopt.core.protocols import Profiler

if TYPE_CHECKING:  # the result types of the ways in; reports do not import them
    from graphopt.api.files import OptimizeResult


def sides(result: OptimizeResult, target) -> list[tuple[str, object, object, float | None, dict]]:
    """(label, target, model, measured latency in ms, fused kernels) for each bar to draw."""
    base = result.baseline
    chosen = result.chosen
    latency = (chosen.final_timing.baseline_s * 1e3) if chosen else None
    rows = [("input", target, base.graph, latency, base.report.fused)]
    graph = chosen.candidate.graph if chosen else base.graph
    if chosen:
        rows.append(("output", target, graph, chosen.final_timing.candidate_s * 1e3, chosen.report.fused))
    if result.lever.report is not None:
        t = result.lever.timing
        rows.append(
            (
                f"output, {result.lever.lever.label()}",
                target.with_lever(result.lever.lever),
                graph,
                t.candidate_s * 1e3,
                result.lever.report.fused,
            )
        )
    return rows


def plot(result: OptimizeResult, path: str | Path, target, top: int = 8) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise GraphoptError("--plot needs matplotlib: pip install 'graphopt[plot]'") from None
    if not isinstance(target, Profiler):
        raise GraphoptError(f"--plot needs a target that can profile op times; {target.name} cannot")
    rows = sides(result, target)
    breakdowns = target.op_times([(t, g) for _, t, g, _, _ in rows], result.baseline.feeds[0])
    breakdowns = [_scaled(b, ms) if ms else b for b, (_, _, _, ms, _) in zip(breakdowns, rows)]
    fig, (bars, text) = plt.subplots(1, 2, figsize=(11, 1.1 * len(rows) + 2.2), gridspec_kw={"width_ratios": [3, 1.3]})
    _stacked_bars(bars, [r[0] for r in rows], breakdowns, top, plt.get_cmap("tab10"))
    measured = all(r[3] for r in rows)
    bars.set_xlabel(
        "ms per run: "
        + ("median of interleaved timing, split by ORT's profiler" if measured else "ORT profiler kernel time"),
        fontsize=8,
    )
    text.axis("off")
    lines = ["fused kernels ORT runs"] + [
        f"{label}: " + (", ".join(f"{k.split('::')[-1]} {n}" for k, n in sorted(f.items())) or "none")
        for label, _, _, _, f in rows
    ]
    text.text(0, 1, "\n\n".join(_wrap(line, 38) for line in lines), va="top", fontsize=7, family="monospace")
    fig.suptitle(f"{Path(result.model_path).name}: {result.reason[:110]}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _stacked_bars(ax, labels, breakdowns, top, colors) -> None:
    totals: dict[str, float] = {}
    for breakdown in breakdowns:
        for op, ms in breakdown.items():
            totals[op] = totals.get(op, 0.0) + ms
    keep = [op for op, _ in sorted(totals.items(), key=lambda kv: -kv[1])[:top]]
    for row, breakdown in enumerate(breakdowns):
        left = 0.0
        for k, op in enumerate([*keep, "other"]):
            ms = breakdown.get(op, 0.0) if op != "other" else sum(v for o, v in breakdown.items() if o not in keep)
            ax.barh(row, ms, left=left, color=colors(k % 10), label=op if row == 0 else None)
            left += ms
        ax.text(left, row, f" {left:.2f} ms", va="center", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.margins(x=0.15)
    ax.legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.25), frameon=False)


def _scaled(breakdown: dict[str, float], latency_ms: float) -> dict[str, float]:
    """``breakdown`` in its own proportions, rescaled to add up to ``latency_ms``."""
    total = sum(breakdown.values())
    return {op: ms * latency_ms / total for op, ms in breakdown.items()} if total > 0 else {}


def _wrap(line: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(line, width))
