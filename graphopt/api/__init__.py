"""The Python API, as users of onnxscript's optimizer or ORT's ``optimize_model`` expect:

    result = graphopt.optimize("model.onnx")                 # or an onnx.ModelProto, an onnx_ir.Model,
    result = graphopt.optimize(proto, target="ort-cpu")      # StableHLO text, a jax.export.Exported
    result.model, result.decision, result.report()           # nothing written unless asked (output=)
    graphopt.check("base.onnx", "candidate.onnx").verdict     # "pass", "regression", "inconclusive"

The format follows the object (or the file's suffix) and the default target follows the format
(ORT for ONNX, XLA for StableHLO). Both go through the same engine as the CLI.
"""

from __future__ import annotations

import os
import time

from graphopt.api.checking import CheckResult, CheckSettings
from graphopt.api.files import OptimizeResult, Request, optimize_graph
from graphopt.core import registry
from graphopt.core.budget import DEFAULT_S
from graphopt.core.errors import UsageError
from graphopt.core.progress import Reporter


def optimize(
    model,
    *,
    target=None,
    budget: float | None = None,
    inputs=None,
    policy: str | None = None,
    rules: list[str] | None = None,
    output=None,
    on_progress=None,
) -> OptimizeResult:
    """Optimize ``model`` (a path, or a model in memory) for ``target`` within ``budget`` seconds
    (None: automatic, 60 s raised for a large model to what one candidate takes, up to 240 s).

    ``inputs``: a ``.npz`` path or a dict of input name -> array to verify and time on (else
    generated). ``rules``: rule names to use (default every rule of the format). ``output``: a
    path to write the result to (files only; the model's weights go beside it). The result's
    ``model`` is the kept graph (onnx_ir.Model, StableHloModule), or the input when none beat it."""
    from graphopt.api import files

    feeds = [dict(inputs)] if isinstance(inputs, dict) else None
    inputs_file = str(inputs) if inputs is not None and feeds is None else None
    asked = dict(policy=policy or registry.DEFAULT_POLICY, inputs_file=inputs_file, feeds=feeds, budget_s=budget)
    if _is_path(model):
        names = registry.rule_families(registry.format_name(model)).rules_by_name(rules) if rules else None
        return files.optimize(model, output, target=target, rules=names, on_progress=on_progress, **asked)
    start = time.monotonic()
    name, fmt, registered = registry.format_of(model)
    if output is not None:
        raise UsageError("output= writes files optimized from files; save result.model yourself")
    target = registry.target_of(target, name)
    chosen = registry.rule_families(name).rules_by_name(rules) if rules else None
    request = Request(target=target, rules=chosen, **asked)
    result, _ = optimize_graph(
        fmt,
        registered,
        fmt.from_object(model),
        target,
        request,
        Reporter(on_progress, start + (budget or DEFAULT_S)),
        start,
        f"<{type(model).__name__} in memory>",
    )
    result.seconds = time.monotonic() - start
    return result


def _is_path(model) -> bool:
    """A path, not a model: StableHLO text is a str too, and it holds a function."""
    return isinstance(model, os.PathLike) or (isinstance(model, str) and "func.func" not in model)


def check(
    baseline,
    candidate,
    *,
    target: str | None = None,
    max_slowdown: float = 0.02,
    inputs: str | None = None,
    time_budget: float = 60.0,
    **settings,
) -> CheckResult:
    """Is ``candidate`` equivalent to ``baseline`` and not slower by more than ``max_slowdown``?
    Two paths (each run with the settings recommended beside it) or two models in memory; the
    other CheckSettings fields (tolerance_profile, rtol, atol, confidence...) by keyword."""
    from graphopt.api import checking

    chosen = CheckSettings(
        target=target, max_slowdown=max_slowdown, inputs=inputs, time_budget_s=time_budget, **settings
    )
    return checking.check(baseline, candidate, chosen)


__all__ = ["CheckResult", "CheckSettings", "OptimizeResult", "check", "optimize"]
