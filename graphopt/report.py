"""What a person or a CI system reads after `graphopt optimize`: a terminal table and JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from graphopt.formats.onnx_format import atomic_path
from graphopt.optimize import OptimizeResult


def to_dict(result: OptimizeResult) -> dict:
    base = result.baseline.compiled.report
    chosen = result.chosen
    after = chosen.report if chosen else base
    return {
        "model": result.model_path,
        "output": result.output_path,
        "kept_original": result.kept_original,
        "reason": result.reason,
        "seconds": round(result.seconds, 2),
        "notes": result.notes,
        "sites_found": result.sites_found,
        "near_misses": result.near_misses,
        "before": {"kernels": base.kernels, "fused": base.fused, "fired_by_ort": base.fired},
        "after": {"kernels": after.kernels, "fused": after.fused, "fired_by_ort": after.fired},
        "fusions_gained": after.gained_over(base),
        "latency": None if not chosen else {
            "baseline_ms": chosen.timing.baseline_s * 1e3,
            "candidate_ms": chosen.timing.candidate_s * 1e3,
            "ratio": chosen.timing.ratio,
            "ci95": [chosen.timing.ci_low, chosen.timing.ci_high],
            "rounds": chosen.timing.rounds,
            # set when the timing above is a confirmation: the one the candidate was chosen on
            "selection_ratio": chosen.selection_timing.ratio if chosen.selection_timing else None,
        },
        "candidates": [_evaluation(e) for e in result.evaluations],
        "ort_session": _session(result),
    }  # fmt: skip


def _session(result: OptimizeResult) -> dict:
    choice = result.session
    return {
        "recommended": None if choice.settings.is_default else choice.settings.to_json(choice.timing),
        "written_to": result.session_path,
        "tried": [{"setting": s.label(), "ratio_vs_defaults": t.ratio, "ci95": [t.ci_low, t.ci_high]} for s, t in choice.tried],
    }


def _evaluation(e) -> dict:
    applied: dict[str, int] = {}
    for site in e.candidate.applied:
        applied[site.rule] = applied.get(site.rule, 0) + 1
    return {
        "label": e.candidate.label,
        "rewrites": applied,
        "kernels": e.report.kernels if e.report else None,
        "fused": e.report.fused if e.report else None,
        "max_abs_error": {o.name: o.max_abs_error for o in e.equivalence.outputs} if e.equivalence else None,
        "ratio": e.timing.ratio if e.timing else None,
        "ci95": [e.timing.ci_low, e.timing.ci_high] if e.timing else None,
        "accepted": e.accepted,
        "rejected": e.rejected or None,
    }


def write_json(result: OptimizeResult, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_dict(result), indent=2, default=float))


def render(result: OptimizeResult, console: Console) -> None:
    data = to_dict(result)
    table = Table(title=f"graphopt optimize {Path(result.model_path).name}", show_lines=False)
    table.add_column("")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    base_nodes = sum(1 for _ in result.baseline.model.graph.all_nodes())
    after_nodes = base_nodes if not result.chosen else sum(1 for _ in result.chosen.candidate.model.graph.all_nodes())
    table.add_row("graph nodes", str(base_nodes), str(after_nodes))
    table.add_row("ORT kernels", str(data["before"]["kernels"]), str(data["after"]["kernels"]))
    for op in sorted(set(data["before"]["fused"]) | set(data["after"]["fused"])):
        table.add_row(f"fused kernels {op.split('::')[-1]}", str(data["before"]["fused"].get(op, 0)), str(data["after"]["fused"].get(op, 0)))
    if result.chosen:
        t = result.chosen.timing
        table.add_row("latency (median)", f"{t.baseline_s * 1e3:.3f} ms", f"{t.candidate_s * 1e3:.3f} ms")
        table.add_row("ratio after/before", "", f"{t.ratio:.3f} [{t.ci_low:.3f}, {t.ci_high:.3f}]")
        for o in result.chosen.equivalence.outputs:
            table.add_row(f"max |error| {o.name}", "", f"{o.max_abs_error:.2e}")
    console.print(table)
    for e in data["candidates"]:
        gained = result.baseline.compiled.report.fused
        fused = ", ".join(f"{k.split('::')[-1]} {gained.get(k, 0)}->{n}" for k, n in (e["fused"] or {}).items() if n != gained.get(k, 0))
        verdict = "[green]accepted[/]" if e["accepted"] else f"[yellow]rejected[/]: {e['rejected']}"
        console.print(f"candidate '{e['label']}': {sum(e['rewrites'].values())} rewrites, kernels {e['kernels']}, fusions {fused or 'unchanged'}; {verdict}", highlight=False)
    for setting, t in result.session.tried:
        console.print(f"ORT {setting.label()}: {t.ratio:.3f} [{t.ci_low:.3f}, {t.ci_high:.3f}] vs ORT's defaults on the same graph", highlight=False)
    if result.session_path:
        console.print(f"[bold]recommended ORT session settings[/] ({result.session.settings.label()}) written to {result.session_path}: "
                      "run the output with them to get the measured speed")  # fmt: skip
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    if result.kept_original:
        console.print(f"[bold yellow]kept the original model[/]: {result.reason}")
    else:
        console.print(f"[bold green]{result.reason}[/] in {result.seconds:.1f} s")
