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

from graphopt import registry
from graphopt.budget import Budget
from graphopt.decide import Decision, decide
from graphopt.errors import GraphoptError, InputsDidNotRun
from graphopt.atomic import signals_held
from graphopt.progress import Reporter


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
    session_path: str | None = None  # where the recommended compiler settings were written

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
    def session(self):
        return self.decision.lever

    @property
    def session_changed_choice(self) -> bool:
        return self.decision.lever_changed_choice


def optimize(
    model_path: str | os.PathLike,
    output_path: str | os.PathLike | None,
    *,
    target=None,
    policy: str = registry.DEFAULT_POLICY,
    rules: list | None = None,
    shapes: dict[str, tuple[int, ...]] | None = None,
    inputs_file: str | None = None,
    budget_s: float = 60.0,
    on_progress=None,
    fix_dims: dict[str, int] | None = None,
    fix_shapes: dict[str, tuple[int, ...]] | None = None,
    in_place: bool = False,
    make_dirs: bool = False,
) -> OptimizeResult:
    """``shapes`` binds inputs' sizes for verification only; ``fix_dims`` / ``fix_shapes`` fix them
    in the graph: the output then accepts only those shapes. ``on_progress`` receives
    graphopt.progress.Event objects."""
    start = time.monotonic()
    if budget_s <= 0:
        raise GraphoptError(f"the budget must be a positive number of seconds (got {budget_s:g})")
    fmt, registered = registry.format_for(model_path)
    if output_path is not None:
        fmt.check_destination(model_path, output_path, in_place=in_place, make_dirs=make_dirs)
    target = target or registry.target_for("ort-cpu")
    progress = Reporter(on_progress, start + budget_s)
    progress.stage("loading")
    original = fmt.load(model_path)  # the baseline is the model as the user gave it
    prepared = fmt.copy(original)  # names and inferred shapes, for the rules
    notes = fmt.prepare(prepared) + target.admit(prepared)
    rule_set = fmt.rules(registered if rules is None else rules, original, fix_dims, fix_shapes)
    # Fixed shapes are applied to each candidate after its rewrites (the rules match the dynamic
    # graph they were written for); the fixed input is a candidate of its own.
    fixed, fixed_notes = rule_set.fixed_input(prepared)
    notes += fixed_notes
    if fixed is not None:
        _check_agrees_with_fixed(fmt, fixed.graph, shapes or {})
    sites = rule_set.sites(prepared)
    budget = Budget(budget_s, start, fmt.weight_bytes(prepared))
    run = functools.partial(decide, prepared, rule_set, target, registry.policy_for(policy, fmt, target),
                            budget=budget, progress=progress, extra=[fixed] if fixed else [], baseline_graph=original)  # fmt: skip
    decision = _decide_on_inputs_that_run(run, fmt, fixed.graph if fixed else prepared, shapes, inputs_file)
    misses = rule_set.near_misses(prepared, sites)
    result = OptimizeResult(str(model_path), None if output_path is None else str(output_path), decision,
                            _count(s.rule for s in sites), _count(m.rule for m in misses), notes)  # fmt: skip
    if output_path is not None:
        progress.stage("saving")
        with signals_held():  # the model, its weights and its settings file: all or nothing
            _write(result, fmt, original, prepared, target)
    result.seconds = time.monotonic() - start
    return result


def _decide_on_inputs_that_run(run, fmt, graph, shapes, inputs_file):
    """``run(feeds)`` on generated inputs at the format's default sizes, then at larger ones
    while the target refuses the model on them (a strided Conv longer than the default length);
    the user's own inputs are tried once. The last refusal is the error, with what to do."""
    attempts, previous = (1 if inputs_file else getattr(fmt, "feed_attempts", 1)), None
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
    hint = "" if inputs_file else f" (generated at {', '.join(f'{k}={list(s)}' for k, s in previous[0].items())}: pass --shape or --inputs)"
    raise InputsDidNotRun(f"{refusal}{hint}") from None


def _write(result: OptimizeResult, fmt, original, prepared, target) -> None:
    """The model (with its weights) first, then its settings side file, or an old one's removal."""
    chosen = result.decision.chosen
    fmt.write_output(chosen.candidate.graph if chosen else None, result.model_path, result.output_path, like=prepared, original=original)
    result.session_path = target.write_lever(result.output_path, result.decision.lever.lever, result.decision.lever.timing)


def _check_agrees_with_fixed(fmt, graph, shapes: dict[str, tuple[int, ...]]) -> None:
    for spec in fmt.input_specs(graph):
        if spec.name in shapes and all(isinstance(d, int) for d in spec.dims) and tuple(shapes[spec.name]) != spec.dims:
            raise GraphoptError(f"--shape {spec.name}={list(shapes[spec.name])} disagrees with the fixed shape {list(spec.dims)}")


def _count(names) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return counts


__all__ = ["optimize", "OptimizeResult", "GraphoptError"]
