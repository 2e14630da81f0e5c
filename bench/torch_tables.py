"""The Markdown table of `python -m bench --torch` (bench/results/torch-zoo.md)."""

from __future__ import annotations

import math
from pathlib import Path


def _cell(pair: dict | None) -> str:
    if not pair:
        return "-"
    low, high = pair["ci95"]
    return f"{pair['ratio']:.3f} [{low:.3f}, {high:.3f}]"


def _kept(record: dict) -> str:
    graphs = record.get("graphopt_graphs", [])
    return ", ".join(g["contender"] for g in graphs) or "-"


def write_markdown(records: list[dict], path: Path) -> None:
    lines = [
        '# torch.compile(backend="graphopt") on the zoo',
        "",
        "Time relative to Inductor (default torch.compile), interleaved in one process: "
        "median ratio [95% bootstrap interval];",
        "below 1 is faster than Inductor. A/A is Inductor against itself (the noise). "
        "First call in seconds (cold Inductor cache;",
        "graphopt's first call follows Inductor's in the same process). "
        "`ok` = every output within fp32 tolerance of eager.",
        "",
        "| model | batch | seq | Inductor ms | graphopt | kept | A/A | eager | Inductor freezing+max-autotune "
        "| first call: inductor / graphopt / max-autotune s | ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        if "failed" in r:
            lines.append(f"| {r['model']} | {r['batch']} | {r.get('seq') or '-'} | failed: {r['failed'][-200:]!r} |")
            continue
        pairs, first = r["vs_inductor"], r["first_call_s"]
        ok = all(e["equivalent"] for e in r["errors"].values())
        firsts = " / ".join(
            f"{first[k]:.0f}" if k in first else "-" for k in ("inductor", "graphopt", "inductor freezing+max-autotune")
        )
        lines.append(
            f"| {r['model']} | {r['batch']} | {r.get('seq') or '-'} | {pairs['graphopt']['reference_ms']:.2f} "
            f"| {_cell(pairs['graphopt'])} | {_kept(r)} "
            f"| {_cell(pairs.get('inductor (A/A)'))} | {_cell(pairs.get('eager'))} "
            f"| {_cell(pairs.get('inductor freezing+max-autotune'))} | {firsts} | {'ok' if ok else 'NO'} |"
        )
    lines += ["", *_geomeans(records)]
    path.write_text("\n".join(lines) + "\n")


def _geomeans(records) -> list[str]:
    lines = []
    for label, select in (
        ("batch 1, sequence 16 transformers", lambda r: r["batch"] == 1 and r.get("seq") == 16),
        ("batch 8, sequence 128 transformers", lambda r: r["batch"] == 8 and r.get("seq") == 128),
        ("vision", lambda r: not r.get("seq")),
    ):
        ratios = [r["vs_inductor"]["graphopt"]["ratio"] for r in records if "failed" not in r and select(r)]
        if ratios:
            mean = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
            lines.append(f"- {label}: geometric-mean speedup over Inductor {1 / mean:.2f}x ({len(ratios)} models)")
    return lines
