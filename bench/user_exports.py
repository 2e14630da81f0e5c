"""`python -m bench.user_exports`: graphopt on models exactly as a new user would export them.

Each model is built from its transformers config and written by ``torch.onnx.export(model, args,
"m.onnx", dynamo=True, dynamic_shapes=...)`` with torch's defaults (weights in ``m.onnx.data``),
then ``graphopt optimize in/m.onnx -o out/m.onnx``. The input's folder is then moved away (so
nothing can be read from it) and ``graphopt check`` judges the output against the original in an
independent process: equivalence, and the latency ratio from its own interleaved timing. This is
the path that issue 10 found broken (outputs pointing at the input's weights file).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import transformers

CONFIGS = {
    "bert-2l": lambda: transformers.BertModel(
        transformers.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)
    ),
    "minilm-l6": lambda: transformers.BertModel(
        transformers.BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    ),
    "distilbert-3l": lambda: transformers.DistilBertModel(transformers.DistilBertConfig(n_layers=3)),
    "qwen2-2l": lambda: transformers.Qwen2Model(
        transformers.Qwen2Config(
            hidden_size=256,
            intermediate_size=768,
            num_hidden_layers=2,
            num_attention_heads=8,
            num_key_value_heads=2,
            vocab_size=4096,
        )
    ),
}


class _Encoder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def export_as_a_user(name: str, folder: Path) -> Path:
    model = _Encoder(CONFIGS[name]()).eval()
    ids = torch.randint(0, 1000, (1, 16))
    mask = torch.ones(1, 16, dtype=torch.int64)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    shapes = {"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}}
    folder.mkdir(parents=True)
    path = folder / "m.onnx"
    torch.onnx.export(
        model,
        (ids, mask),
        str(path),
        dynamo=True,
        dynamic_shapes=shapes,
        input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"],
    )
    return path


def graphopt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graphopt", *args], capture_output=True, text=True)


def run_one(name: str, work: Path, budget: float) -> dict:
    source = export_as_a_user(name, work / name / "in")
    out, report = work / name / "out" / "m.onnx", work / name / "report.json"
    optimized = graphopt(
        "optimize", str(source), "-o", str(out), "--mkdir", "--budget", str(budget), "--report", str(report)
    )
    if optimized.returncode != 0:
        return {"model": name, "error": optimized.stderr.strip().splitlines()[-1]}
    reference = work / name / "reference"
    shutil.move(source.parent, reference)  # the input's folder is gone from where it was
    checked = graphopt("check", str(reference / "m.onnx"), str(out), "--format", "json", "--max-slowdown", "0")
    data, verdict = json.loads(report.read_text()), json.loads(checked.stdout)[0]
    return {
        "model": name,
        "optimize": {
            "kept_original": data["kept_original"],
            "reason": data["reason"],
            "latency": data["latency"],
            "with_settings": data["recommended_settings"]["with_settings"]
            and data["recommended_settings"]["with_settings"]["latency"],
        },
        "output_files": sorted(p.name for p in out.parent.iterdir()),
        "check": {
            "verdict": verdict["verdict"],
            "latency": verdict["latency"],
            "sessions": verdict.get("session_settings"),
            "max_abs_error": max(o["max_abs_error"] for o in verdict["outputs"]),
        },
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.user_exports", description=__doc__)
    parser.add_argument("--models", default=",".join(CONFIGS))
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--out", default="bench/results/user-exports.json")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="graphopt-user-exports-") as work:
        for name in args.models.split(","):
            results.append(run_one(name, Path(work), args.budget))
            print(json.dumps(results[-1]), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
