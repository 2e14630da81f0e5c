"""`python -m bench.candidate_replay -o OUT.json`: the candidates each policy proposes on the zoo,
in order, with their labels and sites, against a scripted evaluation log.

A refactor of the engine must not change what is proposed. Timing cannot show that (it is
noisy, and the budget decides how far a search gets), so here nothing is timed: each proposed
candidate gets a scripted verdict (accepted with a ratio drawn from a hash of its applied
sites, or rejected), appended to the log, and the policy goes on from that log as it would in
a run. The output (labels, applied sites, in order) is compared before and after a change with
``--compare BEFORE.json``. The learned policy gets the ORT fusion report of the original as its
context, as in a run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from bench.workloads import zoo_workload
from graphopt.core import registry
from graphopt.core.evaluation_log import Evaluation, EvaluationLog
from graphopt.core.measure import Comparison
from graphopt.core.protocols import SearchContext

MODELS = [  # (architecture, size, exporter, dynamic axes, batch, sequence)
    ("bert", "tiny", "dynamo", True, 1, 16),
    ("bert", "tiny", "legacy", True, 1, 16),
    ("llama", "base", "dynamo", True, 1, 16),
    ("llama-decode", "base", "dynamo", True, 1, 16),
    ("minilm", "base", "dynamo", True, 1, 16),
]
POLICIES = ("greedy", "search", "learned")
LIMIT = 40  # candidates per (model, policy): more than any budget here judges


def scripted_verdict(candidate) -> Evaluation:
    """Accepted (ratio 0.80-0.99) for two thirds of the site sets, rejected for the rest."""
    key = repr(sorted(repr(s) for s in candidate.applied)).encode()
    draw = int(hashlib.sha256(key).hexdigest()[:8], 16) / 0xFFFFFFFF
    if draw > 2 / 3:
        return Evaluation(candidate, rejected="scripted: slower")
    ratio = 0.80 + 0.19 * draw * 1.5
    return Evaluation(candidate, timing=Comparison(1.0, ratio, ratio, ratio - 0.005, ratio + 0.005, 30))


def replay(path: Path, policy_name: str) -> list[dict]:
    fmt, registered = registry.format_for(path)
    target = registry.target_for("ort-cpu")
    graph = fmt.load(path)
    prepared = fmt.copy(graph)
    fmt.prepare(prepared)
    rule_set = fmt.rules(registered, graph, None, None)
    feeds = fmt.feeds(prepared, None, str(path).replace(".onnx", ".inputs.npz"))
    report = target.compile(graph).report
    policy = registry.policy_for(policy_name, fmt, target)
    log, proposed = EvaluationLog(), []
    for candidate in policy.propose(prepared, rule_set, log, SearchContext(feeds, report, target.name)):
        proposed.append(
            {"label": candidate.label, "applied": sorted(f"{s.rule}@{s.graph}/{s.anchor}" for s in candidate.applied)}
        )
        log.append(scripted_verdict(candidate))
        if len(proposed) >= LIMIT:
            break
    return proposed


def compare(before: dict, after: dict) -> int:
    """Prints each difference; the number of (model, policy) pairs that differ."""
    differ = 0
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            differ += 1
            old, new = before.get(key) or [], after.get(key) or []
            print(f"{key}: {len(old)} -> {len(new)} candidates")
            for i, (a, b) in enumerate(zip(old, new)):
                if a != b:
                    print(
                        f"  #{i}: {a['label']!r} -> {b['label']!r}"
                        + ("" if a["applied"] == b["applied"] else " (other sites)")
                    )
    return differ


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.candidate_replay", description=__doc__)
    parser.add_argument("-o", "--out", required=True)
    parser.add_argument("--work", default="/tmp/graphopt-zoo")
    parser.add_argument(
        "--compare", default=None, help="a replay written before a change: print the differences, exit 1 if any"
    )
    args = parser.parse_args(argv)
    results = {}
    for spec in MODELS:
        workload = zoo_workload(Path(args.work), *spec)
        for policy in POLICIES:
            results[f"{workload.name}/{policy}"] = replay(Path(workload.model), policy)
            print(f"{workload.name}/{policy}: {len(results[f'{workload.name}/{policy}'])} candidates", flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    if args.compare:
        differ = compare(json.loads(Path(args.compare).read_text()), results)
        print(f"{differ} of {len(results)} (model, policy) pairs differ")
        sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
