"""`python -m bench.torch_first_call [--models minilm,convnext]`: what the first call of
torch.compile(backend="graphopt") costs on MiniLM-L6 (batch 1, sequence 16) and ConvNeXt-T
(batch 1, 224x224), each in a fresh process with an empty Inductor cache:

- inductor: torch.compile(model), cold;
- graphopt, cold: the default budget, an empty decision cache (decides, times, stores);
- graphopt, warm decision cache: a new process reading the decision the previous one stored
  (no timing), and beside it what exporting the graph and creating the ORT session cost alone,
  or Inductor's warm compile when the decision was Inductor.

Writes bench/results/torch-first-call.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = """
import json, sys, time, torch
from graphopt.models.architectures import ARCHITECTURES
mode, cache_dir, budget, name = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
model, inputs, _ = ARCHITECTURES[name]("base", batch=1, seq=16)
result = {}
with torch.no_grad():
    if mode == "export+session":
        from graphopt.torch import onnx_route
        from graphopt.formats.fx.capture import dynamo_graphs

        graphs = dynamo_graphs(model, (), **inputs)
        start = time.monotonic()
        route = onnx_route.compile_graph(graphs[0][0], graphs[0][1], 0.0)
        result["seconds"] = time.monotonic() - start
    else:
        if mode == "inductor":
            compiled = torch.compile(model)
        else:
            compiled = torch.compile(model, backend="graphopt", options={"budget": budget, "cache_dir": cache_dir})
        start = time.monotonic()
        compiled(**inputs)
        result["seconds"] = time.monotonic() - start
        if mode != "inductor":
            from graphopt.torch.backend import DECISIONS
            result["graphs"] = [
                {"contender": d.contender, "cached": d.cached, "seconds": d.seconds, "timings": d.timings}
                for d in DECISIONS
            ]
print(json.dumps(result))
"""


def _child(mode: str, cache_dir: str, budget: float, inductor_cache: str, name: str) -> dict:
    env = os.environ | {"TORCHINDUCTOR_CACHE_DIR": inductor_cache}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode, cache_dir, str(budget), name],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"{mode} failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.torch_first_call", description=__doc__)
    parser.add_argument("--budget", type=float, default=10.0)  # the backend's default
    parser.add_argument("--models", default="minilm")
    parser.add_argument("--out", default="bench/results/torch-first-call.json")
    args = parser.parse_args(argv)
    results = {name: _first_calls(name, args.budget) for name in args.models.split(",")}
    if list(results) == ["minilm"]:
        results = results["minilm"]  # the file's earlier shape
    with open(args.out, "w") as handle:
        json.dump(results, handle, indent=1)


def _first_calls(name: str, budget: float) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as decisions:
        for label, mode in (
            ("inductor, cold", "inductor"),
            ("graphopt, cold", "graphopt"),
            ("graphopt, warm decision cache", "graphopt"),
            ("export + ORT session alone", "export+session"),
        ):
            with tempfile.TemporaryDirectory(prefix="inductor-cold-") as inductor_cache:
                start = time.monotonic()
                results[label] = _child(mode, decisions, budget, inductor_cache, name)
                results[label]["process_s"] = time.monotonic() - start
            print(name, label, json.dumps(results[label]), flush=True)
    return results


if __name__ == "__main__":
    main()
