"""`graphopt check`: is a candidate model equivalent to a baseline and not slower beyond a tolerance?

The timing is the engine's sequential test on interleaved runs (core/measure.interleaved, the one
every decision uses). After a warm-up, baseline and candidate alternate (order flipped every
round); at each look the bootstrap interval of the median ratio candidate/baseline is compared
with the allowed ratio ``1 + max_slowdown``:

- the whole interval above it: a regression (the candidate is slower beyond the tolerance);
- the whole interval below it: a pass;
- otherwise more rounds, until the time budget is spent: inconclusive.

Interim looks use a 99.9% interval and only the final look 95%, so that looking often does not
raise the false-alarm rate above the configured level (see measure.py).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from graphopt.api import auto
from graphopt.core import harness, memory, registry
from graphopt.core.decide import bound
from graphopt.core.errors import GraphoptError
from graphopt.core.measure import Comparison, in_blocks, interleaved
from graphopt.core.protocols import FusionReport, SettingsFile
from graphopt.core.verify import TOLERANCES, Equivalence

TOLERANCE_PROFILES: dict[str, dict[str, tuple[float, float]]] = {
    "default": TOLERANCES,
    "exact": {dtype: (0.0, 0.0) for dtype in TOLERANCES},
    # a candidate converted to a narrower type is judged by that type's tolerance on every output
    "fp16": {dtype: TOLERANCES["float16"] for dtype in TOLERANCES},
    "bf16": {dtype: TOLERANCES["bfloat16"] for dtype in TOLERANCES},
}


@dataclasses.dataclass(frozen=True)
class CheckSettings:
    target: str | None = None  # None: the format's default (ort-cpu for ONNX, xla-cpu for StableHLO)
    max_slowdown: float = 0.02
    confidence: float = 0.95
    inputs: str | None = None
    tolerance_profile: str = "default"
    rtol: float | None = None
    atol: float | None = None
    time_budget_s: float = 60.0
    on_inconclusive: str = "pass"
    min_rounds: int = 30
    check_every: int = 25

    def tolerances(self) -> dict[str, tuple[float, float]]:
        if self.tolerance_profile not in TOLERANCE_PROFILES:
            raise GraphoptError(
                f"unknown tolerance profile {self.tolerance_profile!r}; use {', '.join(TOLERANCE_PROFILES)}"
            )
        profile = dict(TOLERANCE_PROFILES[self.tolerance_profile])
        if self.rtol is not None or self.atol is not None:
            profile = {
                k: (self.rtol if self.rtol is not None else r, self.atol if self.atol is not None else a)
                for k, (r, a) in profile.items()
            }
        return profile


@dataclasses.dataclass
class CheckResult:
    baseline: str
    candidate: str
    verdict: str  # "pass", "regression", "inconclusive"
    reasons: list[str]
    equivalence: Equivalence | None
    timing: Comparison | None
    baseline_report: FusionReport
    candidate_report: FusionReport
    settings: CheckSettings
    seconds: float
    session_settings: tuple[str, str] = ("defaults", "defaults")  # the compiler settings each side ran with
    compiler: str = "ORT"  # what the report calls the target's compiler
    kernel_noun: str = "kernels"  # and what it runs
    notes: tuple[str, ...] = ()  # how it was run, when not the usual way (the memory plan narrowed)

    @property
    def lost_fusions(self) -> dict[str, int]:
        return self.baseline_report.gained_over(self.candidate_report)

    @property
    def gained_fusions(self) -> dict[str, int]:
        return self.candidate_report.gained_over(self.baseline_report)

    def failed(self) -> bool:
        if self.verdict == "inconclusive":
            return self.settings.on_inconclusive == "fail"
        return self.verdict == "regression"


def _recommended(target, model_path):
    """The setting an earlier run recommended beside a model file (None for a model in memory)."""
    is_file = isinstance(model_path, (str, os.PathLike))
    return target.read_lever(model_path) if is_file and isinstance(target, SettingsFile) else None


def _with_recommended(target, model_path):
    lever = _recommended(target, model_path)
    return target.with_lever(lever) if lever else target


def _side_target(target, model_path, named: bool):
    """The target one side runs on: the runtime ``--target auto`` recorded beside it, unless the
    user named a target."""
    if not named and isinstance(model_path, (str, os.PathLike)):
        runtime = auto.recorded_runtime(model_path)
        if runtime is not None:
            return registry.target_for(runtime)
    return target


def _settings_label(target, model_path) -> str:
    lever = _recommended(target, model_path)
    label = f"{lever.label()} (recommended beside {Path(model_path).name})" if lever else "defaults"
    return label if target.compiler == "ORT" else f"{target.compiler}: {label}"


def _loaded(baseline, candidate):
    """(format name, Format, both graphs) for two paths or two models in memory."""
    if isinstance(baseline, (str, os.PathLike)):
        name = registry.format_name(baseline)
        fmt, _ = registry.format_named(name)
        return name, fmt, fmt.load(baseline), fmt.load(candidate)
    name, fmt, _ = registry.format_of(baseline)
    return name, fmt, fmt.from_object(baseline), fmt.from_object(candidate)


def check(baseline_path, candidate_path, settings: CheckSettings | None = None, on_progress=None) -> CheckResult:
    """Is ``candidate_path`` equivalent to ``baseline_path`` and not slower beyond the tolerance?
    Both are files (each run with the settings recommended beside it) or models in memory."""
    start = time.monotonic()
    settings = settings or CheckSettings()
    progress = on_progress or (lambda message: None)
    # Both models exactly as given (the target lowers what it must, at compile time).
    name, fmt, baseline, candidate = _loaded(baseline_path, candidate_path)
    target = registry.target_of(settings.target, name)
    _check_same_interface(fmt, baseline, candidate)
    prepared = fmt.copy(baseline)
    fmt.prepare(prepared)
    # A side whose inputs have fixed sizes (optimize --fix-dim) runs only at those: bind them.
    feeds = fmt.feeds(prepared, _fixed_shapes(fmt, baseline, candidate), settings.inputs)
    # Each model runs on the runtime recorded beside it and with the settings recommended there,
    # if any (graphopt optimize writes them): that is how a user deploys it.
    paths = (baseline_path, candidate_path)
    sides = [_side_target(target, p, settings.target is not None) for p in paths]
    target_a, target_b = (bound(_with_recommended(t, p), feeds) for t, p in zip(sides, paths))
    plan = memory.plan(max(target_a.compiled_bytes(baseline), target_b.compiled_bytes(candidate)))
    reports, equivalence = _compared((target_a, baseline), (target_b, candidate), feeds, settings, plan, progress)
    reasons = [] if equivalence.ok else [_not_equivalent(equivalence)]
    progress("timing (interleaved)" if plan.alive > 1 else "timing (one model alive at a time, blocks A B B A)")
    timing, verdict = _timed((target_a, baseline), (target_b, candidate), feeds[0], settings, plan, start)
    labels = tuple(_settings_label(t, p) for t, p in zip(sides, paths))
    result = _result(*paths, verdict, reasons, equivalence, timing, reports, settings, start, labels)
    same = target_a.compiler == target_b.compiler
    compiler = target_a.compiler if same else f"{target_a.compiler} (baseline) vs {target_b.compiler} (candidate)"
    notes = tuple(n for n in [plan.note()] if n)
    return dataclasses.replace(result, compiler=compiler, kernel_noun=target_b.kernel_noun, notes=notes)


def _compared(side_a, side_b, feeds, settings: CheckSettings, plan, progress):
    """(both fusion reports, the equivalence of B's outputs to A's on every feed), with at most the
    compilations the memory plan allows alive: A is let go before B is made when only one fits."""
    progress("compiling the baseline")
    compiled = side_a[0].compile(side_a[1])
    names, report_a = compiled.output_names, compiled.report
    progress("running the baseline")
    expected = [compiled.run(f) for f in feeds]
    held = compiled if plan.alive > 1 else None  # two alive: B is made beside A, as before
    del compiled
    progress("compiling the candidate")
    compiled = side_b[0].compile(side_b[1])
    if compiled.output_names != names:
        raise GraphoptError("the models have different outputs; check compares models with the same interface")
    progress("comparing outputs")
    equivalence = harness.equivalence(names, expected, compiled, feeds, settings.tolerances())
    del held
    return (report_a, compiled.report), equivalence


def _not_equivalent(equivalence: Equivalence) -> str:
    bad = equivalence.first_failure()
    return f"not equivalent: output {bad.name!r}: {bad.reason}"


def _timed(side_a, side_b, feeds, settings: CheckSettings, plan, start: float) -> tuple[Comparison, str]:
    """The sequential test on fresh compilations of both sides, as wide as the memory plan allows
    (four alive, two, or one at a time in blocks A B B A)."""
    deadline = start + settings.time_budget_s
    if plan.alive == 1:
        timing = in_blocks(*(harness.opener(side, feeds) for side in (side_a, side_b)), budget_s=_left(deadline))
        return timing, _verdict(timing, settings)
    a_runs, b_runs = harness.paired(side_a, side_b, plan.alive // 2)
    runs_a, runs_b = ([harness.runner(c, feeds) for c in runs] for runs in (a_runs, b_runs))
    return sequential_test(runs_a, runs_b, settings, deadline=deadline)


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _result(
    baseline_path, candidate_path, verdict, reasons, equivalence, timing, reports, settings, start, labels
) -> CheckResult:
    allowed = 1 + settings.max_slowdown
    if verdict == "regression":
        reasons.append(
            f"slower: {timing.ratio:.3f}x the baseline's latency (95% CI {timing.ci_low:.3f}-{timing.ci_high:.3f}), "
            f"above the allowed {allowed:.3f}x"
        )
    if reasons:
        verdict = "regression"
    elif verdict == "inconclusive":
        reasons.append(
            f"inconclusive: ratio {timing.ratio:.3f} (95% CI {timing.ci_low:.3f}-{timing.ci_high:.3f}) "
            f"straddles the allowed {allowed:.3f}x after {timing.rounds} rounds"
        )
    return CheckResult(
        _name(baseline_path),
        _name(candidate_path),
        verdict,
        reasons,
        equivalence,
        timing,
        reports[0],
        reports[1],
        settings,
        time.monotonic() - start,
        labels,
    )


def _name(model) -> str:
    return str(model) if isinstance(model, (str, os.PathLike)) else f"<{type(model).__name__} in memory>"


def _fixed_shapes(fmt, *graphs) -> dict[str, tuple[int, ...]]:
    """Input shapes that are fully static in one of ``graphs``."""
    fixed = {}
    for graph in graphs:
        for spec in fmt.input_specs(graph):
            if all(isinstance(d, int) for d in spec.dims):
                fixed.setdefault(spec.name, tuple(spec.dims))
    return fixed


def _check_same_interface(fmt, baseline, candidate) -> None:
    a = [(s.name, s.dtype) for s in fmt.input_specs(baseline)]
    b = [(s.name, s.dtype) for s in fmt.input_specs(candidate)]
    if a != b:
        raise GraphoptError(f"the models take different inputs: baseline {a}, candidate {b}")


def sequential_test(runs_a: list, runs_b: list, settings: CheckSettings, deadline: float) -> tuple[Comparison, str]:
    """Interleave (measure.interleaved) until the interval clears ``1 + max_slowdown`` on one
    side, or time runs out; the verdict reads the final interval at ``settings.confidence``.

    ``runs_a`` / ``runs_b`` are one runner per session, used in turn (see measure.py).
    """
    allowed = 1 + settings.max_slowdown
    timing = interleaved(
        runs_a,
        runs_b,
        min_rounds=settings.min_rounds,
        max_rounds=None,
        budget_s=max(0.0, deadline - time.monotonic()),
        check_every=settings.check_every,
        decide_at=allowed,
        confidence=settings.confidence,
    )
    return timing, _verdict(timing, settings)


def _verdict(timing: Comparison, settings: CheckSettings) -> str:
    allowed = 1 + settings.max_slowdown
    return "regression" if timing.ci_low > allowed else "pass" if timing.ci_high < allowed else "inconclusive"
