"""`python -m bench --xla`: ``graphopt.jax.optimize`` against ``jax.jit`` on the JAX zoo
(models/jax_zoo.py), with XLA's fusions before and after.

Each model runs in a subprocess of its own (XLA_FLAGS are read once per process, and one
model's compile caches do not help the next). In it: ``jax.jit(fn)`` is compiled, then
``graphopt.jax.optimize(fn, *args, budget=B)``; outputs of both are compared at fp32 tolerances;
then the two are timed interleaved in the same process (ratio per round, median and 95%
bootstrap interval), and jax.jit against itself (A/A: the noise a ratio must clear). What
graphopt kept (rules, or jax.jit itself) and the fusion counts of both executables are recorded.
Rows are appended to a JSONL file as each model finishes, so a stopped run resumes; the Markdown
table is written beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

MODELS = ["minilm", "llama", "llama-decode", "vit", "resnet"]
RTOL, ATOL = 1e-4, 1e-4  # fp32 through two XLA executables (dot kernels may differ), outputs of order 1-10


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(name: str, budget: float, seconds: float) -> dict:
    """One model, in this process: compile both, check outputs, time interleaved."""
    import jax
    import numpy as np

    import graphopt.jax as gjax
    from graphopt.core.measure import interleaved
    from graphopt.models import jax_zoo
    from graphopt.targets.xla.report import fusion_report

    fn, args = jax_zoo.build(name)
    jitted = jax.jit(fn)
    before = fusion_report(jitted.lower(*args).compile().as_text())
    started = time.monotonic()
    fast = gjax.optimize(fn, *args, budget=budget)
    search_s = time.monotonic() - started
    expected, got = jax.tree_util.tree_leaves(jitted(*args)), jax.tree_util.tree_leaves(fast(*args))
    ok = all(np.allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL) for a, b in zip(expected, got))
    decision = fast.graphopt
    after = decision.chosen.report if decision.chosen else before
    run_jit = lambda: jax.block_until_ready(jitted(*args))  # noqa: E731
    run_fast = lambda: jax.block_until_ready(fast(*args))  # noqa: E731
    timing = interleaved(run_jit, run_fast, budget_s=seconds, min_rounds=200, check_every=10**9)
    aa = interleaved(run_jit, run_jit, budget_s=seconds / 2, min_rounds=200, check_every=10**9)
    chosen = decision.chosen
    return {
        "model": name,
        "ok": ok,
        "kept": "jax.jit" if chosen is None else chosen.candidate.label,
        "rules": sorted({s.rule for s in chosen.candidate.applied}) if chosen else [],
        "reason": decision.reason,
        "jit_ms": timing.baseline_s * 1e3,
        "ratio": timing.ratio,
        "ci": [timing.ci_low, timing.ci_high],
        "aa": aa.ratio,
        "aa_ci": [aa.ci_low, aa.ci_high],
        "fusions_before": before.fused,
        "fusions_after": after.fused,
        "kernels_before": before.kernels,
        "kernels_after": after.kernels,
        "search_s": search_s,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| model | jax.jit ms | graphopt / jax.jit [95% CI] | A/A | kept | XLA fusions before -> after | ok |",
        "|---|---:|---|---|---|---|---|",
    ]
    for r in rows:
        fusions = lambda f: ", ".join(f"{k.removeprefix('fusion.')} {v}" for k, v in sorted(f.items()))  # noqa: E731
        lines.append(
            f"| {r['model']} | {r['jit_ms']:.3f} | {r['ratio']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] | "
            f"{r['aa']:.3f} | {r['kept']} | {fusions(r['fusions_before'])} -> {fusions(r['fusions_after'])} | "
            f"{'yes' if r['ok'] else 'NO'} |"
        )
    speedups = [1 / r["ratio"] for r in rows]
    if speedups:
        lines.append(
            f"\ngeometric-mean speedup over jax.jit: {math.exp(sum(map(math.log, speedups)) / len(speedups)):.3f}x "
            f"over {len(rows)} models"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench --xla", description=__doc__)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--budget", type=float, default=60.0, help="graphopt.jax.optimize's budget, seconds")
    parser.add_argument("--seconds", type=float, default=20.0, help="interleaved timing per model, seconds")
    parser.add_argument("--out", default="bench/results/xla-zoo.jsonl")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # the subprocess: one model
    options = parser.parse_args(argv)
    if options.one:
        print(json.dumps(measure(options.one, options.budget, options.seconds)))
        return
    out = Path(options.out)
    done = {json.loads(line)["model"] for line in out.read_text().splitlines()} if out.exists() else set()
    for name in options.models.split(","):
        if name in done:
            continue
        _say(f"{name}: measuring")
        command = [
            sys.executable,
            "-m",
            "bench.xla_zoo",
            "--one",
            name,
            "--budget",
            str(options.budget),
            "--seconds",
            str(options.seconds),
        ]
        finished = subprocess.run(command, capture_output=True, text=True)
        if finished.returncode != 0:
            _say(
                f"{name}: failed: "
                f"{finished.stderr.strip().splitlines()[-1] if finished.stderr.strip() else finished.returncode}"
            )
            continue
        with out.open("a") as file:
            file.write(finished.stdout.strip().splitlines()[-1] + "\n")
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    out.with_suffix(".md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
