"""`python -m bench --llm --decode FOLDER...`: KV-cache decoders as optimum exports them, at the
step users time (one new token after a cache of 127 and of 511) and at a 128-token prefill,
graphopt beside the tools a user would pick instead.

Each FOLDER is an ``optimum-cli export onnx --task text-generation-with-past`` output (made by
models/optimum_decoders.py in its own environment). Contenders, each a file run by ORT at
ENABLE_ALL and compared with the export as is:

- ``onnxscript``: onnxscript's optimizer, then its ORT fusions (``optimize_for_ort``);
- ``ort-transformers``: ORT's transformers optimizer (``model_type="gpt2"``: it has no LLaMA type);
- ``graphopt``: ``graphopt optimize`` with the defaults (a child process: wall time and peak RSS);
- ``graphopt-step``: the same with ``--fix-dim sequence_length=1``, a decode-step-only model
  (timed at the decode steps only: it accepts one new token);
- ``graphopt-batch1``: the same with ``--fix-dim batch_size=1``: prefill and decode, one sequence.

``--builder MODEL`` adds onnxruntime-genai's model builder output for the same config (already
fused: GroupQueryAttention, SkipSimplifiedLayerNormalization, and MatMulNBits at int4): its decode
steps timed against the export as is and against graphopt's outputs, each side on its own inputs
(the two take different ones), interleaved in one process.

Every other comparison is ``graphopt.check`` (equivalence at verify's float32 tolerances on the shape
timed, then interleaved timing: ratio to the export as is, median and 95% interval). Rows are
appended to ``--out`` (JSON lines) and printed as a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bench.llm import measured

SHAPES = {  # name -> (batch, past, new tokens)
    "decode-127": (1, 127, 1),
    "decode-511": (1, 511, 1),
    "prefill-128": (1, 0, 128),
}
STEP_ONLY = {"graphopt-step"}  # contenders whose output accepts one new token only


def generated(model, shape: str) -> dict[str, np.ndarray]:
    """Inputs for ``model`` (loaded by graphopt, so with the sizes a genai_config.json beside it
    gives) at ``shape`` of SHAPES, from graphopt's own input generator."""
    from graphopt.formats.onnx import files, inputs

    batch, past, new = SHAPES[shape]
    sizes = (("batch", batch), ("past", past), ("", new))
    specs = inputs.input_specs(model)
    return inputs.generate(model, inputs.bind_dims(specs, None, sizes, model.meta.get(files.DIMENSION_HINTS)))


def feeds_files(model_path: Path, work: Path) -> dict[str, Path]:
    """One .npz of generated inputs per shape of SHAPES."""
    from graphopt.formats.onnx import files

    model = files.load(model_path)
    paths = {name: work / f"{name}.npz" for name in SHAPES}
    for name, path in paths.items():
        np.savez(path, **generated(model, name))
    return paths


def _onnxscript(src: Path, dst: Path) -> dict:
    import onnx_ir as ir
    import onnxscript.optimizer
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    fused, counts = optimize_for_ort(onnxscript.optimizer.optimize(ir.load(src)))
    external = src.with_suffix(".onnx.data").exists()  # weights beside the graph stay beside it
    ir.save(fused, dst, external_data=dst.name + ".data" if external else None)
    return {"fusions": {k: v for k, v in counts.items() if v}}


def _ort_transformers(src: Path, dst: Path, heads: int | None = None, hidden: int | None = None) -> dict:
    """ORT's transformers optimizer; heads and hidden size from ``config.json`` beside ``src``
    unless given."""
    from onnxruntime.transformers.optimizer import optimize_model

    if heads is None:
        config = json.loads((src.parent / "config.json").read_text())
        heads, hidden = config["num_attention_heads"], config["hidden_size"]
    optimized = optimize_model(str(src), model_type="gpt2", num_heads=heads, hidden_size=hidden, opt_level=0)
    optimized.save_model_to_file(str(dst), use_external_data_format=src.with_suffix(".onnx.data").exists())
    return {}


def _graphopt(*extra: str):
    def run(src: Path, dst: Path) -> dict:
        report = dst.with_suffix(".json")
        command = [sys.executable, "-m", "graphopt", "optimize", str(src), "-o", str(dst), "--report", str(report)]
        row = measured([*command, *extra], dst.with_suffix(".log"), 1800)
        if report.exists():
            data = json.loads(report.read_text())
            row |= {"judged": len(data.get("candidates", [])), "reason": data.get("reason")}
        return row

    return run


CONTENDERS = {
    "onnxscript": _onnxscript,
    "ort-transformers": _ort_transformers,
    "graphopt": _graphopt(),
    "graphopt-step": _graphopt("--fix-dim", "sequence_length=1"),
    "graphopt-batch1": _graphopt("--fix-dim", "batch_size=1"),
}


def compare(base: Path, candidate: Path, feeds: Path) -> dict:
    import graphopt

    try:
        result = graphopt.check(str(base), str(candidate), inputs=str(feeds), time_budget=30.0)
    except Exception as error:  # a contender whose output ORT cannot run
        return {"error": str(error).splitlines()[0][:200]}
    t = result.timing
    row = {"equivalent": bool(result.equivalence and result.equivalence.ok), "kernels": result.candidate_report.kernels}
    if t is not None:
        row |= {"ratio": round(t.ratio, 3), "ci95": [round(t.ci_low, 3), round(t.ci_high, 3)]}
        row |= {"base_ms": round(t.baseline_s * 1e3, 3), "ms": round(t.candidate_s * 1e3, 3)}
    return row


def _session_and_feeds(path: Path, shape: str):
    """An ORT session (ENABLE_ALL) for ``path`` and generated inputs at ``shape`` of SHAPES."""
    from graphopt.formats.onnx import files
    from graphopt.targets.onnxruntime import OrtTarget

    model = files.load(path)
    return OrtTarget().compile(model, report=False), generated(model, shape)


def versus(baseline: Path, candidate: Path, shape: str, seconds: float = 20.0) -> dict:
    """``candidate``'s latency over ``baseline``'s at ``shape``, each on inputs of its own."""
    from graphopt.core.measure import interleaved

    (a, a_feeds), (b, b_feeds) = _session_and_feeds(baseline, shape), _session_and_feeds(candidate, shape)
    t = interleaved(lambda: a.run(a_feeds), lambda: b.run(b_feeds), budget_s=seconds)
    interval = [round(t.ci_low, 3), round(t.ci_high, 3)]
    return {"ratio": round(t.ratio, 3), "ci95": interval, "ms": round(t.candidate_s * 1e3, 3)}


def builder_rows(folder: Path, builder: Path, out: Path) -> None:
    """The builder's output against the export as is and against graphopt's outputs in ``folder``."""
    sides = {"export": folder / "model.onnx"}
    sides |= {name: folder / "bench" / name / "model.onnx" for name in ("graphopt", "graphopt-batch1")}
    for name, path in sides.items():
        if not path.exists():
            continue
        record = {"model": folder.name, "contender": f"builder vs {name}", "builder": str(builder)}
        record["timed"] = {shape: versus(path, builder, shape) for shape in ("decode-127", "decode-511")}
        with out.open("a") as lines:
            lines.write(json.dumps(record) + "\n")
        print(_line(record | {"timed": {k: v | {"equivalent": True} for k, v in record["timed"].items()}}), flush=True)


def bench_folder(folder: Path, names: list[str], out: Path) -> None:
    src = folder / "model.onnx"
    work = folder / "bench"
    work.mkdir(exist_ok=True)
    feeds = feeds_files(src, work)
    for name in names:
        dst = work / name / "model.onnx"
        dst.parent.mkdir(exist_ok=True)
        record = {"model": folder.name, "contender": name}
        try:
            record["made"] = CONTENDERS[name](src, dst)
        except Exception as error:
            record["made"] = {"error": str(error).splitlines()[0][:200]}
        shapes = [s for s in SHAPES if not (name in STEP_ONLY and not s.startswith("decode"))]
        record["timed"] = {s: compare(src, dst, feeds[s]) for s in shapes if dst.exists()}
        with out.open("a") as lines:
            lines.write(json.dumps(record) + "\n")
        print(_line(record), flush=True)


def _line(record: dict) -> str:
    cells = []
    for shape, row in record.get("timed", {}).items():
        if "ratio" in row:
            mark = "" if row["equivalent"] else " NOT EQUIVALENT"
            cells.append(f"{shape} {row['ratio']:.3f} {row['ci95']}{mark}")
        else:
            cells.append(f"{shape} {row.get('error', 'not timed')}")
    return f"{record['model']} {record['contender']}: " + "; ".join(cells or [str(record["made"])])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench --llm --decode", description=__doc__)
    parser.add_argument("folders", nargs="+", type=Path, help="optimum export folders (model.onnx, config.json)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--out", default="bench/results/llm-decode.jsonl", type=Path)
    parser.add_argument("--builder", type=Path, help="onnxruntime-genai model builder output for the same config")
    args = parser.parse_args(argv)
    for folder in args.folders:
        if args.contenders:
            bench_folder(folder, args.contenders.split(","), args.out)
        if args.builder:
            builder_rows(folder, args.builder, args.out)


if __name__ == "__main__":
    main()
