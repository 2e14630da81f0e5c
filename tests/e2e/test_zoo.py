"""End to end on the zoo's tiny configs: every architecture, both exporters, static and dynamic.

The models are in the forms torch writes by default (the dynamo exporter's weights in
``<name>.onnx.data``). For each variant `optimize` must finish, and its output, loaded after the
input's folder is deleted, must be either the input's graph or a model the optimizer measured
faster with confidence; either way one that ORT runs and that is equivalent on the exported
inputs (checked here again, outside the optimizer, on a fresh session).
"""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("transformers", reason="the zoo needs the [zoo] extra")

from graphopt.api.files import optimize  # noqa: E402
from graphopt.core.evaluation_log import MIN_GAIN  # noqa: E402
from graphopt.core.verify import compare  # noqa: E402
from graphopt.formats.onnx import files as onnx_files  # noqa: E402
from graphopt.formats.onnx.feeds import load_feeds  # noqa: E402
from graphopt.models.zoo import ZOO, build  # noqa: E402
from graphopt.targets.onnxruntime import OrtTarget  # noqa: E402

# minilm is left out: its tiny config is the tiny BERT.
VARIANTS = [
    (name, exporter, dynamic)
    for name in ZOO
    if name != "minilm"
    for exporter in ("dynamo", "legacy")
    for dynamic in (False, True)
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "exporter", "dynamic"), VARIANTS, ids=["-".join(map(str, v)) for v in VARIANTS])
def test_optimize_zoo_variant(tmp_path, name, exporter, dynamic):
    model_path, inputs_path = build(name, tmp_path / "in", size="tiny", exporter=exporter, dynamic=dynamic)
    out = tmp_path / "out" / "model.onnx"
    out.parent.mkdir()
    result = optimize(model_path, out, inputs_file=str(inputs_path), budget_s=8)
    original = onnx_files.load(model_path)
    feeds = load_feeds(inputs_path, original)
    reference = OrtTarget().compile(original, report=False)
    names = [o.name for o in reference.session.get_outputs()]
    expected = reference.run(feeds)
    del original, reference
    shutil.rmtree(model_path.parent)  # the output must stand alone, weights and all

    candidate = onnx_files.load(out)
    if exporter == "dynamo":  # torch's default form: weights in <name>.onnx.data, and so the output's
        assert (out.parent / "model.onnx.data").is_file()
    if result.kept_original:
        assert onnx_files.op_histogram(candidate) == onnx_files.op_histogram(result.baseline.graph)
    else:
        assert result.chosen.final_timing.candidate_faster(MIN_GAIN)
    equivalence = compare(names, expected, OrtTarget().compile(candidate, report=False).run(feeds))
    assert equivalence.ok, equivalence.first_failure()
