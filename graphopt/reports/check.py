"""How `graphopt check` speaks: one line saying what failed and by how much, then the detail;
or JSON for dashboards, JUnit XML for test reporters, Markdown for a CI job summary."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

if TYPE_CHECKING:  # the result types of the ways in; reports do not import them
    from graphopt.api.checking import CheckResult


def _fusions(counts: dict[str, int]) -> str:
    return ", ".join(f"{k.split('::')[-1]} x{v}" for k, v in sorted(counts.items())) or "none"


def headline(r: CheckResult) -> str:
    name = r.candidate
    if r.verdict == "pass":
        t = r.timing
        return f"PASS {name}: equivalent, {t.ratio:.3f}x the baseline's latency (95% CI {t.ci_low:.3f}-{t.ci_high:.3f})"
    word = "FAIL" if r.failed() else "WARN"
    return f"{word} {name}: " + "; ".join(r.reasons)


def to_dict(r: CheckResult) -> dict:
    t = r.timing
    return {
        "baseline": r.baseline,
        "candidate": r.candidate,
        "verdict": r.verdict,
        "failed": r.failed(),
        "reasons": r.reasons,
        "latency": None
        if t is None
        else {
            "baseline_ms": t.baseline_s * 1e3,
            "candidate_ms": t.candidate_s * 1e3,
            "ratio": t.ratio,
            "ci": [t.ci_low, t.ci_high],
            "confidence": r.settings.confidence,
            "rounds": t.rounds,
            "allowed_ratio": 1 + r.settings.max_slowdown,
        },
        "outputs": [
            {
                "name": o.name,
                "dtype": o.dtype,
                "max_abs_error": o.max_abs_error,
                "max_rel_error": o.max_rel_error,
                "ok": o.ok,
                "reason": o.reason,
            }
            for o in (r.equivalence.outputs if r.equivalence else ())
        ],
        "compiler": r.compiler,
        "kernels": {"baseline": r.baseline_report.kernels, "candidate": r.candidate_report.kernels},
        "fused": {"baseline": r.baseline_report.fused, "candidate": r.candidate_report.fused},
        "lost_fusions": r.lost_fusions,
        "gained_fusions": r.gained_fusions,
        "seconds": r.seconds,
        "settings": {"baseline": r.session_settings[0], "candidate": r.session_settings[1]},
        "notes": list(r.notes),
    }


def text(results: list[CheckResult]) -> str:
    lines = []
    for r in results:
        lines.append(headline(r))
        t = r.timing
        lines.append(
            f"  latency: baseline {t.baseline_s * 1e3:.3f} ms, candidate {t.candidate_s * 1e3:.3f} ms, "
            f"ratio {t.ratio:.3f} [{t.ci_low:.3f}, {t.ci_high:.3f}] over {t.rounds} interleaved rounds "
            f"(allowed {1 + r.settings.max_slowdown:.3f})"
        )
        for o in r.equivalence.outputs:
            lines.append(
                f"  output {o.name} ({o.dtype}): max |error| {o.max_abs_error:.2e}"
                + ("" if o.ok else f"  NOT EQUIVALENT: {o.reason}")
            )
        lines.append(
            f"  {r.compiler} {r.kernel_noun}: baseline {r.baseline_report.kernels}, "
            f"candidate {r.candidate_report.kernels}"
        )
        if r.session_settings != ("defaults", "defaults"):
            lines.append(
                f"  {r.compiler} settings: baseline {r.session_settings[0]}, candidate {r.session_settings[1]}"
            )
        if r.lost_fusions:
            lines.append(f"  fusions lost: {_fusions(r.lost_fusions)}")
        if r.gained_fusions:
            lines.append(f"  fusions gained: {_fusions(r.gained_fusions)}")
        lines += [f"  note: {note}" for note in r.notes]
        lines.append(f"  checked in {r.seconds:.1f} s")
    return "\n".join(lines) + "\n"


def markdown(results: list[CheckResult]) -> str:
    lines = [
        "## graphopt check",
        "",
        "| candidate | verdict | latency ratio [CI] | max error | kernels | fusions lost | fusions gained |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        t = r.timing
        icon = {"pass": "pass", "regression": "FAIL", "inconclusive": "inconclusive"}[r.verdict]
        err = max(o.max_abs_error for o in r.equivalence.outputs)
        lines.append(
            f"| `{r.candidate}` | {icon} | {t.ratio:.3f} [{t.ci_low:.3f}, {t.ci_high:.3f}] | {err:.1e} | "
            f"{r.baseline_report.kernels} -> {r.candidate_report.kernels} | "
            f"{_fusions(r.lost_fusions)} | {_fusions(r.gained_fusions)} |"
        )
    failures = [f"- {headline(r)}" for r in results if r.verdict != "pass"]
    return "\n".join(lines + ([""] + failures if failures else [])) + "\n"


def junit(results: list[CheckResult]) -> str:
    failures = sum(r.failed() for r in results)
    total_s = sum(r.seconds for r in results)
    cases = []
    for r in results:
        body = ""
        if r.failed():
            body = f"<failure message={quoteattr(headline(r))}>{escape(text([r]))}</failure>"
        elif r.verdict == "inconclusive":
            body = f"<system-out>{escape(text([r]))}</system-out>"
        cases.append(
            f'  <testcase classname="graphopt.api.checking" name={quoteattr(r.candidate)} '
            f'time="{r.seconds:.3f}">{body}</testcase>'
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="graphopt check" tests="{len(results)}" '
        f'failures="{failures}" errors="0" time="{total_s:.3f}">\n' + "\n".join(cases) + "\n</testsuite>\n"
    )


def render(results: list[CheckResult], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([to_dict(r) for r in results], indent=2, default=float) + "\n"
    return {"text": text, "markdown": markdown, "junit": junit}[fmt](results)
