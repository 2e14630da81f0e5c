"""The Markdown a person reads: one speedup matrix, then the detail of every workload."""

from __future__ import annotations


def _cell(result: dict) -> str:
    if "error" in result:
        return "fail"
    text = f"{1 / result['ratio']:.2f}x"
    if not result["equivalent"]:
        return f"{text} WRONG"
    if result.get("identical"):
        return f"= ({text})"  # the tool handed back the input unchanged: the ratio is the A/A noise
    low, high = result["ci95"]
    return text + ("" if low <= 1.0 <= high else "*")


def _fused(fused: dict) -> str:
    return ", ".join(f"{k.split('::')[-1]} {v}" for k, v in sorted(fused.items())) or "-"


def markdown(run: dict) -> str:
    records = run["workloads"]
    names = [r["contender"] for r in records[0]["results"]] if records else []
    lines = [
        f"# graphopt bench: {run['mode']} run on {run['host']}, {run['date']}",
        "",
        f"Machine: fp32 GEMM {run['rates']['gemm_gflops']:.1f} GFLOP/s (ORT MatMul 1024^3), "
        f"copy bandwidth {run['rates']['gbytes_per_s']:.1f} GB/s. Versions: {run['versions']}.",
        "",
        "Speedup over the original under ORT ENABLE_ALL (median of interleaved runs; * = the 95% "
        "interval excludes 1; WRONG = outputs differ beyond tolerance; fail = the tool or its result failed; "
        "= (..) = the tool returned the input file unchanged, so the ratio in brackets is two sessions of one model: "
        "noise).",
        "",
        "| workload | " + " | ".join(names) + " | floor ms | ORT-all ms | of floor |",
        "|---|" + "---|" * (len(names) + 3),
    ]
    for record in records:
        cells = [_cell(r) for r in record["results"]]
        base_ms = next((r.get("baseline_ms") for r in record["results"] if "baseline_ms" in r), None)
        frac = f"{record['floor_ms'] / base_ms:.0%}" if base_ms else "-"
        base = f"{base_ms:.3f}" if base_ms else "-"
        lines.append(
            f"| {record['workload']} | " + " | ".join(cells) + f" | {record['floor_ms']:.3f} | {base} | {frac} |"
        )
    for record in records:
        lines += [
            "",
            f"## {record['workload']}",
            "",
            f"{record['flops'] / 1e9:.3f} GFLOP, {record['bytes'] / 1e6:.1f} MB; "
            f"original: {record['baseline']['nodes']} nodes, "
            f"{record['baseline']['kernels']} ORT kernels, fused {_fused(record['baseline']['fused'])}",
            "",
            *_time_by_op(record),
            "| contender | tool s | nodes | kernels | fused (ORT) | max err | ratio [95% CI] |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in record["results"]:
            if "error" in r:
                lines.append(f"| {r['contender']} | {r.get('tool_s', 0):.1f} | failed: {r['error']} | | | | |")
                continue
            tool = f"{r['tool_s']:.1f}" if "tool_s" in r else "-"
            if "kept" in r:  # graphopt: which candidate it kept, and the session settings it recommends
                tool += (
                    f" (kept {r['kept'] or 'the input'}"
                    + ("" if r["session_settings"] == "ORT defaults" else f"; {r['session_settings']}")
                    + ")"
                )
            ok = "" if r["equivalent"] else " WRONG"
            lines.append(
                f"| {r['contender']} | {tool} | {r['nodes']} | {r['kernels']} | {_fused(r['fused'])} | "
                f"{r['max_abs_error']:.1e}{ok} | "
                f"{r['ratio']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] |"
            )
    return "\n".join(lines) + "\n"


def _time_by_op(record: dict, top: int = 5) -> list[str]:
    """Where ORT's time goes (its profiler, rescaled to the measured latency), per profiled side."""
    lines = []
    for side, breakdown in record.get("op_time_ms", {}).items():
        total = sum(breakdown.values()) or 1.0
        parts = ", ".join(f"{op} {ms:.3f} ms ({ms / total:.0%})" for op, ms in list(breakdown.items())[:top])
        lines.append(f"ORT time by op type, {side}: {parts}")
    return lines + [""] if lines else []
