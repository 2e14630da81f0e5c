"""`python -m bench --torch`: eager, Inductor, Inductor with freezing + max-autotune, and
torch.compile(backend="graphopt") on the zoo's torch modules, with the route graphopt kept.

Each (model, batch, sequence) runs in a subprocess of its own, with an empty Inductor cache
(TORCHINDUCTOR_CACHE_DIR), so first-call times are cold compiles and one model's memory does
not weigh on the next. In that process: Inductor is compiled first (cold), then graphopt (its
Inductor contenders may find Inductor's kernels compiled already: its first call is not a cold
one; bench/torch_first_call.py measures that separately), then the strongest Inductor setting
(b1s16 / batch 1 only: max-autotune's compile is minutes at batch 8). Outputs of each are
checked against eager at verify's fp32 tolerances. Then each is timed against Inductor
interleaved in the same process (ratios per round, median and 95% bootstrap interval), and
Inductor against itself (A/A: the noise a ratio must clear). Results are appended to a JSONL
file as each configuration finishes, so a stopped run resumes where it was.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = ["bert", "minilm", "distilbert", "gpt2", "llama", "llama-decode", "vit", "resnet50", "mobilenetv2"]
SIZES = [(1, 16), (8, 128)]
TEXT = {"bert", "minilm", "distilbert", "gpt2", "llama", "llama-decode"}


def _flat(value) -> list:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if hasattr(value, "to_tuple"):
        value = value.to_tuple()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _flat(item)]
    return []


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _first_call(fn, call, label: str) -> tuple[float, list]:
    start = time.monotonic()
    outputs = call(fn)
    _say(f"{label}: first call {time.monotonic() - start:.1f} s")
    return time.monotonic() - start, _flat(outputs)


def _error(expected, actual) -> dict:
    from graphopt.core.verify import compare

    names = [f"output_{i}" for i in range(len(expected))]
    verdict = compare(names, [t.detach().numpy() for t in expected], [t.detach().numpy() for t in actual])
    worst = max((c.max_abs_error for c in verdict.outputs), default=0.0)
    return {"equivalent": verdict.ok and len(expected) == len(actual), "max_abs_error": worst}


def _pair(reference, other, call, seconds) -> dict:
    from graphopt.core.measure import interleaved

    result = interleaved(lambda: call(reference), lambda: call(other), budget_s=seconds)
    return {
        "ratio": result.ratio,
        "ci95": [result.ci_low, result.ci_high],
        "reference_ms": result.baseline_s * 1e3,
        "ms": result.candidate_s * 1e3,
    }


def run_one(name: str, batch: int, seq: int, budget: float, seconds: float, strongest: bool) -> dict:
    import torch

    import graphopt.torch.backend as backend
    from graphopt.models.architectures import ARCHITECTURES

    torch.manual_seed(0)
    model, inputs, _ = ARCHITECTURES[name]("base", batch=batch, seq=seq)
    positional = name == "llama-decode"
    call = (lambda fn: fn(*inputs.values())) if positional else (lambda fn: fn(**inputs))
    record = {
        "model": name,
        "batch": batch,
        "seq": seq if name in TEXT else None,
        "first_call_s": {},
        "errors": {},
        "vs_inductor": {},
    }
    with torch.no_grad():
        expected = _flat(call(model))
        inductor = torch.compile(model)
        record["first_call_s"]["inductor"], outputs = _first_call(inductor, call, "inductor")
        record["errors"]["inductor"] = _error(expected, outputs)
        before = len(backend.DECISIONS)
        graphopt = torch.compile(
            model, backend="graphopt", options={"budget": budget, "cache_dir": None}
        )  # decided afresh
        record["first_call_s"]["graphopt"], outputs = _first_call(graphopt, call, "graphopt")
        record["errors"]["graphopt"] = _error(expected, outputs)
        record["graphopt_graphs"] = [_decision(d) for d in backend.DECISIONS[before:]]
        contenders = {"graphopt": graphopt, "eager": model, "inductor (A/A)": inductor}
        if strongest:
            contenders["inductor freezing+max-autotune"] = _strongest(model, call, record, expected)
        for label, fn in contenders.items():
            record["vs_inductor"][label] = _pair(inductor, fn, call, seconds)
            _say(f"{label} against inductor: {record['vs_inductor'][label]['ratio']:.3f}")
    return record


def _decision(d) -> dict:
    return {
        "nodes": d.nodes,
        "target": d.target,
        "contender": d.contender,
        "reason": d.reason,
        "seconds": d.seconds,
        "timings": {k: [v[0], list(v[1])] for k, v in d.timings.items()},
        "rules": d.rules,
        "left_out": d.left_out,
    }


def _strongest(model, call, record, expected):
    import torch
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True  # read when the first call compiles
    try:
        compiled = torch.compile(model, mode="max-autotune")
        record["first_call_s"]["inductor freezing+max-autotune"], outputs = _first_call(
            compiled, call, "freezing+max-autotune"
        )
        record["errors"]["inductor freezing+max-autotune"] = _error(expected, outputs)
        return compiled
    finally:
        inductor_config.freezing = False


def configurations(models, sizes):
    for name in models:
        seen = set()
        for batch, seq in sizes:
            key = (batch, seq if name in TEXT else 0)
            if key not in seen:
                seen.add(key)
                yield name, batch, seq


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench --torch", description=__doc__)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--sizes", default="1x16,8x128", help="batch x sequence, comma-separated")
    parser.add_argument("--budget", type=float, default=30.0, help="per graph (the results used 30; the default is 10)")
    parser.add_argument("--seconds", type=float, default=10.0, help="interleaved timing per pair")
    parser.add_argument("--out", default="bench/results/torch-zoo.jsonl")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # model:batch:seq, in the subprocess
    args = parser.parse_args(argv)
    if args.one:
        name, batch, seq = args.one.split(":")
        strongest = int(batch) == 1
        print(json.dumps(run_one(name, int(batch), int(seq), args.budget, args.seconds, strongest)), flush=True)
        return
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    out = Path(args.out)
    done = {(r["model"], r["batch"], r["seq"] or 0) for r in _records(out)}
    for name, batch, seq in configurations(args.models.split(","), sizes):
        if (name, batch, seq if name in TEXT else 0) in done:
            continue
        _run_in_subprocess(name, batch, seq, args, out)
    from bench.torch_tables import write_markdown

    write_markdown(_records(out), out.with_suffix(".md"))


def _run_in_subprocess(name, batch, seq, args, out: Path) -> None:
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="inductor-cold-") as cache:
        env = os.environ | {"TORCHINDUCTOR_CACHE_DIR": cache}
        command = [
            sys.executable,
            "-m",
            "bench.torch_zoo",
            "--one",
            f"{name}:{batch}:{seq}",
            "--budget",
            str(args.budget),
            "--seconds",
            str(args.seconds),
        ]
        log = out.with_suffix(".log")
        with log.open("a") as stderr:
            result = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    record = (
        json.loads(lines[-1])
        if lines
        else {"model": name, "batch": batch, "seq": seq, "failed": f"exit {result.returncode}; see {log}"}
    )
    record["wall_s"] = time.monotonic() - start
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    print(
        f"{name} b{batch} s{seq}: {record.get('vs_inductor', {}).get('graphopt', record.get('failed', ''))} "
        f"in {record['wall_s']:.0f} s",
        flush=True,
    )


def _records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


if __name__ == "__main__":
    main()
