"""Compilers plugged in from outside (graphopt/core/registry.py): a package registering a target
under the ``graphopt.targets`` entry-point group is reached by ``--target <prefix>-...`` like a
built-in one, with no rule written for it; graphopt's own IREE target is registered that way."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx

from graphopt.core import registry
from tests.test_optimize import _mlp_with_erf_gelu

PLUGIN = '''
"""A compiler from outside graphopt: ONNX Runtime with all optimizations, under another name."""


class MyCompiler:
    device = "cpu"
    compiler = "MyCC"
    kernel_noun = "kernels"

    def __init__(self, name):
        from graphopt.core import registry

        self.name, self.inner = name, registry.target_for("ort-cpu")

    def compile(self, graph, *, report=True):
        return self.inner.compile(graph, report=report)

    def compiled_bytes(self, graph):
        return self.inner.compiled_bytes(graph)

    def admit(self, graph):
        return self.inner.admit(graph)


def target_from_name(name):
    return MyCompiler(name)
'''


def _installed_plugin(folder) -> dict:
    """An environment whose Python finds a distribution registering ``mycc`` under graphopt.targets."""
    (folder / "mycc_target.py").write_text(textwrap.dedent(PLUGIN))
    info = folder / "mycc-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mycc\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[graphopt.targets]\nmycc = mycc_target:target_from_name\n")
    return os.environ | {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}


def test_graphopts_own_iree_target_is_found_through_the_entry_point_group():
    assert registry.plugged_in().get("iree") == "graphopt.targets.iree:target_from_name"
    assert "iree" not in registry.TARGETS


def test_a_target_registered_by_another_package_runs_through_optimize(tmp_path):
    environment = _installed_plugin(tmp_path)
    source, out = tmp_path / "m.onnx", tmp_path / "out.onnx"
    onnx.save(_mlp_with_erf_gelu(np.float32), source)
    command = [sys.executable, "-m", "graphopt", "optimize", str(source), "-o", str(out), "--target", "mycc-cpu"]
    result = subprocess.run([*command, "--budget", "20"], capture_output=True, text=True, timeout=300, env=environment)
    assert result.returncode == 0, result.stderr
    assert "mycc-cpu kernels" in result.stdout and out.exists()
    unknown = subprocess.run(
        [sys.executable, "-m", "graphopt", "inspect", str(source), "--target", "nothere-cpu"],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert unknown.returncode == 2 and "mycc-..." in unknown.stderr  # the plugged-in prefix is listed as known
