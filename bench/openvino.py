"""`python -m bench --openvino`: OpenVINO beside ONNX Runtime on the zoo and the corpus, each as is
and after graphopt, with where OpenVINO's time goes.

Per model (batch 1; the zoo's dynamo exports with dynamic axes at sequence 128, the corpus as its
exporters write it), in one process:

- ``ov/ort``: OpenVINO as is over ORT as is (ENABLE_ALL), interleaved (below 1: OpenVINO faster);
- ``graphopt ort``: `graphopt optimize --target ort-cpu`, its confirmed ratio over ORT as is;
- ``graphopt ov``: `graphopt optimize --target openvino-cpu`, its ratio over OpenVINO as is, the
  rules it kept and OpenVINO's kernels before -> after;
- ``auto``: `graphopt optimize --target auto`, its output over the faster of the two as is;
- the five kernel kinds OpenVINO spends most time in (its profiler, targets/openvino/profile.py).

Rows are appended to ``--out`` (JSON lines) and printed; bench/results/openvino.md holds the tables.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path

import numpy as np

from graphopt.api.files import optimize
from graphopt.core import harness, registry
from graphopt.core.decide import bound

ZOO_MODELS = ("bert", "minilm", "distilbert", "gpt2", "llama", "vit", "resnet50", "mobilenetv2")
CORPUS_MODELS = ("convnext", "swin", "mobilevit", "efficientnet", "regnet", "levit", "segformer", "detector")


def zoo_model(name: str, work: Path, seq: int) -> tuple[Path, Path]:
    from graphopt.models.zoo import ZOO, build, variant_name

    stem = variant_name(name, "base", "dynamo", True, 1, seq if ZOO[name].text else 16)
    model, inputs = work / f"{stem}.onnx", work / f"{stem}.inputs.npz"
    if not (model.exists() and inputs.exists()):
        model, inputs = build(name, work, size="base", dynamic=True, seq=seq)
    return model, inputs


def corpus_model(name: str, work: Path) -> tuple[Path, Path]:
    from graphopt.models.corpus import build_in_subprocess

    folder = work / "corpus" / name
    found = [p for p in folder.glob("*.onnx")] if folder.exists() else []
    model = found[0] if found else build_in_subprocess(name, folder)
    return model, model.with_name(f"{model.name}.inputs.npz")


def cross_runtime(model: Path, inputs: Path, seconds: float) -> dict:
    """OpenVINO as is over ORT as is, on the same inputs, interleaved."""
    fmt, _ = registry.format_for(model)
    graph = fmt.load(model)
    feeds = dict(np.load(inputs))
    ort, openvino = registry.target_for("ort-cpu"), bound(registry.target_for("openvino-cpu"), [feeds])
    t = harness.time_pair((ort, graph), (openvino, graph), feeds, seconds)
    top = openvino.op_times([(openvino, graph)], feeds)[0]
    return {"ratio": round(t.ratio, 3), "ci95": [round(t.ci_low, 3), round(t.ci_high, 3)], "ov_top_ms": _top(top)}


def _top(times: dict[str, float], n: int = 5) -> dict[str, float]:
    return {kind: round(ms, 3) for kind, ms in list(times.items())[:n]}


def graphopt_row(model: Path, inputs: Path, target: str, budget: float) -> dict:
    out = model.parent / "bench-openvino" / target / model.name
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    result = optimize(model, out, inputs_file=str(inputs), budget_s=budget, target=target)
    final = result.chosen.final_timing if result.chosen else None
    row = {"wall_s": round(time.monotonic() - start, 1), "kept": not result.kept_original, "reason": result.reason}
    row["kernels"] = [
        result.baseline.report.kernels,
        (result.chosen.report if result.chosen else result.baseline.report).kernels,
    ]
    if result.chosen:
        row["rules"] = sorted({s.rule for s in result.chosen.candidate.applied})
    if result.auto is not None:
        row["auto"] = result.auto.to_dict()
    if final is not None:
        row |= {"ratio": round(final.ratio, 3), "ci95": [round(final.ci_low, 3), round(final.ci_high, 3)]}
    return row


def bench_model(label: str, model: Path, inputs: Path, targets: list[str], budget: float) -> dict:
    record = {"model": label, "file": str(model)}
    try:
        record["ov_over_ort"] = cross_runtime(model, inputs, 15.0)
        for target in targets:
            record[target] = graphopt_row(model, inputs, target, budget)
    except Exception as error:  # a failure is a row to report, not a reason to stop
        record["error"] = f"{type(error).__name__}: {str(error)[:300]}"
        record["trace"] = traceback.format_exc()[-2000:]
    return record


def _line(r: dict) -> str:
    if "error" in r:
        return f"{r['model']}: {r['error']}"
    cross = r["ov_over_ort"]
    cells = [f"ov/ort {cross['ratio']:.3f} {cross['ci95']}"]
    for target in ("ort-cpu", "openvino-cpu", "auto"):
        if target in r:
            g = r[target]
            ratio = f"{g['ratio']:.3f} {g['ci95']}" if "ratio" in g else f"kept original ({g['reason'][:60]})"
            cells.append(f"{target}: {ratio}, kernels {g['kernels'][0]}->{g['kernels'][1]} {g.get('rules', '')}")
            if "auto" in g:
                cells.append(_auto_cell(g["auto"]))
    return f"{r['model']}: " + " | ".join(cells)


def _auto_cell(a: dict) -> str:
    sides = []
    for name, row in a["contenders"].items():
        bar = row["over_faster_as_is"]
        sides.append(
            f"{name} over the bar {bar['ratio']:.3f} {[round(x, 3) for x in bar['ci95']]}"
            if bar
            else f"{name}: the bar"
        )
    return f"auto -> {a['runtime']} (faster as is: {a['faster_as_is']}; {'; '.join(sides)})"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench --openvino", description=__doc__)
    parser.add_argument("--zoo", default=",".join(ZOO_MODELS))
    parser.add_argument("--corpus", default=",".join(CORPUS_MODELS))
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--targets", default="ort-cpu,openvino-cpu,auto")
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/graphopt-zoo"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/openvino.jsonl"))
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    models = [(f"zoo/{n}", lambda n=n: zoo_model(n, args.work, args.seq)) for n in filter(None, args.zoo.split(","))]
    models += [(f"corpus/{n}", lambda n=n: corpus_model(n, args.work)) for n in filter(None, args.corpus.split(","))]
    for label, make in models:
        try:
            model, inputs = make()
        except Exception as error:
            record = {"model": label, "error": f"build failed: {error}"}
        else:
            record = bench_model(label, model, inputs, args.targets.split(","), args.budget)
        with args.out.open("a") as out:
            out.write(json.dumps(record) + "\n")
        print(_line(record), flush=True)
