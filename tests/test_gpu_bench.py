"""`python -m bench --gpu` (bench/gpu.py), the script prepared for the GPU machine, run in its dry
mode on this CPU: every row kind (torch.compile against Inductor, the JAX path against jax.jit)
runs end to end, outputs are checked, and the table and JSON are written. No GPU figure comes
from this: it proves the script, on the device named explicitly (cpu)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_gpu_script_runs_dry_on_the_cpu(tmp_path):
    command = [sys.executable, "-m", "bench", "--gpu", str(tmp_path), "--dry-run"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["dry_run"] and {row["device"] for row in report["torch"]} == {"cpu"}
    assert [row["model"] for row in report["torch"]] == ["nanogpt", "bert", "llama", "llama-decode"]
    for row in report["torch"]:
        assert row["inductor"]["equivalent"] and row["graphopt"]["equivalent"], row
        low, high = row["graphopt"]["ci95"]
        assert low <= row["graphopt"]["ratio"] <= high and row["graphopt"]["kept"]
    assert [row["model"] for row in report["jax"]] == ["minilm", "llama"]
    assert all(row["equivalent"] and row["device"] == "cpu" for row in report["jax"])
    table = (tmp_path / "gpu.md").read_text()
    assert "## torch.compile" in table and "## JAX" in table and "nanogpt" in table
