"""Run every contender on one workload and measure it the same way.

Per contender: did the tool succeed (or its error), how long it took, nodes and ORT kernels of
its result, ORT's fused ops by type, the max error against the original on the same inputs (and
whether that is within verify's tolerance), and the latency ratio result/original, both under
ORT, from interleaved runs in one process (median and 95% bootstrap interval).
"""

from __future__ import annotations

import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import onnx

from bench.contenders import Contender
from bench.limits import MachineRates, count_work
from bench.workloads import Workload
from graphopt.core import harness
from graphopt.core.harness import runner
from graphopt.core.measure import interleaved
from graphopt.core.verify import compare
from graphopt.formats.onnx import files as onnx_files
from graphopt.formats.onnx import inputs as input_gen
from graphopt.formats.onnx.adapter import prepare
from graphopt.formats.onnx.feeds import load_feeds
from graphopt.targets.onnxruntime import OrtTarget
from graphopt.targets.onnxruntime import levers as ort_session
from graphopt.targets.onnxruntime.profile import op_times, scaled

PROFILED = ("ort-all", "graphopt-search", "graphopt-learned")  # ORT as is, then the first graphopt contender run


def workload_feeds(workload: Workload, model) -> dict[str, np.ndarray]:
    if workload.inputs:
        return load_feeds(workload.inputs, model)
    specs = input_gen.input_specs(model)
    return input_gen.generate(model, input_gen.bind_dims(specs))


def run_workload(
    workload: Workload, contenders: list[Contender], rates: MachineRates, budget_s: float, log=print
) -> dict:
    original = onnx_files.load(workload.model)  # as exported: the baseline every tool is judged against
    feeds = workload_feeds(workload, prepare(onnx_files.copy(original), []))
    baseline = OrtTarget().compile(original)
    expected = baseline.run(feeds)
    names = [o.name for o in baseline.session.get_outputs()]
    work = count_work(onnx.load(str(workload.model)), feeds)
    record = {
        "workload": workload.name,
        "flops": work.flops,
        "bytes": work.bytes,
        "floor_ms": rates.floor_s(work) * 1e3,
        "baseline": {
            "nodes": len(list(original.graph.all_nodes())),
            "kernels": baseline.report.kernels,
            "fused": baseline.report.fused,
        },
        "results": [],
        "op_time_ms": {},
    }
    with tempfile.TemporaryDirectory(prefix="graphopt-bench-") as tmp:
        for contender in contenders:
            log(f"  {workload.name}: {contender.name}")
            record["results"].append(
                _run_contender(contender, workload, Path(tmp), feeds, expected, names, original, budget_s)
            )
        record["op_time_ms"] = _op_time(record["results"], feeds)
    for result in record["results"]:
        result.pop("path", None)
    return record


def _op_time(results: list[dict], feeds) -> dict[str, dict[str, float]]:
    """Time by op type for the PROFILED contenders, profiled together (their runs interleaved)
    and each rescaled to the latency graphopt's A/B timing measured for it, so the bars agree
    with the table's ratio."""
    by_name = {r["contender"]: r for r in results if r.get("path") and r.get("equivalent")}
    profiled = (PROFILED[0], next((name for name in PROFILED[1:] if name in by_name), PROFILED[1]))
    if not all(name in by_name for name in profiled) or "latency_ms" not in by_name[profiled[1]]:
        return {}
    sides = []
    for name in profiled:
        settings = ort_session.read(by_name[name]["path"]) or ort_session.SessionSettings()
        sides.append((settings.apply(OrtTarget()), onnx_files.load(by_name[name]["path"])))
    timed = by_name[profiled[1]]
    latencies = (timed["baseline_ms"], timed["latency_ms"])
    return {name: scaled(b, ms) for name, b, ms in zip(profiled, op_times(sides, feeds), latencies)}


def _run_contender(contender, workload, tmp: Path, feeds, expected, names, original, budget_s) -> dict:
    result = {"contender": contender.name, "level": contender.level}
    path = workload.model
    if contender.transform:
        path = tmp / f"{contender.name}.onnx"
        start = time.monotonic()
        try:
            result |= contender.transform(workload.model, path, workload) or {}
        except Exception as error:  # a tool that fails is a row in the table, not a crash
            result["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"
            result["trace"] = traceback.format_exc(limit=3)
            return result
        finally:
            result["tool_s"] = time.monotonic() - start
    if contender.transform and _same_model(path, workload.model):
        result["identical"] = True
    # A tool may recommend ORT session settings for its output (graphopt writes them beside it):
    # its result runs with them, the original with ORT's defaults, as a user would run each.
    settings = ort_session.read(path) if contender.transform else None
    if settings is not None:
        result["session"] = settings.label()
    target = settings.apply(OrtTarget()) if settings else OrtTarget(level=contender.level)
    try:
        model = onnx_files.load(path)
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
    if settings is not None or contender.level == "all":
        a_sessions, b_sessions = harness.paired((OrtTarget(), original), (target, model))
    else:  # the original at ENABLE_ALL (A) and at the contender's level (B)
        a_sessions, b_sessions = harness.paired((OrtTarget(), original), (target, original))
    timing = interleaved(
        [runner(x, feeds) for x in a_sessions], [runner(x, feeds) for x in b_sessions], budget_s=budget_s
    )
    result |= {
        "ratio": timing.ratio,
        "ci95": [timing.ci_low, timing.ci_high],
        "latency_ms": timing.candidate_s * 1e3,
        "baseline_ms": timing.baseline_s * 1e3,
        "rounds": timing.rounds,
    }
    return result


def _same_model(a: Path, b: Path) -> bool:
    """The same model: the same bytes, or the same graph and weights wherever the weights live
    (a handed-back input with external data is rewritten with its weights beside the output)."""
    a, b = Path(a), Path(b)
    if a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes():
        return True
    return onnx.load(str(a)).graph == onnx.load(str(b)).graph
