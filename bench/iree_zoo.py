"""`python -m bench --iree`: graphopt for IREE against IREE as is, beside XLA, on the JAX zoo.

Each model runs in a subprocess of its own. In it, on the zoo's arguments (batch 1, sequence 16
for text):

- IREE as is: jax.export's module compiled by IREE (llvm-cpu, host CPU) with its default flags
  and with ``--iree-opt-level=O3``, weights passed per call as the module takes them; its
  dispatch counts and compile times;
- graphopt for IREE: ``graphopt.jax.optimize(fn, *args, target="iree-cpu")`` (rules judged on
  IREE, weights held as parameters, flags as levers);
- XLA as is (``jax.jit``) and graphopt for XLA (``graphopt.jax.optimize(fn, *args)``).

Every contender runs through the same kind of callable (jax arrays in and out), outputs are
compared with jax.jit's at fp32 tolerances, and each ratio comes from interleaved runs in one
process (median and 95% bootstrap interval), with IREE as is against itself as the A/A noise.
The headline ratio is graphopt-for-IREE over the faster of IREE's default and O3. Rows are
appended to a JSONL file as each model finishes (a stopped run resumes); the Markdown table is
written beside it.
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
RTOL, ATOL = (
    1e-4,
    1e-4,
)  # fp32 through two compilers (their own dot kernels and summation orders), outputs of order 1-10


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _as_is(fn, args, flags):
    """IREE as is at ``flags``: (callable, dispatch report, compile seconds)."""
    from jax import export

    from graphopt.core import registry
    from graphopt.targets.iree.flags import IreeFlags

    exported = export.export(__import__("jax").jit(fn, keep_unused=True))(*args)
    _, fmt, _ = registry.format_of(exported)
    target = registry.target_for("iree-cpu").with_lever(IreeFlags(tuple(flags)))
    started = time.monotonic()
    compiled = target.compile(fmt.from_object(exported))
    return target.bind_jax(compiled, exported, fn), compiled.report, time.monotonic() - started


def _rules(decision) -> list[str]:
    chosen = decision.chosen
    return sorted({site.rule for site in chosen.candidate.applied}) if chosen else []


def _same(expected, got) -> bool:
    import jax
    import numpy as np

    pairs = zip(jax.tree_util.tree_leaves(expected), jax.tree_util.tree_leaves(got))
    return all(np.allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL) for a, b in pairs)


def measure(name: str, budget: float, seconds: float) -> dict:
    import jax

    import graphopt.jax as gjax
    from graphopt.core.measure import interleaved
    from graphopt.models import jax_zoo
    from graphopt.targets.iree.flags import O3

    fn, args = jax_zoo.build(name)
    jitted = jax.jit(fn)
    expected = jitted(*args)
    iree_default, report_default, compile_default = _as_is(fn, args, [])
    iree_o3, report_o3, compile_o3 = _as_is(fn, args, [O3])
    started = time.monotonic()
    for_iree = gjax.optimize(fn, *args, budget=budget, target="iree-cpu")
    iree_search_s = time.monotonic() - started
    for_xla = gjax.optimize(fn, *args, budget=budget / 2)
    runs = {"iree": iree_default, "iree-O3": iree_o3, "graphopt-iree": for_iree, "jit": jitted, "graphopt-xla": for_xla}
    ok = {key: _same(expected, run(*args)) for key, run in runs.items()}
    timed = {key: (lambda run=run: jax.block_until_ready(run(*args))) for key, run in runs.items()}
    pairs = {
        "iree-O3/iree": ("iree", "iree-O3"),
        "graphopt-iree/iree": ("iree", "graphopt-iree"),
        "graphopt-iree/iree-O3": ("iree-O3", "graphopt-iree"),
        "graphopt-xla/jit": ("jit", "graphopt-xla"),
        "iree/jit": ("jit", "iree"),
        "aa-iree": ("iree", "iree"),
    }
    ratios = {}
    for label, (a, b) in pairs.items():
        timing = interleaved(timed[a], timed[b], budget_s=seconds, min_rounds=100, check_every=10**9)
        ratios[label] = {"ratio": timing.ratio, "ci": [timing.ci_low, timing.ci_high], "a_ms": timing.baseline_s * 1e3}
    iree_decision, xla_decision = for_iree.graphopt, for_xla.graphopt
    after = iree_decision.lever.report or (iree_decision.chosen.report if iree_decision.chosen else None)
    return {
        "model": name,
        "ok": ok,
        "ratios": ratios,
        "iree_dispatches": {
            "default": report_default.kernels,
            "O3": report_o3.kernels,
            "graphopt": after and after.kernels,
        },
        "iree_ops": {"default": report_default.ops, "graphopt": after and after.ops},
        "iree_compile_s": {"default": compile_default, "O3": compile_o3},
        "iree_search_s": iree_search_s,
        "iree_kept": {
            "rules": _rules(iree_decision),
            "held_weights": sorted(iree_decision.compiled_with.parameters) if after is not None else [],
            "flags": list(iree_decision.lever.lever.flags) if iree_decision.lever.lever else [],
            "standard_level": list(iree_decision.standard_level.flags) if iree_decision.standard_level else [],
            "reason": iree_decision.reason,
            "rejected": {e.candidate.label: e.rejected for e in iree_decision.log if e.rejected},
        },
        "xla_kept": {"rules": _rules(xla_decision), "reason": xla_decision.reason},
    }


def _best_as_is(row: dict) -> tuple[str, dict]:
    """The faster of IREE's default and O3 (by their interleaved ratio), and graphopt over it."""
    o3_faster = row["ratios"]["iree-O3/iree"]["ratio"] < 1
    return (
        ("O3", row["ratios"]["graphopt-iree/iree-O3"])
        if o3_faster
        else ("default", row["ratios"]["graphopt-iree/iree"])
    )


def _cell(r: dict) -> str:
    return f"{r['ratio']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"


def table(rows: list[dict]) -> str:
    lines = [
        "| model | IREE ms (default) | O3 / default | graphopt-IREE / best as is | A/A "
        "| IREE dispatches default -> graphopt | kept for IREE | IREE compile s / graphopt search s "
        "| graphopt-XLA / jax.jit | kept for XLA | IREE / jax.jit | ok |",
        "|---|---:|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        best, ratio = _best_as_is(r)
        kept, after = r["iree_kept"], r["iree_dispatches"]["graphopt"]
        held = [f"{len(kept['held_weights'])} weights held"] if kept["held_weights"] and after is not None else []
        what = ", ".join(kept["rules"] + held)
        what = "; ".join(filter(None, [what, " ".join(f.removeprefix("--iree-") for f in kept["flags"])])) or "as is"
        level = " ".join(f.removeprefix("--iree-") for f in kept.get("standard_level", []))
        what += f" (bar: {level})" if level else ""
        lines.append(
            f"| {r['model']} | {r['ratios']['graphopt-iree/iree']['a_ms']:.3f} | "
            f"{_cell(r['ratios']['iree-O3/iree'])} | "
            f"{_cell(ratio)} vs {best} | {r['ratios']['aa-iree']['ratio']:.3f} | "
            f"{r['iree_dispatches']['default']} -> {after if after is not None else 'as is'} | {what} | "
            f"{r['iree_compile_s']['default']:.1f} / {r['iree_search_s']:.0f} | "
            f"{_cell(r['ratios']['graphopt-xla/jit'])} | {', '.join(r['xla_kept']['rules']) or 'jax.jit'} | "
            f"{_cell(r['ratios']['iree/jit'])} | {'yes' if all(r['ok'].values()) else 'NO'} |"
        )
    speedups = [1 / _best_as_is(r)[1]["ratio"] for r in rows]
    if speedups:
        mean = math.exp(sum(map(math.log, speedups)) / len(speedups))
        lines.append(f"\ngeometric-mean speedup of graphopt for IREE over IREE as is at its best level: {mean:.3f}x")
    return "\n".join(lines) + "\n"


def onnx_intake(folder: str, out: Path) -> str:
    """Which of the zoo's ONNX exports (``python -m bench`` writes them to ``folder`` with their
    inputs) IREE's ONNX importer and compiler take, at the inputs' shapes: compile time,
    dispatches, largest difference from ORT's outputs."""
    import glob

    import numpy as np

    from graphopt.core import registry
    from graphopt.targets.iree.target import IreeTarget

    lines = [
        "| ONNX export | IREE takes it | compile s | dispatches | max abs diff vs ORT |",
        "|---|---|---:|---:|---:|",
    ]
    for path in sorted(glob.glob(f"{folder}/*.onnx")):
        fmt, _ = registry.format_for(path)
        model, feeds = fmt.load(path), dict(np.load(path.removesuffix(".onnx") + ".inputs.npz"))
        started = time.monotonic()
        try:
            compiled = IreeTarget().bound_to(feeds).compile(model)
        except Exception as error:  # a BadModelError naming what IREE refused
            lines.append(f"| {Path(path).stem} | no: {str(error)[:150]} | | | |")
            continue
        seconds = time.monotonic() - started
        expected = registry.target_for("ort-cpu").compile(model).run(feeds)
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(compiled.run(feeds), expected))
        lines.append(f"| {Path(path).stem} | yes | {seconds:.1f} | {compiled.report.kernels} | {diff:.2g} |")
    out.write_text("\n".join(lines) + "\n")
    return out.read_text()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench --iree", description=__doc__)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--budget", type=float, default=120.0, help="graphopt.jax.optimize's budget for IREE, seconds")
    parser.add_argument("--seconds", type=float, default=10.0, help="interleaved timing per pair, seconds")
    parser.add_argument("--out", default="bench/results/iree-zoo.jsonl")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # the subprocess: one model
    parser.add_argument("--onnx-zoo", default=None, help="a folder of zoo ONNX exports: which IREE takes")
    options = parser.parse_args(argv)
    if options.onnx_zoo:
        print(onnx_intake(options.onnx_zoo, Path(options.out).with_name("iree-onnx.md")))
        return
    if options.one:
        print(json.dumps(measure(options.one, options.budget, options.seconds)))
        return
    out = Path(options.out)
    done = {json.loads(line)["model"] for line in out.read_text().splitlines()} if out.exists() else set()
    for name in options.models.split(","):
        if name in done:
            continue
        _say(f"{name}: measuring")
        command = [sys.executable, "-m", "bench.iree_zoo", "--one", name]
        command += ["--budget", str(options.budget), "--seconds", str(options.seconds)]
        finished = subprocess.run(command, capture_output=True, text=True)
        if finished.returncode != 0:
            tail = finished.stderr.strip().splitlines()[-1] if finished.stderr.strip() else finished.returncode
            _say(f"{name}: failed: {tail}")
            continue
        with out.open("a") as file:
            file.write(finished.stdout.strip().splitlines()[-1] + "\n")
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    out.with_suffix(".md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
