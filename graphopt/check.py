"""`graphopt check`: is a candidate model equivalent to a baseline and not slower beyond a tolerance?

The timing is a sequential test on interleaved runs. After a warm-up, baseline and candidate
alternate (order flipped every round); at each look the 95% bootstrap interval of the median
ratio candidate/baseline is compared with the allowed ratio ``1 + max_slowdown``:

- the whole interval above it: a regression (the candidate is slower beyond the tolerance);
- the whole interval below it: a pass;
- otherwise more rounds, until the time budget is spent: inconclusive.

Interim looks use a 99.9% interval and only the final look 95%, so that looking often does not
raise the false-alarm rate above the configured level (see measure.py).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from graphopt.errors import GraphoptError
from graphopt.formats import onnx_format
from graphopt.measure import INTERIM_CONFIDENCE, Comparison, alternate, bootstrap_ci, compare_samples
from graphopt.optimize import prepare, verification_feeds
from graphopt.search.loop import runner
from graphopt.search import session as ort_session
from graphopt.targets.onnxruntime import FusionReport, OrtTarget, paired_sessions
from graphopt.verify import TOLERANCES, Equivalence, compare

TOLERANCE_PROFILES: dict[str, dict[str, tuple[float, float]]] = {
    "default": TOLERANCES,
    "exact": {dtype: (0.0, 0.0) for dtype in TOLERANCES},
    # a candidate converted to a narrower type is judged by that type's tolerance on every output
    "fp16": {dtype: TOLERANCES["float16"] for dtype in TOLERANCES},
    "bf16": {dtype: TOLERANCES["bfloat16"] for dtype in TOLERANCES},
}


@dataclasses.dataclass(frozen=True)
class CheckSettings:
    target: str = "ort-cpu"
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
            raise GraphoptError(f"unknown tolerance profile {self.tolerance_profile!r}; use {', '.join(TOLERANCE_PROFILES)}")
        profile = dict(TOLERANCE_PROFILES[self.tolerance_profile])
        if self.rtol is not None or self.atol is not None:
            profile = {k: (self.rtol if self.rtol is not None else r, self.atol if self.atol is not None else a) for k, (r, a) in profile.items()}
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
    session_settings: tuple[str, str] = ("ORT defaults", "ORT defaults")  # what each side ran with

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


def _with_recommended(target: OrtTarget, model_path) -> OrtTarget:
    settings = ort_session.read(model_path)
    return settings.apply(target) if settings else target


def _settings_label(model_path) -> str:
    settings = ort_session.read(model_path)
    return f"ORT {settings.label()} (from {ort_session.settings_path(model_path).name})" if settings else "ORT defaults"


def check(baseline_path: str | Path, candidate_path: str | Path, settings: CheckSettings, on_progress=None) -> CheckResult:
    from graphopt.targets import target_from_name

    start = time.monotonic()
    progress = on_progress or (lambda message: None)
    target: OrtTarget = target_from_name(settings.target)
    tolerances = settings.tolerances()
    # Both models exactly as given (only their IR version is lowered for ORT, at compile time).
    baseline = onnx_format.load(baseline_path)
    candidate = onnx_format.load(candidate_path)
    _check_same_interface(baseline, candidate)
    # Each model runs with the ORT session settings recommended beside it, if any (graphopt
    # optimize writes <model>.ort-session.json): that is how a user deploys it.
    target_a, target_b = (_with_recommended(target, p) for p in (baseline_path, candidate_path))
    progress("compiling both models")
    compiled_a, compiled_b = target_a.compile(baseline), target_b.compile(candidate)
    # A side whose inputs have fixed sizes (optimize --fix-dim) runs only at those: bind them.
    feeds = verification_feeds(prepare(onnx_format.copy(baseline), []), _fixed_shapes(baseline, candidate), settings.inputs)
    names = [o.name for o in compiled_a.session.get_outputs()]
    progress("comparing outputs")
    equivalence = None
    for f in feeds:
        this = compare(names, compiled_a.run(f), compiled_b.run(f), tolerances)
        equivalence = this if equivalence is None else equivalence.merged(this)
    reasons = []
    if not equivalence.ok:
        bad = equivalence.first_failure()
        reasons.append(f"not equivalent: output {bad.name!r}: {bad.reason}")
    progress("timing (interleaved)")
    a_sessions, b_sessions = paired_sessions((target_a, baseline), (target_b, candidate))
    timing, verdict = sequential_test(
        [runner(s, feeds[0]) for s in a_sessions], [runner(s, feeds[0]) for s in b_sessions], settings, deadline=start + settings.time_budget_s
    )
    allowed = 1 + settings.max_slowdown
    if verdict == "regression":
        reasons.append(
            f"slower: {timing.ratio:.3f}x the baseline's latency (95% CI {timing.ci_low:.3f}-{timing.ci_high:.3f}), above the allowed {allowed:.3f}x"
        )
    if reasons:
        verdict = "regression"
    elif verdict == "inconclusive":
        reasons.append(
            f"inconclusive: ratio {timing.ratio:.3f} (95% CI {timing.ci_low:.3f}-{timing.ci_high:.3f}) straddles the allowed {allowed:.3f}x after {timing.rounds} rounds"
        )
    return CheckResult(str(baseline_path), str(candidate_path), verdict, reasons, equivalence, timing,
                       compiled_a.report, compiled_b.report, settings, time.monotonic() - start,
                       tuple(_settings_label(p) for p in (baseline_path, candidate_path)))  # fmt: skip


def _fixed_shapes(*models) -> dict[str, tuple[int, ...]]:
    """Input shapes that are fully static in one of ``models``."""
    fixed = {}
    for model in models:
        for value in model.graph.inputs:
            if value.shape is not None and all(isinstance(d, int) for d in value.shape):
                fixed.setdefault(value.name, tuple(value.shape))
    return fixed


def _check_same_interface(baseline, candidate) -> None:
    a = [(v.name, v.dtype) for v in baseline.graph.inputs if v.name not in baseline.graph.initializers]
    b = [(v.name, v.dtype) for v in candidate.graph.inputs if v.name not in candidate.graph.initializers]
    if a != b:
        raise GraphoptError(f"the models take different inputs: baseline {a}, candidate {b}")
    if [v.name for v in baseline.graph.outputs] != [v.name for v in candidate.graph.outputs]:
        raise GraphoptError("the models have different outputs; check compares models with the same interface")


def sequential_test(runs_a: list, runs_b: list, settings: CheckSettings, deadline: float, warmup: int = 5) -> tuple[Comparison, str]:
    """Interleave until the interval clears ``1 + max_slowdown`` on one side, or time runs out.

    ``runs_a`` / ``runs_b`` are one runner per session, used in turn (see measure.py).
    """
    allowed = 1 + settings.max_slowdown
    a_times, b_times = [], []
    for a, b in alternate(runs_a, runs_b, warmup):
        a_times.append(a)
        b_times.append(b)
        rounds = len(a_times)
        out_of_time = time.monotonic() > deadline
        if rounds < settings.min_rounds or (rounds % settings.check_every and not out_of_time):
            continue
        confidence = settings.confidence if out_of_time else max(settings.confidence, INTERIM_CONFIDENCE)
        low, high = bootstrap_ci(np.asarray(b_times) / np.asarray(a_times), confidence=confidence, resamples=1000)
        if low > allowed or high < allowed or out_of_time:
            result = compare_samples(a_times, b_times, confidence=settings.confidence)
            verdict = "regression" if low > allowed else "pass" if high < allowed else "inconclusive"
            return result, verdict
