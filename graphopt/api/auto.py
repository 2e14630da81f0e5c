"""`graphopt optimize --target auto` for ONNX: the faster runtime per model, each with its own best
rewrite, and a record beside the output of what it was measured on.

Users pick a runtime per model, and on a CPU ONNX Runtime is not always the faster one (OpenVINO
runs some detectors and OCR models 8-24% faster as is; graphopt's ORT output beats both on
transformers). So each runtime of AUTO_TARGETS gets a ``decide()`` of its own on the model (its
rules, its levers; the budget split between them), and then:

1. the two runtimes as is are timed against each other (interleaved), which says which one is
   the faster as is: the bar;
2. each runtime's result (its kept graph at its recommended settings) is timed against that bar;
3. the result faster than the bar with confidence and fastest wins; with none, the bar itself (the
   input on the faster runtime) is the output. So auto is never slower than the faster runtime as is.

The output is written with its runtime's settings file and ``<model>.runtime.json``: which runtime
and settings it was measured with, what it was measured against, and how to load it with either
runtime. ``graphopt check`` runs each side on the runtime recorded beside it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from graphopt.core import harness, registry
from graphopt.core.atomic import atomic_path
from graphopt.core.budget import DEFAULT_S, MEASURE_MAX_S
from graphopt.core.errors import GraphoptError
from graphopt.core.judge import MIN_GAIN
from graphopt.core.measure import Comparison

AUTO = "auto"
AUTO_TARGETS = ("ort-cpu", "openvino-cpu")
FINAL_SHARE = 0.2  # of the budget, kept for the timings between runtimes
LOAD = {
    "ort-cpu": "onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])"
    " (session settings, if any: <model>.ort-session.json)",
    "openvino-cpu": "core = openvino.Core(); m = core.read_model(path); m.reshape(input_shapes);"
    " core.compile_model(m, 'CPU', properties) (from <model>.openvino.json)",
}


@dataclasses.dataclass
class AutoChoice:
    """What auto measured: each runtime's own result, the bar, and each result against the bar."""

    runtime: str  # the target name of the output's runtime
    sides: dict  # target name -> OptimizeResult
    as_is: Comparison | None  # the second runtime as is over the first as is
    against_bar: dict[str, Comparison | None]  # target name -> its result over the bar (None: it is the bar)
    bar: str = ""  # the runtime faster as is
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        timing = lambda t: None if t is None else {"ratio": t.ratio, "ci95": [t.ci_low, t.ci_high]}  # noqa: E731
        contenders = {}
        for name, result in self.sides.items():
            final = result.chosen.final_timing if result.chosen else None
            contenders[name] = {
                "kept_original": result.kept_original,
                "ratio_vs_own_original": timing(final),
                "kernels": [result.baseline.report.kernels, (result.chosen or result.baseline).report.kernels],
                "over_faster_as_is": timing(self.against_bar.get(name)),
            }
        first, second = AUTO_TARGETS[: len(self.sides)] + (None,) * (2 - len(self.sides))
        return {
            "runtime": self.runtime,
            "faster_as_is": self.bar,
            f"{second}_over_{first}_as_is": timing(self.as_is),
            "contenders": contenders,
            "notes": self.notes,
        }


def available_targets() -> tuple[list, list[str]]:
    """The targets auto can judge here, and notes for those it cannot (an extra not installed)."""
    targets, notes = [], []
    for name in AUTO_TARGETS:
        try:
            targets.append(registry.target_for(name))
        except GraphoptError as error:
            notes.append(f"auto: {name} left out: {error}")
    return targets, notes


def side_budget(asked_budget: float | None, sides: int) -> float | None:
    """Each runtime's share of the user's budget (None: each automatic, fitted to the model)."""
    if asked_budget is None:
        return None
    return asked_budget * (1 - FINAL_SHARE) / sides


def choose(results: dict, seconds: float) -> AutoChoice:
    """Time the runtimes as is; the faster is the bar. The bar's own result was already judged
    against it (its decide's confirmed timing); the other's result is timed against it now. The
    fastest of those faster with confidence wins, else the bar as is."""
    names = list(results)
    feeds = results[names[0]].baseline.feeds[0]
    original = {name: (r.decision.compiled_with, r.original) for name, r in results.items()}
    as_is = harness.time_pair(original[names[0]], original[names[1]], feeds, seconds) if len(names) > 1 else None
    bar = names[1] if as_is is not None and as_is.ratio < 1 else names[0]
    against = {bar: results[bar].chosen.final_timing if results[bar].chosen else None}
    for name in names:
        if name != bar:
            against[name] = harness.time_pair(
                original[bar], (_with_lever(results[name]), results[name].model), feeds, seconds
            )
    winners = [n for n, t in against.items() if t is not None and t.candidate_faster(MIN_GAIN)]
    runtime = min(winners, key=lambda n: against[n].ratio) if winners else bar
    return AutoChoice(runtime, results, as_is, against, bar)


def _with_lever(result):
    target, lever = result.decision.compiled_with, result.lever.lever
    return target.with_lever(lever) if lever is not None and not lever.is_default else target


def final_seconds(asked_budget: float | None) -> float:
    """Seconds for each timing between runtimes."""
    share = (asked_budget or DEFAULT_S) * FINAL_SHARE / 2
    return max(2.0, min(MEASURE_MAX_S, share))


def record_path(model_path) -> Path:
    path = Path(model_path)
    return path.with_name(path.name.removesuffix(".onnx") + ".runtime.json")


def write_record(model_path, choice: AutoChoice, settings_path: str | None) -> str:
    """``<model>.runtime.json``: the runtime and settings the output was measured with."""
    data = {
        "runtime": choice.runtime,
        "settings_file": Path(settings_path).name if settings_path else None,
        "measured": choice.to_dict(),
        "load": {name: LOAD[name] for name in AUTO_TARGETS},
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    path = record_path(model_path)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1) + "\n")
    return str(path)


def recorded_runtime(model_path) -> str | None:
    """The runtime recorded beside a model by an earlier ``--target auto`` run, if any."""
    path = record_path(model_path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())["runtime"]
    except (ValueError, KeyError):
        raise GraphoptError(f"{path} is not a runtime record graphopt wrote") from None
