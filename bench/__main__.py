"""`python -m bench [--quick] [--model M.onnx --inputs I.npz]...`: the side-by-side table.

Writes bench/results/<date>-<host>-<quick or full>/ with results.json (everything measured), table.md, and
speedup.png / op_time.png.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import socket
import sys
import time
from pathlib import Path

import onnx
import onnxruntime

from bench import plots, tables
from bench.contenders import contenders
from bench.limits import measure_rates
from bench.runner import run_workload
from bench.workloads import corpus_set, full_set, latency_set, quick_set, user_workload


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--xla" in argv:
        from bench import xla_zoo

        xla_zoo.main([a for a in argv if a != "--xla"])
        return
    if "--gpu" in argv:
        from bench import gpu

        gpu.main([a for a in argv if a != "--gpu"])
        return
    if "--iree" in argv:
        from bench import iree_zoo

        iree_zoo.main([a for a in argv if a != "--iree"])
        return
    if "--llm" in argv:
        from bench import llm

        llm.main([a for a in argv if a != "--llm"])
        return
    if "--openvino" in argv:
        from bench import openvino

        openvino.main([a for a in argv if a != "--openvino"])
        return
    if "--torch" in argv:
        from bench import torch_zoo

        torch_zoo.main([a for a in argv if a != "--torch"])
        return
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny configs, one variant per model (< 10 min)")
    parser.add_argument(
        "--latency", action="store_true", help="the latency-bound set (small encoders, small decoder, batch 1)"
    )
    parser.add_argument("--model", action="append", default=[], help="an extra ONNX file to bench (repeatable)")
    parser.add_argument(
        "--inputs", action="append", default=[], help="inputs .npz for the --model at the same position"
    )
    parser.add_argument("--only-user", action="store_true", help="bench only the --model files")
    parser.add_argument(
        "--corpus",
        action="store_true",
        help="the third-party corpus (graphopt/models/corpus.py): vision CNNs and ViTs, skl2onnx, int8",
    )
    parser.add_argument("--corpus-only", default=None, help="comma-separated corpus entries (with --corpus)")
    parser.add_argument("--work", default="/tmp/graphopt-zoo", help="where exported zoo models are cached")
    parser.add_argument("--out", default=None, help="results folder (default bench/results/<date>-<host>)")
    parser.add_argument(
        "--graphopt-budget",
        type=float,
        default=None,
        help="graphopt's --budget (default: 60, as users run it; 10 with --quick)",
    )
    parser.add_argument("--contenders", default=None, help="comma-separated subset of contenders")
    parser.add_argument(
        "--torch",
        action="store_true",
        help="torch.compile(backend='graphopt') against Inductor on the zoo "
        "(bench/torch_zoo.py; its own options follow)",
    )
    parser.add_argument(
        "--llm",
        action="store_true",
        help="graphopt optimize on 28 M / 123 M / 1 B LLaMA-style decoders: wall, peak RSS, ratio "
        "(bench/llm.py; its own options follow)",
    )
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="torch.compile and the JAX path on a GPU against Inductor and jax.jit (bench/gpu.py; --dry-run: CPU)",
    )
    parser.add_argument(
        "--iree",
        action="store_true",
        help="graphopt for IREE against IREE as is, beside XLA, on the JAX zoo (bench/iree_zoo.py)",
    )
    parser.add_argument(
        "--xla",
        action="store_true",
        help="graphopt.jax.optimize against jax.jit on the JAX zoo (bench/xla_zoo.py; its own options follow)",
    )
    parser.add_argument(
        "--render", default=None, help="re-render a finished run's folder (recounting its work) and exit"
    )
    args = parser.parse_args(argv)
    if args.render:
        render(Path(args.render), Path(args.work))
        return

    budget = 2.0 if args.quick else 5.0
    work = Path(args.work)
    parser_budget = args.graphopt_budget or (10.0 if args.quick else 60.0)
    chosen = contenders(graphopt_budget_s=parser_budget)
    if args.contenders:
        chosen = [c for c in chosen if c.name in args.contenders.split(",")]
    workloads = _workloads(args, work)

    date = datetime.date.today().isoformat()
    mode = "corpus" if args.corpus else "quick" if args.quick else "latency" if args.latency else "full"
    out = Path(args.out or Path(__file__).parent / "results" / f"{date}-{socket.gethostname()}-{mode}")
    out.mkdir(parents=True, exist_ok=True)
    rates = measure_rates()
    run = {
        "mode": mode,
        "host": socket.gethostname(),
        "date": date,
        "versions": f"onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}, "
        f"python {platform.python_version()}",
        "rates": {"gemm_gflops": rates.gemm_flops_per_s / 1e9, "gbytes_per_s": rates.bytes_per_s / 1e9},
        "workloads": [],
    }
    start = time.monotonic()
    for workload in workloads:
        print(f"[{time.monotonic() - start:6.0f}s] {workload.name}", flush=True)
        run["workloads"].append(run_workload(workload, chosen, rates, budget, log=lambda m: None))
        (out / "results.json").write_text(json.dumps(run, indent=1, default=float))
        (out / "table.md").write_text(tables.markdown(run))
    plots.speedup_heatmap(run, out / "speedup.png")
    plots.op_time_bars(run, out / "op_time.png")
    print(f"wrote {out} in {time.monotonic() - start:.0f} s")


def _workloads(args, work: Path) -> list:
    """The set the flags name (corpus, quick, latency or full; none with --only-user), then the --model files."""
    if args.only_user:
        chosen = []
    elif args.corpus:
        chosen = corpus_set(work, args.corpus_only.split(",") if args.corpus_only else None)
    else:
        chosen = quick_set(work) if args.quick else latency_set(work) if args.latency else full_set(work)
    return chosen + [
        user_workload(m, args.inputs[i] if i < len(args.inputs) else None) for i, m in enumerate(args.model)
    ]


def render(out: Path, work: Path) -> None:
    """Recount each workload's FLOPs and bytes with the current counter, then redraw the table
    and plots of a finished run (its measurements are kept as they were)."""
    from bench.limits import MachineRates, count_work
    from bench.runner import workload_feeds
    from bench.workloads import Workload
    from graphopt.formats.onnx import files as onnx_files
    from graphopt.formats.onnx.adapter import prepare

    run = json.loads((out / "results.json").read_text())
    rates = MachineRates(run["rates"]["gemm_gflops"] * 1e9, run["rates"]["gbytes_per_s"] * 1e9)
    for record in run["workloads"]:
        model = work / f"{record['workload']}.onnx"
        if not model.exists():
            continue
        inputs = work / f"{record['workload']}.inputs.npz"
        workload = Workload(record["workload"], model, inputs if inputs.exists() else None)
        feeds = workload_feeds(workload, prepare(onnx_files.load(model), []))
        counted = count_work(onnx.load(str(model)), feeds)
        record |= {"flops": counted.flops, "bytes": counted.bytes, "floor_ms": rates.floor_s(counted) * 1e3}
    (out / "results.json").write_text(json.dumps(run, indent=1, default=float))
    (out / "table.md").write_text(tables.markdown(run))
    plots.speedup_heatmap(run, out / "speedup.png")
    plots.op_time_bars(run, out / "op_time.png")


if __name__ == "__main__":
    main()
