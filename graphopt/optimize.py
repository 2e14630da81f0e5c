"""`graphopt optimize`: the whole path for one ONNX model, as one straight line.

load -> enumerate sites -> policy proposes -> rewrite -> ORT compiles and reports fusions ->
verify -> measure -> accept the best candidate or keep the original -> save + report.

The output file is always a model ORT can run: the best candidate when it is equivalent and
faster with confidence, otherwise the input's bytes unchanged, with the reason in the report.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import onnx_ir as ir

from graphopt import inputs as input_gen
from graphopt import outputs, sizes, specialize
from graphopt.progress import Reporter
from graphopt.errors import GraphoptError, InputGenerationError
from graphopt.formats import onnx_format
from graphopt.formats.atomic import signals_held
from graphopt.formats.shape_inference import infer_shapes
from graphopt.rules import Rule, all_rules
from graphopt.search import loop
from graphopt.search import session as ort_session
from graphopt.search.policies import POLICIES, Candidate
from graphopt.search.sites import ensure_unique_names, find_sites, near_misses
from graphopt.targets.onnxruntime import OrtTarget
from graphopt.targets.ort_compat import max_ir_version


@dataclasses.dataclass
class OptimizeResult:
    model_path: str
    output_path: str | None
    kept_original: bool  # the output's graph is the input's (it may still come with session settings)
    reason: str
    baseline: loop.Baseline
    evaluations: list[loop.Evaluation]
    chosen: loop.Evaluation | None  # the graph written; its ``timing`` is at ORT's defaults
    sites_found: dict[str, int]
    near_misses: dict[str, int]  # per rule: places where its pattern partly matched or its check failed
    notes: list[str]
    seconds: float
    session: loop.SessionChoice = dataclasses.field(default_factory=loop.SessionChoice)
    session_path: str | None = None  # where the recommended ORT session settings were written
    selected: loop.Evaluation | None = None  # what the graph search chose, before the session step
    unconfirmed: str | None = None  # why the search's choice was dropped when timed again

    @property
    def session_changed_choice(self) -> bool:
        """The session-settings step kept another graph than the one the search chose."""
        return self.chosen is not self.selected


def load_feeds(path: str | os.PathLike, model: ir.Model) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as data:
            feeds = {name: data[name] for name in data.files}
    except (OSError, ValueError) as error:
        raise InputGenerationError(f"{path}: not a readable .npz file ({error})") from None
    missing = [s.name for s in input_gen.input_specs(model) if s.name not in feeds]
    if missing:
        raise InputGenerationError(f"{path}: no array for input(s) {', '.join(missing)}")
    return feeds


def verification_feeds(model: ir.Model, shapes, inputs_file) -> list[dict[str, np.ndarray]]:
    """The user's inputs, or generated ones at two bindings of the dynamic dimensions."""
    if inputs_file:
        return [load_feeds(inputs_file, model)]
    specs = input_gen.input_specs(model)
    bindings = [input_gen.bind_dims(specs, shapes)]
    alternate = input_gen.bind_dims(specs, shapes, input_gen.ALTERNATE_SIZES)
    if alternate != bindings[0]:
        bindings.append(alternate)
    for binding in bindings:
        sizes.refuse_unfit(model, specs, binding)
    return [input_gen.generate(model, b, seed=i) for i, b in enumerate(bindings)]


def prepare(model: ir.Model, notes: list[str]) -> ir.Model:
    """Unique node names, shapes inferred where onnx can, an IR version ORT reads."""
    ensure_unique_names(model)
    note = infer_shapes(model)  # a help, not a requirement
    if note:
        notes.append(note)
    if model.ir_version > max_ir_version():
        notes.append(f"IR version {model.ir_version} lowered to {max_ir_version()} so onnxruntime can load it")
        model.ir_version = max_ir_version()
    return model


def optimize(
    model_path: str | os.PathLike,
    output_path: str | os.PathLike | None,
    *,
    target: OrtTarget | None = None,
    policy: str = "search",
    rules: list[Rule] | None = None,
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
    in the graph (see graphopt.specialize): the output then accepts only those shapes.
    ``on_progress`` receives graphopt.progress.Event objects."""
    start = time.monotonic()
    if budget_s <= 0:
        raise GraphoptError(f"the budget must be a positive number of seconds (got {budget_s:g})")
    if output_path is not None:
        outputs.check_destination(model_path, output_path, in_place=in_place, make_dirs=make_dirs)
    target = target or OrtTarget()
    rules = rules if rules is not None else all_rules()
    progress = Reporter(on_progress, start + budget_s)
    notes: list[str] = []

    progress.stage("loading")
    original = onnx_format.load(model_path)  # the baseline is the model as the user gave it
    model = prepare(onnx_format.copy(original), notes)  # names and inferred shapes, for the rules
    # Fixed shapes are applied to each candidate after its rewrites: the rules match the dynamic
    # graph they were written for (folded shape arithmetic hides the exporters' patterns).
    fixed_model = onnx_format.copy(model)
    fixed = specialize.fix_shapes(fixed_model, fix_dims or {}, fix_shapes or {})
    notes += fixed
    if fixed:
        _check_agrees_with_fixed(fixed_model, shapes or {})
    feeds = verification_feeds(fixed_model, shapes, inputs_file)
    progress.stage("compiling the original with onnxruntime")
    baseline = loop.make_baseline(original, target, feeds)
    sites = find_sites(model, rules)
    judged: list[loop.Evaluation] = []  # the policy reads what has been measured so far
    proposals = POLICIES[policy]().propose(model, rules, judged)
    if fixed:  # each candidate fixed in turn, and the fixed input a candidate of its own
        proposals = _after_first(_fixed(proposals, fix_dims or {}, fix_shapes or {}), Candidate("fixed shapes only", fixed_model, []))
    candidates = _as_written(proposals, onnx_format.annotated_values(original))
    result = OptimizeResult(
        model_path=str(model_path), output_path=None if output_path is None else str(output_path),
        kept_original=True, reason="", baseline=baseline, evaluations=judged, chosen=None,
        sites_found=_count(s.rule for s in sites), near_misses=_count(m.rule for m in near_misses(model, rules, sites)),
        notes=notes, seconds=0.0,
    )  # fmt: skip
    _search(result, candidates, target, start + budget_s - _save_allowance_s(model), budget_s, progress)
    if output_path is not None:
        progress.stage("saving")
        with signals_held():  # the model, its weights and its settings file: all or nothing
            _write(result, original, model.ir_version)
    result.seconds = time.monotonic() - start
    return result


def _search(result: OptimizeResult, candidates, target, deadline: float, budget_s: float, progress) -> None:
    """The graph search, its confirmation and the session-settings step, filling ``result``."""
    # A quarter of the budget (at most 15 s) is kept for ORT's session settings once the graph is chosen.
    graph_deadline = deadline - min(15.0, budget_s / 4)
    evaluations = loop.search(candidates, result.baseline, target, graph_deadline, on_progress=progress, evaluations=result.evaluations)
    chosen = loop.best(evaluations)
    if chosen is not None:
        progress.stage("timing the best candidate again")
        result.unconfirmed = loop.confirm(chosen, evaluations, result.baseline, target, deadline)
        if result.unconfirmed:
            chosen = None
    result.selected = chosen
    progress.stage("timing ORT's own fusions on the chosen graph")
    chosen, result.session = _choose_session(chosen, evaluations, result.baseline, target, deadline)
    result.chosen, result.kept_original = chosen, chosen is None
    result.reason = _reason(result)


def _reason(result: OptimizeResult) -> str:
    """The headline: the output graph against the original, both at ORT's defaults."""
    chosen = result.chosen
    if chosen is not None:
        t = chosen.timing
        return f"kept candidate '{chosen.candidate.label}': {t.speedup:.3f}x faster at ORT's defaults (ratio {t.ratio:.3f}, 95% CI [{t.ci_low:.3f}, {t.ci_high:.3f}])"
    if result.unconfirmed:
        return result.unconfirmed
    if not result.evaluations:
        return "no rule applies to this model"
    return "; ".join(f"{e.candidate.label}: {e.rejected or 'faster, but not kept'}" for e in result.evaluations)


def _write(result: OptimizeResult, original: ir.Model, ir_version: int) -> None:
    """The model (with its weights) first, then its session-settings side file or its removal."""
    output_path = result.output_path
    if result.chosen is not None:
        outputs.write_candidate(result.chosen.candidate.model, output_path, external_data=onnx_format.has_external_data(original))
    else:
        outputs.write_original(result.model_path, output_path, ir_version=ir_version)
    sidecar = ort_session.settings_path(output_path)
    if result.session.settings.is_default:
        outputs.remove_stale(sidecar)  # an earlier run's advice does not apply to this output
    else:
        ort_session.write(sidecar, result.session.settings, result.session.timing)
        result.session_path = str(sidecar)


def _count(names) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return counts


def _fixed(proposals, dims, shapes):
    for candidate in proposals:
        specialize.fix_shapes(candidate.model, dims, shapes)
        yield candidate


def _after_first(proposals, extra):
    """``proposals`` with ``extra`` second: after the policy's first (greedy) candidate."""
    first = next(proposals, None)
    if first is not None:
        yield first
    yield extra
    yield from proposals


def _check_agrees_with_fixed(model: ir.Model, shapes: dict[str, tuple[int, ...]]) -> None:
    for value in model.graph.inputs:
        if value.name in shapes and value.shape is not None and all(isinstance(d, int) for d in value.shape):
            if tuple(shapes[value.name]) != tuple(value.shape):
                raise GraphoptError(f"--shape {value.name}={list(shapes[value.name])} disagrees with the fixed shape {list(value.shape)}")


def _choose_session(chosen, evaluations, baseline, target, deadline):
    """ORT session settings for the chosen graph, and for the runner-up when ORT fires fusions on
    it that it does not fire on the chosen one (a graphopt fusion and ORT's own can make the same
    kernel; only the ORT-made one can be switched off, and that can be the faster pair). The pair
    whose combined measurement against the original is best wins; without one, the chosen graph
    at ORT's defaults stays."""
    subjects = [chosen]
    if chosen is not None:
        others = sorted((e for e in evaluations if e.accepted and e is not chosen), key=lambda e: e.timing.ratio)
        subjects += [e for e in others if set(e.report.fired) - set(chosen.report.fired)][:1]
    best = (chosen, loop.SessionChoice())
    for subject in subjects:
        graph = subject.candidate.model if subject else baseline.model
        report = subject.report if subject else baseline.compiled.report
        choice = loop.choose_session(graph, report, baseline, target, deadline)
        if choice.timing is not None and (best[1].timing is None or choice.timing.ratio < best[1].timing.ratio):
            best = (subject, choice)
        elif subject is chosen:
            best = (best[0], dataclasses.replace(best[1], tried=best[1].tried + choice.tried))
    return best


def _save_allowance_s(model: ir.Model) -> float:
    """Seconds kept back from the search to save the result (about 1 s per 200 MB of weights)."""
    return 1.0 + onnx_format.weight_bytes(model) / 200e6


def _as_written(candidates, annotated: frozenset[str]):
    """Each candidate as it would be saved: with the input's annotations only (see onnx_format)."""
    for candidate in candidates:
        onnx_format.keep_only_annotations(candidate.model, annotated)
        yield candidate


__all__ = ["optimize", "OptimizeResult", "GraphoptError"]
