"""`python -m bench.policy_budget`: does the learned policy, with the default budget, find on
base-size models what the measured search finds with ten times that budget?

    python -m bench.policy_budget [--models bert,distilbert] [--budget 60] [--factor 10]

Per model (the zoo's real configs, random weights, torch's dynamo export, batch 1, sequence 16):
`graphopt optimize` with the learned policy at the default budget, with the search at the
same budget, and with the search at ten times it. Each row: what was kept, its candidates'
labels in the order they were measured, the output's ratio to the input at ORT's defaults (95%
interval) and the wall time. DistilBERT never trained the shipped weights; BERT's family did,
at small sizes only. Writes bench/results/policy-budget.json and .md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from graphopt.api.files import optimize
from graphopt.models.zoo import build, variant_name
from graphopt.reports.optimize import to_dict


def run(model: Path, inputs: Path, policy: str, budget_s: float, out: Path) -> dict:
    start = time.monotonic()
    result = to_dict(optimize(model, out, inputs_file=str(inputs), budget_s=budget_s, policy=policy))
    latency = result["latency"] or {}
    return {
        "policy": policy,
        "budget_s": budget_s,
        "wall_s": time.monotonic() - start,
        "kept": next((c["label"] for c in result["candidates"] if c["kept"]), "input"),
        "ratio": latency.get("ratio", 1.0),
        "ci95": latency.get("ci95"),
        "measured": [c["label"] for c in result["candidates"]],
        "prediction": [p["candidate"] for p in result["prediction"]],
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.policy_budget", description=__doc__)
    parser.add_argument("--models", default="bert,distilbert")
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--factor", type=float, default=10.0)
    parser.add_argument("--work", default="/tmp/graphopt-zoo")
    parser.add_argument("--out", default="bench/results/policy-budget")
    args = parser.parse_args(argv)
    rows = []
    for name in args.models.split(","):
        model = Path(args.work) / f"{variant_name(name, 'base', 'dynamo', False, 1, 16)}.onnx"
        inputs = model.with_suffix("").with_suffix(".inputs.npz")
        if not model.exists():
            model, inputs = build(name, args.work, size="base", exporter="dynamo", dynamic=False, seq=16)
        for policy, budget in (
            ("learned", args.budget),
            ("search", args.budget),
            ("search", args.budget * args.factor),
        ):
            row = {"model": name} | run(
                Path(model), Path(inputs), policy, budget, Path(args.work) / f"{name}.{policy}.opt.onnx"
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    out.with_suffix(".md").write_text(_table(rows))


def _table(rows: list[dict]) -> str:
    lines = [
        "| model | policy | budget s | kept | ratio to input [95% CI] | candidates measured | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = f" [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]" if r["ci95"] else ""
        lines.append(
            f"| {r['model']} | {r['policy']} | {r['budget_s']:g} | {r['kept']} | {r['ratio']:.3f}{ci} | "
            f"{len(r['measured'])}: {'; '.join(r['measured'][:4])}{' ...' if len(r['measured']) > 4 else ''} | "
            f"{r['wall_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
