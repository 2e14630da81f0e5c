"""`graphopt optimize`: files in, files out, over ``decide()``.

    load (Format) -> prepare -> inputs -> decide (sites, policy, rewrite, compile, verify,
    measure, levers) -> save + report

The output file is always a model the target can run: the kept candidate when it is equivalent
and faster with confidence, otherwise the input handed back, with the reason in the report. The
format and the target are chosen by the registry (a file suffix, a target name); nothing here
knows ONNX or ONNX Runtime.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time

import numpy as np

from graphopt.api import auto
from graphopt.core import registry
from graphopt.core.atomic import signals_held
from graphopt.core.budget import DEFAULT_S, MEASURE_MAX_S, Budget
from graphopt.core.decide import Decision, decide
from graphopt.core.errors import GraphoptError, InputsDidNotRun
from graphopt.core.progress import Reporter
from graphopt.core.protocols import OpVocabulary, SettingsFile


@dataclasses.dataclass
class OptimizeResult:
    """A Decision with what the file layer adds: paths, notes, what the rules found, the time."""

    model_path: str
    output_path: str | None
    decision: Decision
    sites_found: dict[str, int]
    near_misses: dict[str, int]  # per rule: places where its pattern partly matched or its check failed
    notes: list[str]
    seconds: float = 0.0
    settings_path: str | None = None  # where the recommended compiler settings were written
    original: object = None  # the input graph, as loaded
    auto: object = None  # with --target auto: what was measured between runtimes (api/auto.AutoChoice)
    record_path: str | None = None  # with --target auto: where the runtime record was written

    def report(self) -> dict:
        """The JSON report: what ``graphopt optimize --report r.json`` writes."""
        from graphopt.reports.optimize import to_dict

        return to_dict(self)

    @property
    def model(self):
        """The graph to use: the kept candidate, or the input when nothing was kept."""
        return self.decision.chosen.candidate.graph if self.decision.chosen else self.original

    @property
    def baseline(self):
        return self.decision.baseline

    @property
    def chosen(self):
        return self.decision.chosen

    @property
    def selected(self):
        return self.decision.selected

    @property
    def unconfirmed(self) -> str | None:
        return self.decision.unconfirmed

    @property
    def reason(self) -> str:
        return self.decision.reason

    @property
    def kept_original(self) -> bool:
        return self.decision.kept_original

    @property
    def evaluations(self) -> list:
        return list(self.decision.log)

    @property
    def lever(self):
        """The compiler setting recommended for the output (judge.LeverChoice), with its measurement."""
        return self.decision.lever

    @property
    def lever_changed_choice(self) -> bool:
        return self.decision.lever_changed_choice


@dataclasses.dataclass(frozen=True)
class Request:
    """What one optimization is asked to do, whatever the model came as."""

    target: object = None  # a Target, a target name, or None: the format's own compiler
    policy: str = registry.DEFAULT_POLICY
    rules: list | None = None  # None: every rule of the format
    shapes: dict[str, tuple[int, ...]] | None = None  # inputs' sizes for verification only
    inputs_file: str | None = None
    feeds: list | None = None  # inputs given in memory (a list of name -> array dicts)
    budget_s: float | None = None  # None: automatic (core/budget.py)
    fix_dims: dict[str, int] | None = None  # fixed in the graph: the output accepts only these
    fix_shapes: dict[str, tuple[int, ...]] | None = None


def optimize(
    model_path: str | os.PathLike,
    output_path: str | os.PathLike | None,
    *,
    on_progress=None,
    in_place: bool = False,
    make_dirs: bool = False,
    **request,
) -> OptimizeResult:
    """``request``: the fields of Request (target, policy, rules, shapes, inputs_file, budget_s,
    fix_dims, fix_shapes). ``shapes`` binds inputs' sizes for verification only; ``fix_dims`` /
    ``fix_shapes`` fix them in the graph. ``on_progress`` receives graphopt.core.progress.Event
    objects. Nothing is written when ``output_path`` is None."""
    start = time.monotonic()
    asked = Request(**request)
    fmt, registered = registry.format_for(model_path)
    if asked.target == auto.AUTO and fmt.name != "onnx":
        raise GraphoptError("--target auto chooses between ONNX runtimes; give an ONNX model or name a target")
    if output_path is not None:
        fmt.check_destination(model_path, output_path, in_place=in_place, make_dirs=make_dirs)
    progress = Reporter(on_progress, start + (asked.budget_s or DEFAULT_S))
    progress.stage("loading")
    original = fmt.load(model_path)  # the baseline is the model as the user gave it
    if asked.target == auto.AUTO:
        result, prepared, target = _optimize_auto(fmt, registered, original, asked, progress, str(model_path))
    else:
        target = registry.target_of(asked.target, registry.format_name(model_path))
        result, prepared = optimize_graph(fmt, registered, original, target, asked, progress, start, str(model_path))
    result.output_path = None if output_path is None else str(output_path)
    if output_path is not None:
        progress.stage("saving")
        with signals_held():  # the model, its weights and its settings file: all or nothing
            _write(result, fmt, original, prepared, target)
    result.seconds = time.monotonic() - start
    return result


def optimize_graph(
    fmt, registered: list, original, target, asked: Request, progress: Reporter, start: float, name: str
):
    """``decide()`` on a graph already loaded (or given in memory): (the result, the prepared graph)."""
    if asked.budget_s is not None and asked.budget_s <= 0:
        raise GraphoptError(f"the budget must be a positive number of seconds (got {asked.budget_s:g})")
    prepared = fmt.copy(original)  # names and inferred shapes, for the rules
    notes = fmt.prepare(prepared) + target.admit(prepared)
    vocabulary = target.runs_op if isinstance(target, OpVocabulary) else None
    chosen_rules = registered if asked.rules is None else asked.rules
    rule_set = fmt.rules(chosen_rules, original, asked.fix_dims, asked.fix_shapes, runs_op=vocabulary)
    # Fixed shapes are applied to each candidate before its rewrites (OnnxRules.rewrite); the
    # fixed input, with no rewrite, is a candidate of its own.
    fixed, fixed_notes = rule_set.fixed_input(prepared)
    notes += fixed_notes
    if fixed is not None:
        _check_agrees_with_fixed(fmt, fixed.graph, asked.shapes or {})
    sites = rule_set.sites(prepared)
    weights = fmt.weight_bytes(prepared)
    budget = Budget(asked.budget_s, start, weights) if asked.budget_s else Budget.automatic(start, weights)
    policy = registry.policy_for(asked.policy, fmt, target)
    run = functools.partial(
        decide,
        prepared,
        rule_set,
        target,
        policy,
        budget=budget,
        progress=progress,
        extra=[fixed] if fixed else [],
        baseline_graph=original,
    )
    decision = _decide_on_inputs_that_run(run, fmt, fixed.graph if fixed else prepared, asked)
    memory_note = decision.baseline.memory.note() if decision.baseline.memory else None
    notes += [memory_note] if memory_note else []
    if budget.auto and decision.budget.total_s > budget.total_s:
        notes.append(
            f"budget: automatic, {decision.budget.total_s:.0f} s for this model (judging one candidate takes "
            f"about {decision.baseline.candidate_s(MEASURE_MAX_S):.0f} s; --budget sets it)"
        )
    misses = rule_set.near_misses(prepared, sites)
    counts = _count(s.rule for s in sites), _count(m.rule for m in misses)
    return OptimizeResult(name, None, decision, *counts, notes, original=original), prepared


def _optimize_auto(fmt, registered, original, asked: Request, progress: Reporter, name: str):
    """Each runtime of auto.AUTO_TARGETS decides on its own share of the budget; then auto.choose
    times them against the faster as is. (the result of the runtime chosen, its prepared graph, its target)"""
    targets, notes = auto.available_targets()
    share = dataclasses.replace(asked, budget_s=auto.side_budget(asked.budget_s, len(targets)))
    results, prepared = {}, {}
    for target in targets:
        progress.stage(f"auto: judging {target.name}")
        side_start = time.monotonic()
        results[target.name], prepared[target.name] = optimize_graph(
            fmt, registered, original, target, share, progress, side_start, name
        )
    progress.stage("auto: timing the runtimes against each other")
    choice = auto.choose(results, auto.final_seconds(asked.budget_s)) if len(results) > 1 else None
    runtime = choice.runtime if choice else next(iter(results))
    if choice:
        choice.notes = notes
    result = results[runtime]
    result.auto, result.notes = choice, result.notes + notes
    return result, prepared[runtime], result.decision.compiled_with


def _decide_on_inputs_that_run(run, fmt, graph, asked: Request):
    """``run(feeds)`` on generated inputs at the format's default sizes, then at larger ones
    while the target refuses the model on them (a strided Conv longer than the default length);
    the user's own inputs are tried once. The last refusal is the error, with what to do."""
    if asked.feeds is not None:
        return run(feeds=list(asked.feeds))
    shapes, inputs_file = asked.shapes, asked.inputs_file
    attempts, previous = (1 if inputs_file else fmt.feed_attempts), None
    for attempt in range(attempts):
        feeds = fmt.feeds(graph, shapes, inputs_file, attempt=attempt)
        shapes_now = [{k: np.shape(v) for k, v in f.items()} for f in feeds]
        if shapes_now == previous:
            break  # no dynamic dimension to grow
        previous = shapes_now
        try:
            return run(feeds=feeds)
        except InputsDidNotRun as error:
            refusal = error
    hint = (
        ""
        if inputs_file
        else f" (generated at {', '.join(f'{k}={list(s)}' for k, s in previous[0].items())}: pass --shape or --inputs)"
    )
    raise InputsDidNotRun(f"{refusal}{hint}") from None


def _write(result: OptimizeResult, fmt, original, prepared, target) -> None:
    """The model (with its weights) first, then its settings side file, or an old one's removal."""
    chosen = result.decision.chosen
    fmt.write_output(
        chosen.candidate.graph if chosen else None,
        result.model_path,
        result.output_path,
        like=prepared,
        original=original,
    )
    target = result.decision.compiled_with or target  # bound to the shapes it was measured at
    if isinstance(target, SettingsFile):
        result.settings_path = target.write_lever(
            result.output_path, result.decision.lever.lever, result.decision.lever.timing
        )
    if result.auto is not None:
        result.record_path = auto.write_record(result.output_path, result.auto, result.settings_path)


def _check_agrees_with_fixed(fmt, graph, shapes: dict[str, tuple[int, ...]]) -> None:
    for spec in fmt.input_specs(graph):
        if spec.name in shapes and all(isinstance(d, int) for d in spec.dims) and tuple(shapes[spec.name]) != spec.dims:
            raise GraphoptError(
                f"--shape {spec.name}={list(shapes[spec.name])} disagrees with the fixed shape {list(spec.dims)}"
            )


def _count(names) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return counts


__all__ = ["optimize", "OptimizeResult", "GraphoptError"]
