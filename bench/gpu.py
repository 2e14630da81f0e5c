"""`python -m bench --gpu OUT`: torch.compile(backend="graphopt") and graphopt.jax.optimize on a GPU,
against Inductor (default and max-autotune) and jax.jit; one prepared script for the GPU machine.

Rows, in priority order so that a run stopped by ``--deadline`` keeps the important ones:

- torch: BERT (transformers' BertModel), a LLaMA-style decoder's prefill and decode step, and a
  nanoGPT-style model with hand-written attention (``q @ k.transpose(-2, -1) * scale``,
  ``masked_fill``, softmax, ``@ v``), at fp32 and bf16, batch 1 and 8, sequence 128 and 512:
  graphopt's and max-autotune's ratio to Inductor (interleaved, median and 95% interval, an A/A
  beside them), the contender graphopt kept, Inductor's generated-kernel count for each
  (``torch._inductor.metrics.generated_kernel_count``: Triton kernels on a GPU), outputs against
  eager at graphopt's per-dtype tolerances (graphopt/core/verify.py);
- jax: the JAX zoo (models/jax_zoo.py) through ``graphopt.jax.optimize(target="xla-gpu")``
  against ``jax.jit``: ratio, XLA fusions and custom calls before and after;
- the device, driver and library versions.

The device is explicit (``--device cuda``, the default, or ``cpu``); ``--dry-run`` runs the same
code on the CPU with tiny configurations, one size and short timings, which is what CI runs
(tests/test_gpu_bench.py): it proves the script, not a GPU figure. Writes ``OUT/gpu.json`` and
``OUT/gpu.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

TORCH_MODELS = ("nanogpt", "bert", "llama", "llama-decode")
JAX_MODELS = ("minilm", "llama", "llama-decode", "vit", "resnet")


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def environment(device: str) -> dict:
    import platform

    import jax
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "jax": jax.__version__}
    info["jax_devices"] = [str(d) for d in jax.devices()]
    if device == "cuda":
        properties = torch.cuda.get_device_properties(0)
        info |= {"gpu": properties.name, "memory_gib": properties.total_memory / 2**30, "cuda": torch.version.cuda}
        info["driver"] = _driver()
        try:
            import triton

            info["triton"] = triton.__version__
        except ImportError:
            info["triton"] = None
    return info


def _driver() -> str | None:
    import subprocess

    try:
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        return subprocess.run(query, capture_output=True, text=True, timeout=30).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def torch_configurations(dry: bool):
    """(model, dtype, batch, seq, with max-autotune) in priority order."""
    if dry:
        return [(name, "float32", 1, 16, False) for name in TORCH_MODELS]
    rows = []
    for dtype in ("bfloat16", "float32"):
        for batch, seq in ((1, 128), (8, 512), (8, 128), (1, 512)):
            for name in TORCH_MODELS:
                rows.append((name, dtype, batch, seq, (batch, seq) == (1, 128)))
    return rows


def _numpy(tensor):
    import ml_dtypes
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        return tensor.float().numpy().astype(ml_dtypes.bfloat16)
    return tensor.numpy()


def _equivalence(expected, actual) -> dict:
    from bench.torch_zoo import _flat
    from graphopt.core.verify import compare

    expected, actual = _flat(expected), _flat(actual)
    names = [f"output_{i}" for i in range(len(expected))]
    verdict = compare(names, [_numpy(t) for t in expected], [_numpy(t) for t in actual])
    worst = max((c.max_abs_error for c in verdict.outputs), default=0.0)
    return {"equivalent": verdict.ok and len(expected) == len(actual), "max_abs_error": worst}


def _compiled(model, call, expected, **options) -> tuple[object, dict]:
    """``torch.compile(model, **options)``, its first call timed, the kernels it generated
    counted (Inductor's metric: Triton kernels on a GPU), its outputs checked."""
    import torch
    from torch._inductor import metrics

    compiled = torch.compile(model, **options)
    metrics.reset()
    start = time.monotonic()
    outputs = call(compiled)
    first = time.monotonic() - start
    record = {"first_call_s": first, "kernels": metrics.generated_kernel_count} | _equivalence(expected, outputs)
    return compiled, record


def _timed(reference, other, call, seconds: float, synchronize) -> dict:
    from graphopt.core.measure import interleaved

    def run(fn):
        return lambda: (call(fn), synchronize())

    result = interleaved(run(reference), run(other), budget_s=seconds)
    return {"ratio": result.ratio, "ci95": [result.ci_low, result.ci_high], "reference_ms": result.baseline_s * 1e3}


def torch_row(name, dtype, batch, seq, autotune, device, budget, seconds) -> dict:
    import torch

    import graphopt.torch.backend as backend
    from bench.gpu_models import build

    torch._dynamo.reset()
    model, inputs, positional = build(name, batch, seq, tiny=device == "cpu")
    model = model.to(device=device, dtype=getattr(torch, dtype))
    inputs = {
        k: v.to(device, getattr(torch, dtype)) if v.is_floating_point() else v.to(device) for k, v in inputs.items()
    }
    call = (lambda fn: fn(*inputs.values())) if positional else (lambda fn: fn(**inputs))
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    row = {"model": name, "dtype": dtype, "batch": batch, "seq": seq, "device": device}
    with torch.no_grad():
        expected = call(model)
        inductor, row["inductor"] = _compiled(model, call, expected)
        before = len(backend.DECISIONS)
        options = {"budget": budget, "cache_dir": None}
        graphopt, row["graphopt"] = _compiled(model, call, expected, backend="graphopt", options=options)
        decided = backend.DECISIONS[before:]
        row["graphopt"]["kept"] = [d.contender for d in decided]
        row["graphopt"]["rules"] = [d.rules for d in decided]
        # kernels in what runs, by graphopt's Inductor report, for it and for Inductor as is (the
        # metric above counts every kernel a compile generated: graphopt's decision compiles several)
        row["graphopt"]["kernels"] = _total([d.kernels for d in decided])
        row["inductor"]["kernels_in_report"] = _total([d.inductor_kernels for d in decided])
        row["graphopt"] |= _timed(inductor, graphopt, call, seconds, synchronize)
        row["aa"] = _timed(inductor, inductor, call, seconds / 2, synchronize)
        if autotune:
            tuned, row["max-autotune"] = _compiled(model, call, expected, mode="max-autotune")
            row["max-autotune"] |= _timed(inductor, tuned, call, seconds, synchronize)
    return row


def _total(counts) -> int | None:
    return sum(counts) if counts and None not in counts else None


def jax_row(name: str, device: str, budget: float, seconds: float) -> dict:
    import jax

    import graphopt.jax as gjax
    from graphopt.core.measure import interleaved
    from graphopt.models import jax_zoo
    from graphopt.targets.xla.report import fusion_report

    platform = "gpu" if device == "cuda" else "cpu"
    fn, args = jax_zoo.build(name)
    args = jax.device_put(args, jax.devices(platform)[0])
    jitted = jax.jit(fn)
    before_hlo = jitted.lower(*args).compile().as_text()
    fast = gjax.optimize(fn, *args, budget=budget, target=f"xla-{platform}")
    decision = fast.graphopt
    after = decision.chosen.report if decision.chosen else fusion_report(before_hlo)
    expected, got = jax.tree_util.tree_leaves(jitted(*args)), jax.tree_util.tree_leaves(fast(*args))
    equivalence = _jax_equivalence(expected, got)
    timing = interleaved(
        lambda: jax.block_until_ready(jitted(*args)), lambda: jax.block_until_ready(fast(*args)), budget_s=seconds
    )
    return {
        "model": name,
        "device": platform,
        "ratio": timing.ratio,
        "ci95": [timing.ci_low, timing.ci_high],
        "jit_ms": timing.baseline_s * 1e3,
        "kept": sorted({s.rule for s in decision.chosen.candidate.applied}) if decision.chosen else [],
        "fusions_before": fusion_report(before_hlo).fused,
        "fusions_after": after.fused,
        "custom_calls_before": before_hlo.count("custom-call("),
        **equivalence,
    }


def _jax_equivalence(expected, got) -> dict:
    import numpy as np

    from graphopt.core.verify import compare

    names = [f"output_{i}" for i in range(len(expected))]
    verdict = compare(names, [np.asarray(a) for a in expected], [np.asarray(b) for b in got])
    return {"equivalent": verdict.ok, "max_abs_error": max((c.max_abs_error for c in verdict.outputs), default=0.0)}


def _geomean(ratios) -> float | None:
    ratios = [r for r in ratios if r]
    return math.exp(sum(math.log(1 / r) for r in ratios) / len(ratios)) if ratios else None


def table(result: dict) -> str:
    lines = [f"device: {json.dumps(result['environment'])}", "", "## torch.compile", ""]
    lines += [
        "| model | dtype | batch x seq | graphopt / Inductor | A/A | max-autotune / Inductor "
        "| kept (kernels Inductor -> graphopt; outputs) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["torch"]:
        g, tuned = r["graphopt"], r.get("max-autotune")
        cell = lambda t: f"{t['ratio']:.3f} [{t['ci95'][0]:.3f}, {t['ci95'][1]:.3f}]"  # noqa: E731
        lines.append(
            f"| {r['model']} | {r['dtype']} | {r['batch']}x{r['seq']} | {cell(g)} | {r['aa']['ratio']:.3f} | "
            f"{cell(tuned) if tuned else '-'} | {', '.join(g['kept'])} "
            f"(kernels {r['inductor'].get('kernels_in_report')} -> {g['kernels']}; "
            f"{'equivalent' if g['equivalent'] else 'NOT equivalent'}) |"
        )
    torch_mean = _geomean([r["graphopt"]["ratio"] for r in result["torch"]])
    lines += ["", f"geometric-mean speedup over Inductor: {torch_mean and f'{torch_mean:.3f}x'}", "", "## JAX", ""]
    lines += [
        "| model | graphopt / jax.jit | kept | XLA fusions before -> after | equivalent |",
        "|---|---|---|---|---|",
    ]
    for r in result["jax"]:
        fusions = f"{sum(r['fusions_before'].values())} -> {sum(r['fusions_after'].values())}"
        lines.append(
            f"| {r['model']} | {r['ratio']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] | "
            f"{', '.join(r['kept']) or 'jax.jit'} | {fusions} | {r['equivalent']} |"
        )
    jax_mean = _geomean([r["ratio"] for r in result["jax"]])
    lines += ["", f"geometric-mean speedup over jax.jit: {jax_mean and f'{jax_mean:.3f}x'}"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench --gpu", description=__doc__)
    parser.add_argument("out", type=Path, help="folder for gpu.json and gpu.md")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny configurations, short timings (CI)")
    parser.add_argument("--deadline", type=float, default=420.0, help="seconds after which no new row starts")
    parser.add_argument("--budget", type=float, default=30.0, help="graphopt's budget per graph / module")
    parser.add_argument("--seconds", type=float, default=4.0, help="interleaved timing per pair")
    options = parser.parse_args(argv)
    device = "cpu" if options.dry_run else options.device
    budget, seconds = (3.0, 0.5) if options.dry_run else (options.budget, options.seconds)
    start = time.monotonic()
    result = {"environment": environment(device), "dry_run": options.dry_run, "torch": [], "jax": []}
    options.out.mkdir(parents=True, exist_ok=True)
    jax_models = JAX_MODELS[:2] if options.dry_run else JAX_MODELS
    work = [("torch", c) for c in torch_configurations(options.dry_run)] + [("jax", (m,)) for m in jax_models]
    for kind, configuration in work:
        if time.monotonic() - start > options.deadline:
            _say(f"deadline reached: {kind} {configuration} and what follows not run")
            break
        _say(f"{kind} {configuration}")
        row = (
            torch_row(*configuration, device, budget, seconds)
            if kind == "torch"
            else jax_row(configuration[0], device, budget, seconds)
        )
        result[kind].append(row)
        (options.out / "gpu.json").write_text(json.dumps(result, indent=1))
    (options.out / "gpu.md").write_text(table(result))
    print(table(result))


if __name__ == "__main__":
    main()
