"""The tools people use instead of graphopt, each as a function from an ONNX file to an ONNX file.

Every contender's result is run by ORT at ENABLE_ALL (except the ORT-level contenders, which
run the original at their own level), so the table answers "what do I gain on top of what ORT
already does".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import onnx
import onnx_ir as ir

from bench.workloads import Workload


@dataclasses.dataclass(frozen=True)
class Contender:
    name: str
    # (input, output, workload) -> facts for the table (graphopt: what it kept), or None; None: the input as is
    transform: Callable[[Path, Path, Workload], dict | None] | None
    level: str = "all"  # the ORT graph optimization level the result runs at


def _ort_transformers(src: Path, dst: Path, w: Workload) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    if w.ort_model_type is None:
        raise ValueError("not a transformer model")
    optimized = optimize_model(
        str(src), model_type=w.ort_model_type, num_heads=w.num_heads, hidden_size=w.hidden_size, opt_level=0
    )
    optimized.save_model_to_file(str(dst))


def _onnxscript_optimizer(src: Path, dst: Path, w: Workload) -> None:
    import onnxscript.optimizer

    _save_like(onnxscript.optimizer.optimize(ir.load(src)), dst, src)


def _save_like(model: ir.Model, dst: Path, src: Path) -> None:
    """A tool's result with its weights beside it, external when the input's were: ``ir.save``
    alone would leave them pointing at the input's data file, in another folder."""
    from graphopt.formats.onnx import files as onnx_files

    onnx_files.save(model, dst, external_data=onnx_files.has_external_data(onnx_files.load(src)))


def _onnxscript_rewriter(src: Path, dst: Path, w: Workload) -> None:
    import onnxscript.rewriter

    _save_like(onnxscript.rewriter.rewrite(ir.load(src)), dst, src)


def _onnxscript_ort_fusions(src: Path, dst: Path, w: Workload) -> None:
    import onnxscript.optimizer
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    model = onnxscript.optimizer.optimize(ir.load(src))
    fused, _counts = optimize_for_ort(model)
    _save_like(fused, dst, src)


def _onnxsim(src: Path, dst: Path, w: Workload) -> None:
    import onnxsim

    model, ok = onnxsim.simplify(onnx.load(str(src)))
    if not ok:
        raise RuntimeError("onnxsim could not validate its result")
    onnx.save(model, str(dst))


def _onnxslim(src: Path, dst: Path, w: Workload) -> None:
    import onnxslim

    onnx.save(onnxslim.slim(onnx.load(str(src))), str(dst))


def _onnxoptimizer(src: Path, dst: Path, w: Workload) -> None:
    import onnxoptimizer

    onnx.save(onnxoptimizer.optimize(onnx.load(str(src))), str(dst))


def _graphopt(policy: str, budget_s: float):
    def run(src: Path, dst: Path, w: Workload) -> None:
        from graphopt.api.files import optimize

        return _kept(
            optimize(src, dst, policy=policy, inputs_file=str(w.inputs) if w.inputs else None, budget_s=budget_s)
        )

    return run


def _kept(result) -> dict:
    """What graphopt kept, for the table: the candidate's label (or none) and the session settings."""
    return {
        "kept": result.chosen.candidate.label if result.chosen else None,
        "session_settings": result.lever.lever.label() if result.lever.lever else "ORT defaults",
    }


def _graphopt_fixed(budget_s: float):
    """graphopt-search with the serving shapes bound (``--fix-shape``): every input whose dynamic
    dimensions are not a cache length (past/total) is fixed to the workload's input shape, as a
    user serving one batch size and sequence length would; the decode step keeps its cache dynamic."""

    def run(src: Path, dst: Path, w: Workload) -> None:
        import numpy as np

        from graphopt.api.files import optimize
        from graphopt.formats.onnx import files as onnx_files
        from graphopt.formats.onnx.inputs import input_specs

        with np.load(w.inputs) as data:
            sizes = {k: data[k].shape for k in data.files}
        fixed = {}
        for spec in input_specs(onnx_files.load(src)):
            symbols = [d for d in spec.dims if not isinstance(d, int)]
            if symbols and all(isinstance(d, str) and "past" not in d and "total" not in d for d in symbols):
                fixed[spec.name] = tuple(sizes[spec.name])
        return _kept(optimize(src, dst, inputs_file=str(w.inputs), budget_s=budget_s, fix_shapes=fixed))

    return run


def contenders(graphopt_budget_s: float) -> list[Contender]:
    return [
        Contender("ort-disable", None, "disable"),
        Contender("ort-basic", None, "basic"),
        Contender("ort-extended", None, "extended"),
        Contender("ort-all", None, "all"),
        Contender("ort-transformers", _ort_transformers),
        Contender("onnxscript-optimizer", _onnxscript_optimizer),
        Contender("onnxscript-rewriter", _onnxscript_rewriter),
        Contender("onnxscript-ort-fusions", _onnxscript_ort_fusions),
        Contender("onnxsim", _onnxsim),
        Contender("onnxslim", _onnxslim),
        Contender("onnxoptimizer", _onnxoptimizer),
        Contender("graphopt-greedy", _graphopt("greedy", graphopt_budget_s)),
        Contender("graphopt-search", _graphopt("search", graphopt_budget_s)),
        Contender("graphopt-learned", _graphopt("learned", graphopt_budget_s)),
        Contender("graphopt-fixed", _graphopt_fixed(graphopt_budget_s)),
    ]
