"""Run `graphopt optimize` over every zoo variant and tabulate what it did.

    python -m bench.zoo_sweep --size base --out bench/results/zoo-sweep.md [--budget 20]

Per variant: whether the output is the original or a candidate, the latency ratio after/before
(both under ORT ENABLE_ALL, interleaved in one process) with its 95% interval, fused ops before
and after, max error, and the wall time optimize took. Exports are cached in --work.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path

from graphopt.api.files import optimize
from graphopt.models.zoo import ZOO, build, variant_name
from graphopt.reports.optimize import to_dict


def variants(names):
    for name in names:
        for exporter in ("dynamo", "legacy"):
            for dynamic in (False, True):
                for seq in (16, 128) if ZOO[name].text and name != "llama-decode" else (16,):
                    yield name, exporter, dynamic, seq


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="base")
    parser.add_argument("--budget", type=float, default=20.0)
    parser.add_argument("--work", default="/tmp/graphopt-zoo")
    parser.add_argument("--out", default="bench/results/zoo-sweep.md")
    parser.add_argument("--models", default=",".join(ZOO))
    args = parser.parse_args()
    rows, raw = [], []
    for name, exporter, dynamic, seq in variants(args.models.split(",")):
        stem = variant_name(name, args.size, exporter, dynamic, 1, seq)
        model = Path(args.work) / f"{stem}.onnx"
        inputs = model.with_suffix("").with_suffix(".inputs.npz")
        try:
            if not model.exists():
                model, inputs = build(name, args.work, size=args.size, exporter=exporter, dynamic=dynamic, seq=seq)
            start = time.monotonic()
            result = optimize(
                model, Path(args.work) / f"{stem}.opt.onnx", inputs_file=str(inputs), budget_s=args.budget
            )
            data = to_dict(result) | {"variant": stem, "wall_s": time.monotonic() - start}
        except Exception as error:  # a crash is a result to report, not a reason to stop the sweep
            data = {"variant": stem, "error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()}
        raw.append(data)
        rows.append(_row(data))
        print(rows[-1], flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "| variant | kept | ratio after/before [95% CI] | fused before -> after | max err | optimize s |\n"
        "|---|---|---|---|---|---|\n"
    )
    out.write_text(header + "\n".join(rows) + "\n")
    out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=float))


def _row(d: dict) -> str:
    if "error" in d:
        return f"| {d['variant']} | CRASH | {d['error'][:80]} | | | |"
    lat = d["latency"]
    ratio = f"{lat['ratio']:.3f} [{lat['ci95'][0]:.3f}, {lat['ci95'][1]:.3f}]" if lat else _best_rejected(d)
    fused = lambda f: ", ".join(f"{k.split('::')[-1]} {v}" for k, v in sorted(f.items())) or "-"  # noqa: E731
    errs = [c["max_abs_error"] for c in d["candidates"] if c["accepted"]]
    err = f"{max(errs[0].values()):.1e}" if errs else "-"
    kept = "original" if d["kept_original"] else "candidate"
    return (
        f"| {d['variant']} | {kept} | {ratio} | {fused(d['before']['fused'])} -> {fused(d['after']['fused'])} | "
        f"{err} | {d['wall_s']:.1f} |"
    )


def _best_rejected(d: dict) -> str:
    timed = [c for c in d["candidates"] if c["ratio"]]
    if not timed:
        return "1 (" + (d["reason"][:60]) + ")"
    c = min(timed, key=lambda c: c["ratio"])
    return f"1 (best rejected {c['ratio']:.3f} [{c['ci95'][0]:.3f}, {c['ci95'][1]:.3f}])"


if __name__ == "__main__":
    main()
