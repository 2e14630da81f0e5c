"""How often does `graphopt check` cry wolf, and how often does it catch a real slowdown?

    python -m bench.check_calibration [--model M.onnx] [--self-runs 40] [--planted-runs 20]

- false alarms: the model against a copy of itself, ``--self-runs`` times; the failure rate
  should be at or below 1 - confidence (5%);
- power: against copies with a planted 10% and 3% slowdown (bench/planted.py: real MatMul work
  whose result is added times 0), ``--planted-runs`` times each; the detection rate.
Every check runs with the default settings (max slowdown 2%, 95%, 60 s budget).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.planted import plant_slowdown
from graphopt.api.checking import CheckSettings, check
from graphopt.formats.onnx import files as onnx_files

EXAMPLE = Path(__file__).parents[1] / "graphopt" / "examples" / "tiny-bert.onnx"


def rate(baseline: Path, candidate: Path, runs: int, settings: CheckSettings) -> dict:
    verdicts, seconds, ratios = [], [], []
    for _ in range(runs):
        result = check(baseline, candidate, settings)
        verdicts.append(result.verdict)
        seconds.append(result.seconds)
        ratios.append(result.timing.ratio)
    return {
        "runs": runs,
        "failed": sum(v == "regression" for v in verdicts),
        "inconclusive": sum(v == "inconclusive" for v in verdicts),
        "median_ratio": statistics.median(ratios),
        "median_seconds": statistics.median(seconds),
        "max_seconds": max(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(EXAMPLE))
    parser.add_argument("--self-runs", type=int, default=40)
    parser.add_argument("--planted-runs", type=int, default=20)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    settings = CheckSettings()
    report = {
        "model": args.model,
        "settings": {"max_slowdown": settings.max_slowdown, "confidence": settings.confidence},
    }
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.onnx"
        copy.write_bytes(Path(args.model).read_bytes())
        start = time.monotonic()
        report["self"] = rate(Path(args.model), copy, args.self_runs, settings)
        print("self", report["self"], flush=True)
        for fraction in (0.10, 0.03):
            planted, measured = plant_slowdown(args.model, fraction)
            path = Path(tmp) / f"planted-{fraction}.onnx"
            onnx_files.save(planted, path)
            key = f"planted_{round(fraction * 100)}pct"
            report[key] = rate(Path(args.model), path, args.planted_runs, settings) | {"calibrated_ratio": measured}
            print(key, report[key], flush=True)
        report["total_seconds"] = time.monotonic() - start
    text = json.dumps(report, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
