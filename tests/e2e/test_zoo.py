"""End to end on the zoo's tiny configs: every architecture, both exporters, static and dynamic.

For each variant `optimize` must finish, and its output must be either the input unchanged or
a model that ORT runs, that is equivalent on the exported inputs (checked here again, outside
the optimizer, on a fresh session), and that the optimizer measured faster with confidence.
"""

from __future__ import annotations

import pytest

pytest.importorskip("transformers", reason="the zoo needs the [zoo] extra")

from graphopt.formats import onnx_format  # noqa: E402
from graphopt.models.zoo import ZOO, build  # noqa: E402
from graphopt.optimize import load_feeds, optimize  # noqa: E402
from graphopt.search.loop import MIN_GAIN  # noqa: E402
from graphopt.targets import OrtTarget  # noqa: E402
from graphopt.verify import compare  # noqa: E402

# minilm is left out: its tiny config is the tiny BERT.
VARIANTS = [(name, exporter, dynamic) for name in ZOO if name != "minilm" for exporter in ("dynamo", "legacy") for dynamic in (False, True)]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "exporter", "dynamic"), VARIANTS, ids=["-".join(map(str, v)) for v in VARIANTS])
def test_optimize_zoo_variant(tmp_path, name, exporter, dynamic):
    model_path, inputs_path = build(name, tmp_path, size="tiny", exporter=exporter, dynamic=dynamic)
    out = tmp_path / "out.onnx"
    result = optimize(model_path, out, inputs_file=str(inputs_path), budget_s=8)

    assert out.exists()
    if result.kept_original:
        assert out.read_bytes() == model_path.read_bytes()
        return
    assert result.chosen.timing.candidate_faster(MIN_GAIN)
    original, candidate = onnx_format.load(model_path), onnx_format.load(out)
    feeds = load_feeds(inputs_path, original)
    reference = OrtTarget().compile(original, report=False)
    names = [o.name for o in reference.session.get_outputs()]
    equivalence = compare(names, reference.run(feeds), OrtTarget().compile(candidate, report=False).run(feeds))
    assert equivalence.ok, equivalence.first_failure()
