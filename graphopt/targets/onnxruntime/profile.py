"""Where ORT's time goes, by operator type, from ORT's own profiler.

Two graphs profiled one after the other measure the machine's mood as much as the graphs (the
bench once showed an unchanged model 36% slower than itself that way), so the sessions given are
profiled together: their runs alternate, and each is split by op type over the same stretch of
time. The profiler's kernel times do not add up to the wall-clock latency (threads, gaps between
kernels, its own overhead); ``scaled`` rescales a breakdown to a latency measured without it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import onnx_ir as ir

from graphopt.targets.onnxruntime import OrtTarget


def op_times(sides: list[tuple[OrtTarget, ir.Model]], feeds, runs: int = 20, warmup: int = 5) -> list[dict[str, float]]:
    """Mean milliseconds per run spent in each op type, one breakdown per (target, model), with
    their runs interleaved; warm-up runs are left out."""
    with tempfile.TemporaryDirectory(prefix="graphopt-profile-") as scratch:
        sessions = [
            target.profiled_session(model, Path(scratch) / f"side{i}") for i, (target, model) in enumerate(sides)
        ]
        for _ in range(warmup + runs):
            for session in sessions:
                session.run(None, feeds)
        return [_breakdown(json.loads(Path(s.end_profiling()).read_text()), runs, warmup) for s in sessions]


def _breakdown(events: list[dict], runs: int, warmup: int) -> dict[str, float]:
    run_starts = sorted(e["ts"] for e in events if e.get("name") == "model_run")
    measured_from = run_starts[warmup] if len(run_starts) > warmup else 0
    totals: dict[str, float] = {}
    for event in events:
        if (
            event.get("cat") == "Node"
            and event.get("name", "").endswith("_kernel_time")
            and event["ts"] >= measured_from
        ):
            op = event["args"].get("op_name", "?")
            totals[op] = totals.get(op, 0.0) + event["dur"] / 1e3 / runs
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def scaled(breakdown: dict[str, float], latency_ms: float) -> dict[str, float]:
    """``breakdown`` in its own proportions, rescaled to add up to ``latency_ms``."""
    total = sum(breakdown.values())
    return {op: ms * latency_ms / total for op, ms in breakdown.items()} if total > 0 else {}
