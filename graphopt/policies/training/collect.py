"""``graphopt policy collect``: judge every pool entry of every corpus graph, the way a run judges
candidates (graphopt/core/judge.py: compile, fusion report, verify, time), and store each
evaluation with its features (graphopt/policies/training/dataset.py).

One graph is one job: export the spec, compile the original, rewrite and judge each pool entry
(an entry whose sites equal an earlier one's reuses its evaluation). Jobs run one at a time in
fresh local processes by default, or as Ray tasks (``ray_address``): each task asks for every
core of a node, and no more tasks are in flight than there are nodes, so one measuring task runs
per node and timings do not disturb each other. Ray tasks return their rows and the driver writes
the files, so workers need no shared disk. A run with a deadline starts no job past it; a rerun
resumes with the graphs not yet written.

Any target that compiles the corpus's ONNX exports can be collected for (ORT, OpenVINO, IREE
through its ONNX importer, a compiler plugged in through the ``graphopt.targets`` entry points):
the features are read from the graph and the target's own fusion report, so no rule or feature
is written for it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import platform
import tempfile
import time

from graphopt.policies.features import Schema, features, graph_facts, vector
from graphopt.policies.pool import Entry, pool
from graphopt.policies.training import dataset
from graphopt.policies.training.corpus import Spec, build

TARGET = "ort-cpu"  # the default Target.name; the weights are graphopt/policies/weights/<target>.json
MEASURE_S = 6.0  # timing per entry (interleaved; stops early once the interval is clear)


def collect_one(
    spec: Spec, measure_s: float = MEASURE_S, target: str = TARGET
) -> tuple[str, list[dict], list[str], str]:
    """Export ``spec`` and judge its whole pool on ``target``: (graph id, rows, feature names,
    schema digest)."""
    with tempfile.TemporaryDirectory(prefix="graphopt-collect-") as folder:
        context = prepared(spec, folder, measure_s, target)
        if context.greedy is None:
            return spec.graph_id, [], context.schema.names, context.schema.digest
        rows = [_judged(context, position, entry) for position, entry in enumerate(pool(context.greedy, context.rules))]
    return spec.graph_id, rows, context.schema.names, context.schema.digest


def prepared(spec: Spec, folder, measure_s: float, target_name: str = TARGET) -> _Context:
    """``spec`` exported into ``folder``, its original compiled and run, its greedy rewrite made
    (``greedy`` is None when no rule applies): what judging any pool entry needs."""
    from graphopt.core import registry
    from graphopt.core.decide import bound
    from graphopt.core.judge import make_baseline
    from graphopt.core.protocols import OpVocabulary
    from graphopt.policies.search import Greedy

    path, feeds = build(spec, folder)
    (fmt, registered), target = registry.format_for(path), registry.target_for(target_name)
    model = fmt.load(path)
    names = {spec.name for spec in fmt.input_specs(model)}
    feeds = {name: value for name, value in feeds.items() if name in names}  # an exporter may drop an unused input
    target = bound(target, [feeds])  # a target that compiles for the feeds' shapes (IREE, OpenVINO) as a run binds it
    prepared = fmt.copy(model)  # names and inferred shapes, for the rules
    fmt.prepare(prepared)
    runs_op = target.runs_op if isinstance(target, OpVocabulary) else None  # no op the target cannot read
    rules = fmt.rules(registered, model, runs_op=runs_op)
    baseline = make_baseline(model, target, [feeds])
    schema = Schema.of(rules.families())
    greedy = next(Greedy().propose(prepared, rules), None)
    facts = None
    if greedy is not None:
        facts = graph_facts(fmt, prepared, feeds, baseline.report, target.name)
    return _Context(spec, fmt.fingerprint(model), schema, greedy, facts, prepared, rules, baseline, target, measure_s)


@dataclasses.dataclass
class _Context:
    spec: Spec
    fingerprint: str
    schema: Schema
    greedy: object
    facts: object
    prepared: object
    rules: object
    baseline: object
    target: object
    measure_s: float
    seen: dict = dataclasses.field(default_factory=dict)  # applied sites -> evaluation
    provenance: dict = dataclasses.field(
        default_factory=lambda: {"machine": json.dumps(machine()), "versions": json.dumps(versions())}
    )


def _judged(context: _Context, position: int, entry: Entry) -> dict:
    from graphopt.core.judge import evaluate

    started = time.monotonic()
    candidate = context.greedy if entry.kind == "greedy" else entry.rewrite(context.prepared, context.rules)
    key = tuple(sorted(map(repr, candidate.applied)))
    if key not in context.seen:  # a duplicate costs its rewrite only, as in a run (policies skip it)
        context.seen[key] = evaluate(candidate, context.baseline, context.target, context.measure_s)
    evaluation, seconds = context.seen[key], time.monotonic() - started
    named = features(entry, context.greedy.applied, context.facts)
    return _row(context, position, entry, evaluation, vector(named, context.schema), seconds)


def _row(context: _Context, position: int, entry: Entry, evaluation, values: list[float], seconds: float) -> dict:
    report, timing, base_report = evaluation.report, evaluation.timing, context.baseline.report
    sites = [
        {"rule": s.rule, "signature": s.signature, "anchor": s.anchor, "fused_now": s.fused_now(base_report)}
        for s in evaluation.candidate.applied
    ]
    return {
        "graph_id": context.spec.graph_id,
        "fingerprint": context.fingerprint,
        "arch": context.spec.arch,
        "spec": context.spec.to_json(),
        "target": context.target.name,
        "entry": entry.label,
        "kind": entry.kind,
        "family": entry.family,
        "site_class": json.dumps(entry.site_class),
        "position": position,
        "features": values,
        "sites": sites,
        "kernels": report.kernels if report else None,
        "fused": json.dumps(report.fused if report else {}),
        "fired": json.dumps(report.fired if report else {}),
        "equivalent": None if evaluation.equivalence is None else evaluation.equivalence.ok,
        "rejected": evaluation.rejected,
        "ratio": timing.ratio if timing else None,
        "ci_low": timing.ci_low if timing else None,
        "ci_high": timing.ci_high if timing else None,
        "rounds": timing.rounds if timing else None,
        "baseline_ms": timing.baseline_s * 1e3 if timing else None,
        "candidate_ms": timing.candidate_s * 1e3 if timing else None,
        "seconds": seconds,
    } | context.provenance


def machine() -> dict:
    return {"host": platform.node(), "cores": os.cpu_count(), "cpu": platform.processor() or platform.machine()}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("graphopt", "onnxruntime", "onnx", "onnx_ir", "torch"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def collect(
    specs: list[Spec],
    folder,
    *,
    measure_s: float = MEASURE_S,
    ray_address: str | None = None,
    progress=print,
    target: str = TARGET,
    deadline: float | None = None,
) -> list[str]:
    """Judge every spec not yet in ``folder`` on ``target``, starting none after ``deadline``
    (``time.monotonic()``); returns the graph ids written."""
    done = dataset.done(folder)
    todo = [(spec, collect_one, (spec, measure_s, target)) for spec in specs if spec.graph_id not in done]
    return write_results(run_jobs(todo, ray_address, deadline), folder, progress)


def write_results(results, folder, progress=print) -> list[str]:
    """Each job's rows as its graph's file in ``folder`` (a failed job is reported, not fatal)."""
    written = []
    for spec, outcome in results:
        if isinstance(outcome, BaseException):
            progress(
                f"{spec.graph_id}: failed: {type(outcome).__name__}: "
                f"{str(outcome).splitlines()[0][:200] if str(outcome) else ''}"
            )
            continue
        graph_id, rows, names, digest = outcome
        if rows:
            dataset.write_graph(folder, graph_id, rows, names, digest)
            written.append(graph_id)
        progress(
            f"{graph_id}: {len(rows)} entries, "
            f"best ratio {min((dataset.label_ratio(r) for r in rows), default=1.0):.3f}"
        )
    return written


def run_jobs(jobs, ray_address: str | None = None, deadline: float | None = None):
    """(spec, outcome or exception) for each (spec, function, args) job started before
    ``deadline``: on Ray when an address is given, else in fresh local processes, one at a time
    (timings need the machine)."""
    return _on_ray(jobs, ray_address, deadline) if ray_address else _locally(jobs, deadline)


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _locally(jobs, deadline=None):
    context = multiprocessing.get_context("spawn")
    for spec, function, args in jobs:
        if _past(deadline):
            return
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as executor:
            try:
                yield spec, executor.submit(function, *args).result()
            except Exception as error:  # one graph failing to export or compile does not stop the run
                yield spec, error


def _on_ray(jobs, address, deadline=None):
    """One task per job, each asking for every core of a node, and no more in flight than there
    are nodes: one measuring task per node, and a deadline stops what has not started."""
    import ray

    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    alive = [node for node in ray.nodes() if node["Alive"]]
    cores = int(ray.cluster_resources().get("CPU", 1))
    per_node = max(int(node["Resources"].get("CPU", 1)) for node in alive)
    tasks: dict = {}
    pending, queue = {}, iter(jobs)
    while True:
        while len(pending) < len(alive) and not _past(deadline) and (job := next(queue, None)) is not None:
            spec, function, args = job
            task = tasks.setdefault(function, ray.remote(num_cpus=min(per_node, cores))(function))
            pending[task.remote(*args)] = spec
        if not pending:
            return
        ready, _ = ray.wait(list(pending), num_returns=1)
        spec = pending.pop(ready[0])
        try:
            yield spec, ray.get(ready[0])
        except Exception as error:
            yield spec, error
