"""Run every contender on one workload and measure it the same way.

Per contender: did the tool succeed (or its error), how long it took, nodes and ORT kernels of
its result, ORT's fused ops by type, the max error against the original on the same inputs (and
whether that is within verify's tolerance), and the latency ratio result/original, both under
ORT, from interleaved runs in one process (median and 95% bootstrap interval).
"""

from __future__ import annotations

import json
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from bench.contenders import Contender
from bench.limits import MachineRates, count_work
from bench.workloads import Workload
from graphopt import inputs as input_gen
from graphopt.formats import onnx_format
from graphopt.measure import interleaved
from graphopt.optimize import load_feeds, prepare
from graphopt.search import session as ort_session
from graphopt.search.loop import runner
from graphopt.targets import OrtTarget
from graphopt.targets.onnxruntime import ab_sessions, paired_sessions
from graphopt.targets.ort_compat import clamp_ir_version
from graphopt.verify import compare

PROFILED = ("ort-all", "graphopt-search")


def workload_feeds(workload: Workload, model) -> dict[str, np.ndarray]:
    if workload.inputs:
        return load_feeds(workload.inputs, model)
    specs = input_gen.input_specs(model)
    return input_gen.generate(model, input_gen.bind_dims(specs))


def run_workload(workload: Workload, contenders: list[Contender], rates: MachineRates, budget_s: float, log=print) -> dict:
    original = onnx_format.load(workload.model)  # as exported: the baseline every tool is judged against
    feeds = workload_feeds(workload, prepare(onnx_format.copy(original), []))
    baseline = OrtTarget().compile(original)
    expected = baseline.run(feeds)
    names = [o.name for o in baseline.session.get_outputs()]
    work = count_work(onnx.load(str(workload.model)), feeds)
    record = {
        "workload": workload.name,
        "flops": work.flops,
        "bytes": work.bytes,
        "floor_ms": rates.floor_s(work) * 1e3,
        "baseline": {"nodes": len(list(original.graph.all_nodes())), "kernels": baseline.report.kernels, "fused": baseline.report.fused},
        "results": [],
        "op_time_ms": {},
    }
    with tempfile.TemporaryDirectory(prefix="graphopt-bench-") as tmp:
        for contender in contenders:
            log(f"  {workload.name}: {contender.name}")
            result = _run_contender(contender, workload, Path(tmp), feeds, expected, names, original, budget_s)
            record["results"].append(result)
            if contender.name in PROFILED and result.get("path"):
                settings = ort_session.read(result["path"]) or ort_session.SessionSettings()
                record["op_time_ms"][contender.name] = op_time_breakdown(Path(result["path"]), feeds, settings)
            result.pop("path", None)
    return record


def _run_contender(contender, workload, tmp: Path, feeds, expected, names, original, budget_s) -> dict:
    result = {"contender": contender.name, "level": contender.level}
    path = workload.model
    if contender.transform:
        path = tmp / f"{contender.name}.onnx"
        start = time.monotonic()
        try:
            contender.transform(workload.model, path, workload)
        except Exception as error:  # a tool that fails is a row in the table, not a crash
            result["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"
            result["trace"] = traceback.format_exc(limit=3)
            return result
        finally:
            result["tool_s"] = time.monotonic() - start
    if contender.transform and _same_bytes(path, workload.model):
        result["identical"] = True
    # A tool may recommend ORT session settings for its output (graphopt writes them beside it):
    # its result runs with them, the original with ORT's defaults, as a user would run each.
    settings = ort_session.read(path) if contender.transform else None
    if settings is not None:
        result["session"] = settings.label()
    target = settings.apply(OrtTarget()) if settings else OrtTarget(level=contender.level)
    try:
        model = onnx_format.load(path)
        compiled = target.compile(model)
        outputs = compiled.run(feeds)
    except Exception as error:
        result["error"] = f"result does not run: {str(error).splitlines()[0][:160]}"
        return result
    equivalence = compare(names, expected, outputs)
    result |= {
        "nodes": len(list(model.graph.all_nodes())),
        "kernels": compiled.report.kernels,
        "fused": compiled.report.fused,
        "max_abs_error": max(o.max_abs_error for o in equivalence.outputs),
        "equivalent": equivalence.ok,
        "path": str(path),
    }
    if settings is not None:
        a_sessions, b_sessions = paired_sessions((OrtTarget(), original), (target, model))
    elif contender.level == "all":
        a_sessions, b_sessions = ab_sessions(OrtTarget(), original, model)
    else:  # the original at ENABLE_ALL (A) and at the contender's level (B)
        a_sessions, b_sessions = paired_sessions((OrtTarget(), original), (target, original))
    timing = interleaved([runner(x, feeds) for x in a_sessions], [runner(x, feeds) for x in b_sessions], budget_s=budget_s)
    result |= {"ratio": timing.ratio, "ci95": [timing.ci_low, timing.ci_high], "latency_ms": timing.candidate_s * 1e3,
               "baseline_ms": timing.baseline_s * 1e3, "rounds": timing.rounds}  # fmt: skip
    return result


def _same_bytes(a: Path, b: Path) -> bool:
    a, b = Path(a), Path(b)
    return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()


def op_time_breakdown(path: Path, feeds, settings=None, runs: int = 20, warmup: int = 5) -> dict[str, float]:
    """Mean milliseconds per run spent in each op type, from ORT's own profiler (warm runs only)."""
    target = settings.apply(OrtTarget()) if settings else OrtTarget()
    options = target.session_options()
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = str(Path(tmp) / "profile")
        proto = clamp_ir_version(onnx.load(str(path)))
        session = ort.InferenceSession(
            proto.SerializeToString(), options, providers=["CPUExecutionProvider"],
            disabled_optimizers=list(target.disabled_optimizers) or None,
        )  # fmt: skip
        for _ in range(warmup + runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    run_starts = sorted(e["ts"] for e in events if e.get("name") == "model_run")
    measured_from = run_starts[warmup] if len(run_starts) > warmup else 0
    totals: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time") and event["ts"] >= measured_from:
            op = event["args"].get("op_name", "?")
            totals[op] = totals.get(op, 0.0) + event["dur"] / 1e3 / runs
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))
