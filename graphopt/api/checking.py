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

from graphopt.core import harness, registry
from graphopt.core.errors import GraphoptError
from graphopt.core.measure import Comparison, interleaved
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


def _settings_label(target, model_path) -> str:
    lever = _recommended(target, model_path)
    return f"{lever.label()} (recommended beside {Path(model_path).name})" if lever else "defaults"


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
    tolerances = settings.tolerances()
    # Both models exactly as given (the target lowers what it must, at compile time).
    name, fmt, baseline, candidate = _loaded(baseline_path, candidate_path)
    target = registry.target_of(settings.target, name)
    _check_same_interface(fmt, baseline, candidate)
    # Each model runs with the settings recommended beside it, if any (graphopt optimize writes
    # them there): that is how a user deploys it.
    target_a, target_b = (_with_recommended(target, p) for p in (baseline_path, candidate_path))
    progress("compiling both models")
    compiled_a, compiled_b = target_a.compile(baseline), target_b.compile(candidate)
    if compiled_a.output_names != compiled_b.output_names:
        raise GraphoptError("the models have different outputs; check compares models with the same interface")
    prepared = fmt.copy(baseline)
    fmt.prepare(prepared)
    # A side whose inputs have fixed sizes (optimize --fix-dim) runs only at those: bind them.
    feeds = fmt.feeds(prepared, _fixed_shapes(fmt, baseline, candidate), settings.inputs)
    progress("comparing outputs")
    expected = [compiled_a.run(f) for f in feeds]
    equivalence = harness.equivalence(compiled_a.output_names, expected, compiled_b, feeds, tolerances)
    reasons = []
    if not equivalence.ok:
        bad = equivalence.first_failure()
        reasons.append(f"not equivalent: output {bad.name!r}: {bad.reason}")
    progress("timing (interleaved)")
    a_runs, b_runs = harness.paired((target_a, baseline), (target_b, candidate))
    timing, verdict = sequential_test(
        [harness.runner(c, feeds[0]) for c in a_runs],
        [harness.runner(c, feeds[0]) for c in b_runs],
        settings,
        deadline=start + settings.time_budget_s,
    )
    result = _result(
        baseline_path,
        candidate_path,
        verdict,
        reasons,
        equivalence,
        timing,
        (compiled_a, compiled_b),
        settings,
        start,
        tuple(_settings_label(target, p) for p in (baseline_path, candidate_path)),
    )
    return dataclasses.replace(result, compiler=target.compiler, kernel_noun=target.kernel_noun)


def _result(
    baseline_path, candidate_path, verdict, reasons, equivalence, timing, compiled, settings, start, labels
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
        compiled[0].report,
        compiled[1].report,
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
    verdict = "regression" if timing.ci_low > allowed else "pass" if timing.ci_high < allowed else "inconclusive"
    return timing, verdict
