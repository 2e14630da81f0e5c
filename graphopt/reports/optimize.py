"""What a person or a CI system reads after `graphopt optimize`: a terminal table, JSON, Markdown.

One honest headline: the first ratio is the output as a user loads it with plain ORT defaults
against the input at ORT's defaults; the table and the last line report that same measurement.
When recommended session settings make the output faster still, they get a second, labelled
column (its own ratio, kernels and fusions) and the line names the settings file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # the result types of the ways in; reports do not import them
    from graphopt.api.files import OptimizeResult


def _timing(t) -> dict | None:
    if t is None:
        return None
    return {
        "baseline_ms": t.baseline_s * 1e3,
        "candidate_ms": t.candidate_s * 1e3,
        "ratio": t.ratio,
        "ci95": [t.ci_low, t.ci_high],
        "rounds": t.rounds,
    }


def _fusions(report) -> dict:
    return {"kernels": report.kernels, "fused": report.fused, "fired_by_compiler": report.fired}


def to_dict(result: OptimizeResult) -> dict:
    base = result.baseline.report
    chosen, selected = result.chosen, result.selected
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
        "before": _fusions(base),
        "after": _fusions(after),
        "fusions_gained": after.gained_over(base),
        # the output at the compiler's defaults against the input at its defaults: the headline
        "latency": None
        if not chosen
        else _timing(chosen.final_timing)
        | {
            "selection_ratio": chosen.timing.ratio,
            "confirmed": chosen.confirmation is not None,
        },
        "selection": None
        if not selected
        else {
            "label": selected.candidate.label,
            "selection": _timing(selected.timing),
            "confirmation": _timing(selected.confirmation),
        },
        "unconfirmed": result.unconfirmed,
        "lever_changed_choice": result.lever_changed_choice,
        "candidates": [_evaluation(e, e is chosen) for e in result.evaluations],
        "policy": result.decision.policy,
        "prediction": [
            {"candidate": p.label, "score": p.score, "drivers": dict(p.drivers)} for p in result.decision.prediction
        ],
        "target": result.decision.target,
        "recommended_settings": _session(result),
        "auto": None if result.auto is None else result.auto.to_dict() | {"record": result.record_path},
    }


def _session(result: OptimizeResult) -> dict:
    choice = result.lever
    return {
        "recommended": None if choice.lever is None else choice.lever.to_json(choice.timing),
        "written_to": result.settings_path,
        "with_settings": None
        if choice.report is None
        else _fusions(choice.report) | {"latency": _timing(choice.timing)},
        "tried": [
            {"setting": s.label(), "ratio_vs_defaults": t.ratio, "ci95": [t.ci_low, t.ci_high]} for s, t in choice.tried
        ],
        "refused": [{"setting": s.label(), "why": why} for s, why in choice.refused],
    }


def _evaluation(e, kept: bool) -> dict:
    applied: dict[str, int] = {}
    for site in e.candidate.applied:
        applied[site.rule] = applied.get(site.rule, 0) + 1
    return {
        "label": e.candidate.label,
        "rewrites": applied,
        "kernels": e.report.kernels if e.report else None,
        "fused": e.report.fused if e.report else None,
        "max_abs_error": {o.name: o.max_abs_error for o in e.equivalence.outputs} if e.equivalence else None,
        "timing": _timing(e.timing),
        "kept": kept,
        "faster": e.accepted,
        "dropped": e.rejected or (None if kept else "faster, but another candidate was kept"),
    }


def summary_rows(result: OptimizeResult) -> list[tuple[str, ...]]:
    """The summary table as rows of text, header first: input, output, and the output under the
    recommended settings when there are some. The terminal, Markdown and HTML reports draw it."""
    base = result.baseline.report
    chosen = result.chosen
    columns = [
        ("input", base, None),
        ("output", chosen.report if chosen else base, chosen.final_timing if chosen else None),
    ]
    if result.lever.report is not None:
        columns.append((f"output, {result.lever.lever.label()}", result.lever.report, result.lever.timing))
    rows = [
        ("at the compiler's defaults unless named", *(name for name, _, _ in columns)),
        (f"{_compiler(result.decision.target)} kernels", *(str(r.kernels) for _, r, _ in columns)),
    ]
    for op in sorted({op for _, r, _ in columns for op in r.fused}):
        rows.append((f"fused {op.split('::')[-1]}", *(str(r.fused.get(op, 0)) for _, r, _ in columns)))
    timed = [t for _, _, t in columns if t]
    if timed:
        rows.append(
            (
                "latency (median)",
                f"{timed[0].baseline_s * 1e3:.3f} ms",
                *(f"{t.candidate_s * 1e3:.3f} ms" if t else "same graph" for _, _, t in columns[1:]),
            )
        )
        rows.append(
            (
                "ratio to input [95% CI]",
                "1",
                *(f"{t.ratio:.3f} [{t.ci_low:.3f}, {t.ci_high:.3f}]" if t else "-" for _, _, t in columns[1:]),
            )
        )
    if chosen:
        worst = max(chosen.equivalence.outputs, key=lambda o: o.max_abs_error)
        rows.append(("max |error|", "", f"{worst.max_abs_error:.2e} ({worst.name})", *([""] * (len(columns) - 2))))
    return rows


def _compiler(target: str) -> str:
    """The compiler a target name stands for, as the report names it."""
    return {"ort": "ORT", "xla": "XLA", "inductor": "Inductor"}.get(target.split("-", 1)[0], target or "compiler")


def _summary_table(result: OptimizeResult) -> Table:
    header, *rows = summary_rows(result)
    table = Table(title=f"graphopt optimize {Path(result.model_path).name}", show_lines=False)
    table.add_column(header[0])
    for name in header[1:]:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def candidate_lines(result: OptimizeResult) -> list[str]:
    """One line per candidate: its rewrites, what ORT fused, its ratio, and what became of it."""
    base = result.baseline.report.fused
    lines = []
    for e in to_dict(result)["candidates"]:
        fused = ", ".join(
            f"{k.split('::')[-1]} {base.get(k, 0)}->{n}" for k, n in (e["fused"] or {}).items() if n != base.get(k, 0)
        )
        t = e["timing"]
        ratio = f"ratio {t['ratio']:.3f} [{t['ci95'][0]:.3f}, {t['ci95'][1]:.3f}]; " if t else ""
        verdict = "KEPT" if e["kept"] else f"dropped: {e['dropped']}"
        mark = "*" if e["kept"] else "-"
        lines.append(
            f"{mark} '{e['label']}': {sum(e['rewrites'].values())} rewrites, kernels {e['kernels']}, "
            f"fusions {fused or 'unchanged'}; {ratio}{verdict}"
        )
    return lines


def render(result: OptimizeResult, console: Console) -> None:
    console.print(_summary_table(result))
    for line in candidate_lines(result):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    selected = result.selected
    if selected is not None and selected.confirmation is not None:
        s, c = selected.timing, selected.confirmation
        console.print(
            f"'{selected.candidate.label}' was chosen at ratio {s.ratio:.3f} and timed again: "
            f"{c.ratio:.3f} [{c.ci_low:.3f}, {c.ci_high:.3f}]",
            highlight=False,
        )
    if result.lever_changed_choice and selected is not None:
        console.print(
            f"the session-settings step kept '{result.chosen.candidate.label if result.chosen else 'the input graph'}' "
            f"instead of the search's choice '{selected.candidate.label}': with its settings it measured faster",
            highlight=False,
        )
    for setting, t in result.lever.tried:
        console.print(
            f"{setting.label()}: {t.ratio:.3f} [{t.ci_low:.3f}, {t.ci_high:.3f}] vs the defaults on the same graph",
            highlight=False,
        )
    for line in prediction_lines(result):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    for setting, why in result.lever.refused:
        console.print(f"{setting.label()}: left out ({why})", highlight=False, markup=False)
    for line in auto_lines(result):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(headline(result), highlight=False)


def auto_lines(result: OptimizeResult) -> list[str]:
    """With --target auto: the runtimes side by side, and which one the output runs on."""
    if result.auto is None:
        return []
    data = result.auto.to_dict()
    interval = lambda t: "-" if t is None else f"{t['ratio']:.3f} [{t['ci95'][0]:.3f}, {t['ci95'][1]:.3f}]"  # noqa: E731
    key, as_is = next(((k, v) for k, v in data.items() if k.endswith("_as_is") and k != "faster_as_is"), ("", None))
    pair = key.removesuffix("_as_is").replace("_", " ")
    lines = [f"auto: {pair} as is: {interval(as_is)}; the bar: {data['faster_as_is']}"]
    for name, row in data["contenders"].items():
        kept = "input" if row["kept_original"] else f"rewritten, {interval(row['ratio_vs_own_original'])} of its input"
        lines.append(f"auto: {name}: {kept}; over the faster as is {interval(row['over_faster_as_is'])}")
    lines.append(f"auto: the output runs on {data['runtime']}")
    return lines


def prediction_lines(result: OptimizeResult) -> list[str]:
    """The learned policy's first predictions and the features that drove each (SHAP values)."""
    lines = []
    for rank, prediction in enumerate(result.decision.prediction, 1):
        why = ", ".join(f"{name} {value:+.2f}" for name, value in prediction.drivers)
        lines.append(
            f"learned policy #{rank}: '{prediction.label}' (score {prediction.score:.2f}; "
            f"driven by {why or 'nothing in particular'})"
        )
    return lines


def headline(result: OptimizeResult) -> str:
    """The last line: the output at ORT's defaults; then, labelled, with the recommended settings."""
    first = (
        f"[bold green]{result.reason}[/]" if result.chosen else f"[bold yellow]kept the input graph[/]: {result.reason}"
    )
    t = result.lever.timing
    if t is None:
        return first
    where = f" (written to {result.settings_path})" if result.settings_path else ""
    return (
        f"{first}\n[bold]with {result.lever.lever.label()}[/]{where}: {t.speedup:.3f}x faster than the input "
        f"at the defaults (ratio {t.ratio:.3f}, 95% CI [{t.ci_low:.3f}, {t.ci_high:.3f}])"
    )
