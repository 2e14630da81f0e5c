"""`python -m bench --llm`: `graphopt optimize` on LLaMA-style decoders of 28 M, 123 M and 1 B
parameters (models/llm.py), as a user runs it, with what it costs.

Each size is exported once (torch's default exporter, dynamic batch and sequence, weights in
``model.onnx.data``; cached under ``--work``) in a process of its own. Then, each in a fresh child
process whose peak resident memory is read from the kernel when it exits (``os.wait4``):

- ``ort``: ONNX Runtime alone opens the model and runs it once (batch 1, sequence 16): the floor
  a user already pays;
- ``graphopt``: ``graphopt optimize model.onnx -o out/model.onnx`` with the default settings (or
  ``--budget``), its report read back: exit code, wall time, peak RSS and its multiple of the
  weights, candidates judged, the kept candidate's ratio to ORT with its interval.

``--contenders onnxscript,ort-transformers`` adds, per size, what a user would pick instead (the
same functions as bench/llm_decode.py, each in a child process: wall time and peak RSS), and then
times each contender's output and graphopt's against the export as is at one prefill shape (batch
1, 128 tokens; ``graphopt.check``: equivalence, then interleaved timing).

Rows are appended to ``--out`` (JSON lines) and printed as a table. ``--decode FOLDER...`` times
optimum's KV-cache decoders at the decode step beside other tools instead (bench/llm_decode.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from graphopt.models.llm import LLM_SHAPES

ORT_CHILD = """
import sys, numpy as np, onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
ids = np.random.default_rng(0).integers(0, 32000, (1, 16), dtype=np.int64)
session.run(None, {"input_ids": ids, "attention_mask": np.ones((1, 16), np.int64)})
"""
CONTENDER_CHILD = """
import sys
from pathlib import Path
from bench import llm_decode
from graphopt.models.llm import llm_config
name, src, dst, size = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
config = llm_config(size)
if name == "ort-transformers":
    print(llm_decode._ort_transformers(src, dst, config.num_attention_heads, config.hidden_size))
else:
    print(llm_decode.CONTENDERS[name](src, dst))
"""
EXPORT_CHILD = "import sys; from pathlib import Path; from graphopt.models.llm import export_prefill; " + (
    "export_prefill(sys.argv[1], Path(sys.argv[2]))"
)


def measured(command: list[str], log: Path, timeout_s: float) -> dict:
    """Run ``command`` in a child process: its exit code, wall seconds and peak RSS (GiB).

    The peak is read by GNU time, itself a small process: the kernel's ru_maxrss of a child forked
    by this (large) process would start from this process's resident set, not the child's own."""
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    wrapped = [timer, "-f", f"{PEAK_MARK} %M", *command] if timer else command
    start = time.monotonic()
    with log.open("w") as output:
        child = subprocess.Popen(wrapped, stdout=output, stderr=subprocess.STDOUT)
        deadline = start + timeout_s
        while (status := os.wait4(child.pid, os.WNOHANG))[0] == 0:
            if time.monotonic() > deadline:
                child.kill()
            time.sleep(0.2)
    _, code, usage = status
    child.returncode = os.waitstatus_to_exitcode(code)
    peak_kib = _peak_from(log) if timer else usage.ru_maxrss  # KiB either way
    return {
        "exit": child.returncode,
        "wall_s": round(time.monotonic() - start, 1),
        "peak_gb": round(peak_kib / 2**20, 2),
    }


PEAK_MARK = "graphopt-bench-peak-kib"


def _peak_from(log: Path) -> int:
    """GNU time's last line in the child's log: the peak resident set in KiB."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith(PEAK_MARK)]
    return int(lines[-1].split()[1]) if lines else 0


def exported(size: str, work: Path) -> Path:
    path = work / size / "model.onnx"
    if not (path.exists() and path.with_suffix(".onnx.data").exists()):
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"{size}: exporting (once; cached in {path.parent})", flush=True)
        run = measured([sys.executable, "-c", EXPORT_CHILD, size, str(path)], work / size / "export.log", 3600)
        if run["exit"] != 0:
            raise SystemExit(f"{size}: export failed, see {work / size / 'export.log'}")
    return path


def weights_gb(path: Path) -> float:
    return path.with_suffix(".onnx.data").stat().st_size / 2**30


def graphopt_row(path: Path, budget: float | None, timeout_s: float) -> dict:
    out = path.parent / "out"
    report = path.parent / "report.json"
    report.unlink(missing_ok=True)
    command = [sys.executable, "-m", "graphopt", "optimize", str(path), "-o", str(out / "model.onnx")]
    command += ["--mkdir", "--report", str(report)] + (["--budget", str(budget)] if budget else [])
    row = measured(command, path.parent / "graphopt.log", timeout_s)
    if report.exists():
        data = json.loads(report.read_text())
        latency = data.get("latency") or {}
        row |= {
            "judged": len(data.get("candidates", [])),
            "kept_original": data.get("kept_original"),
            "reason": data.get("reason"),
            "ratio": latency.get("ratio"),
            "ci95": latency.get("ci95"),
        }
    return row


def prefill_feeds(work: Path, tokens: int = 128) -> Path:
    """Batch 1, ``tokens`` tokens, every one attended: the shape the contenders are compared at."""
    import numpy as np

    path = work / f"prefill-{tokens}.npz"
    ids = np.random.default_rng(0).integers(0, 32000, (1, tokens), dtype=np.int64)
    np.savez(path, input_ids=ids, attention_mask=np.ones((1, tokens), np.int64))
    return path


def contender_rows(path: Path, size: str, names: list[str], timeout_s: float) -> dict:
    """Each contender made in a child process (wall, peak), then it and graphopt's output timed
    against the export as is."""
    from bench.llm_decode import compare

    feeds = prefill_feeds(path.parent)
    rows = {}
    for name in names:
        dst = path.parent / name / "model.onnx"
        dst.parent.mkdir(exist_ok=True)
        command = [sys.executable, "-c", CONTENDER_CHILD, name, str(path), str(dst), size]
        rows[name] = measured(command, dst.parent / "made.log", timeout_s)
        rows[name] |= compare(path, dst, feeds) if rows[name]["exit"] == 0 else {}
    graphopt_out = path.parent / "out" / "model.onnx"
    if graphopt_out.exists():
        rows["graphopt"] = compare(path, graphopt_out, feeds)
    return rows


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--decode" in argv:  # optimum's KV-cache decoders at the decode step (bench/llm_decode.py)
        from bench import llm_decode

        return llm_decode.main([a for a in argv if a != "--decode"])
    parser = argparse.ArgumentParser(prog="python -m bench --llm", description=__doc__)
    parser.add_argument("--sizes", default=",".join(LLM_SHAPES))
    parser.add_argument("--budget", type=float, default=None, help="graphopt's --budget (default: its default)")
    parser.add_argument("--work", default="/tmp/graphopt-llm", help="where the exports are cached")
    parser.add_argument("--out", default="bench/results/llm.jsonl")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a run is killed")
    parser.add_argument("--contenders", default="", help="comma-separated: onnxscript, ort-transformers")
    parser.add_argument("--skip-graphopt", action="store_true", help="reuse the last graphopt output")
    args = parser.parse_args(argv)
    work = Path(args.work)
    for size in args.sizes.split(","):
        path = exported(size, work)
        weights = weights_gb(path)
        record = {"size": size, "weights_gb": round(weights, 2)}
        if not args.skip_graphopt:
            ort_command = [sys.executable, "-c", ORT_CHILD, str(path)]
            record["ort"] = measured(ort_command, path.parent / "ort.log", args.timeout)
            record["graphopt"] = graphopt_row(path, args.budget, args.timeout)
            record["graphopt"]["peak_multiple"] = round(record["graphopt"]["peak_gb"] / weights, 2)
            print(_line(record), flush=True)
        if args.contenders:
            record["prefill_128"] = contender_rows(path, size, args.contenders.split(","), args.timeout)
            print(f"{size} at prefill 128: {json.dumps(record['prefill_128'])}", flush=True)
        with Path(args.out).open("a") as out:
            out.write(json.dumps(record) + "\n")


def _line(r: dict) -> str:
    g, o = r["graphopt"], r["ort"]
    ratio = f"{g['ratio']:.3f} {g['ci95']}" if g.get("ratio") else f"kept original ({g.get('reason')})"
    return (
        f"{r['size']}: weights {r['weights_gb']} GB | ORT alone {o['wall_s']} s, {o['peak_gb']} GB | graphopt exit "
        f"{g['exit']}, {g['wall_s']} s, {g['peak_gb']} GB ({g['peak_multiple']}x), judged {g.get('judged')}, {ratio}"
    )


if __name__ == "__main__":
    main()
