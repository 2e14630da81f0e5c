"""`graphopt optimize`: the whole path for one ONNX model, as one straight line.

load -> enumerate sites -> policy proposes -> rewrite -> ORT compiles and reports fusions ->
verify -> measure -> accept the best candidate or keep the original -> save + report.

The output file is always a model ORT can run: the best candidate when it is equivalent and
faster with confidence, otherwise the input's bytes unchanged, with the reason in the report.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir

from graphopt import inputs as input_gen
from graphopt import specialize
from graphopt.errors import GraphoptError, InputGenerationError
from graphopt.formats import onnx_format
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
    kept_original: bool
    reason: str
    baseline: loop.Baseline
    evaluations: list[loop.Evaluation]
    chosen: loop.Evaluation | None
    sites_found: dict[str, int]
    near_misses: dict[str, int]  # per rule: places where its pattern partly matched or its check failed
    notes: list[str]
    seconds: float
    session: loop.SessionChoice = dataclasses.field(default_factory=loop.SessionChoice)
    session_path: str | None = None  # where the recommended ORT session settings were written


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
) -> OptimizeResult:
    """``shapes`` binds inputs' sizes for verification only; ``fix_dims`` / ``fix_shapes`` fix them
    in the graph (see graphopt.specialize): the output then accepts only those shapes."""
    start = time.monotonic()
    target = target or OrtTarget()
    rules = rules if rules is not None else all_rules()
    progress = on_progress or (lambda message: None)
    notes: list[str] = []

    progress("loading")
    original = onnx_format.load(model_path)  # the baseline is the model as the user gave it
    input_ir_version = original.ir_version
    annotated = onnx_format.annotated_values(original)
    model = prepare(onnx_format.copy(original), notes)  # names and inferred shapes, for the rules
    # Fixed shapes are applied to each candidate after its rewrites: the rules match the dynamic
    # graph they were written for (folded shape arithmetic hides the exporters' patterns).
    fixed_model = onnx_format.copy(model)
    fixed = specialize.fix_shapes(fixed_model, fix_dims or {}, fix_shapes or {})
    notes += fixed
    if fixed:
        _check_agrees_with_fixed(fixed_model, shapes or {})
    feeds = verification_feeds(fixed_model, shapes, inputs_file)
    progress("compiling the original with onnxruntime")
    baseline = loop.make_baseline(original, target, feeds)
    sites = find_sites(model, rules)
    counts: dict[str, int] = {}
    for site in sites:
        counts[site.rule] = counts.get(site.rule, 0) + 1

    missed: dict[str, int] = {}
    for miss in near_misses(model, rules, sites):
        missed[miss.rule] = missed.get(miss.rule, 0) + 1

    judged: list[loop.Evaluation] = []  # the policy reads what has been measured so far
    proposals = POLICIES[policy]().propose(model, rules, judged)
    if fixed:  # each candidate fixed in turn, and the fixed input a candidate of its own
        proposals = _after_first(_fixed(proposals, fix_dims or {}, fix_shapes or {}), Candidate("fixed shapes only", fixed_model, []))
    candidates = _as_written(proposals, annotated)
    # The budget is the whole command's: leave time to write the result, and a quarter of it
    # (at most 15 s) for ORT's session settings once the graph is chosen.
    deadline = start + budget_s - _save_allowance_s(model)
    graph_deadline = deadline - min(15.0, budget_s / 4)
    evaluations = loop.search(candidates, baseline, target, graph_deadline, on_progress=progress, evaluations=judged)
    chosen = loop.best(evaluations)
    unconfirmed = None
    if chosen is not None:
        progress("timing the best candidate again")
        unconfirmed = loop.confirm(chosen, evaluations, baseline, target, deadline)
        if unconfirmed:
            chosen = None
    if chosen is not None:
        confirmed = " (confirmed by a second timing)" if chosen.selection_timing else ""
        reason = f"kept candidate '{chosen.candidate.label}': {chosen.timing.speedup:.3f}x faster{confirmed}"
    elif unconfirmed:
        reason = unconfirmed
    elif not evaluations:
        reason = "no rule applies to this model"
    else:
        reason = "; ".join(f"{e.candidate.label}: {e.rejected}" for e in evaluations)
    progress("timing ORT's own fusions on the chosen graph")
    chosen, session = _choose_session(chosen, evaluations, original, baseline, target, deadline)
    if not session.settings.is_default:
        label = f"candidate '{chosen.candidate.label}'" if chosen else "the original graph"
        reason = f"kept {label} run with ORT {session.settings.label()}: {session.timing.speedup:.3f}x faster than the original at ORT's defaults"
    session_path = None
    if output_path is not None:
        progress("saving")
        stale = ort_session.settings_path(output_path)
        if session.settings.is_default:
            stale.unlink(missing_ok=True)  # an earlier run's advice does not apply to this output
        else:
            ort_session.write(stale, session.settings, session.timing)
            session_path = str(stale)
        if chosen is not None:
            onnx_format.save(chosen.candidate.model, output_path)
        elif onnx_format.has_external_data(model):
            # Copying the .onnx file alone would leave its weights behind: rewrite them beside it.
            original = onnx_format.load(model_path)
            original.ir_version = model.ir_version
            onnx_format.save(original, output_path)
        elif model.ir_version != input_ir_version:
            # The input unchanged but for its IR version, which ORT could not have loaded.
            _write_with_ir_version(model_path, output_path, model.ir_version)
        else:
            _copy_atomically(model_path, output_path)
    return OptimizeResult(
        model_path=str(model_path),
        output_path=None if output_path is None else str(output_path),
        kept_original=chosen is None,
        reason=reason,
        baseline=baseline,
        evaluations=evaluations,
        chosen=chosen,
        sites_found=counts,
        near_misses=missed,
        notes=notes,
        seconds=time.monotonic() - start,
        session=session,
        session_path=session_path,
    )


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


def _choose_session(chosen, evaluations, original, baseline, target, deadline):
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
        graph = subject.candidate.model if subject else original
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


def _write_with_ir_version(source, destination, ir_version: int) -> None:
    proto = onnx.load(str(source), load_external_data=False)
    proto.ir_version = ir_version
    with onnx_format.atomic_path(destination) as tmp:
        onnx.save(proto, str(tmp))


def _copy_atomically(source, destination) -> None:
    if Path(source).resolve() == Path(destination).resolve():
        return
    with onnx_format.atomic_path(destination) as tmp:
        shutil.copyfile(source, tmp)


__all__ = ["optimize", "OptimizeResult", "GraphoptError"]
