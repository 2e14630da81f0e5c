"""LLaMA-style decoders with float16 and bfloat16 weights, exported by torch's dynamo exporter:
nothing made wrong. float16 runs on ORT's CPU provider, so `optimize` must finish and hand back a
graph equivalent at float16's tolerance (verify.py: a float16 result carries ~1e-3 relative
rounding per op, which the rewritten reduction orders compound); ORT 1.32 has no CPU kernel for
some bfloat16 ops (Where), so a bfloat16 export is refused in one line, nothing written."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers", reason="the zoo needs the [zoo] extra")

from graphopt.api.files import optimize  # noqa: E402
from graphopt.core.errors import GraphoptError  # noqa: E402
from graphopt.core.evaluation_log import MIN_GAIN  # noqa: E402
from graphopt.core.verify import compare  # noqa: E402
from graphopt.formats.onnx import files as onnx_files  # noqa: E402
from graphopt.formats.onnx.feeds import verification_feeds  # noqa: E402
from graphopt.models.architectures import ARCHITECTURES  # noqa: E402
from graphopt.models.export import export  # noqa: E402
from graphopt.targets.onnxruntime import OrtTarget  # noqa: E402


def _export(dtype, path):
    module, inputs, axes = ARCHITECTURES["llama"]("tiny", batch=1, seq=16)
    with torch.no_grad():
        export(module.to(dtype), inputs, axes, path, exporter="dynamo", dynamic=True)
    return path


@pytest.mark.slow
def test_a_float16_decoder_is_never_made_wrong(tmp_path):
    path = _export(torch.float16, tmp_path / "in" / "model.onnx")
    out = tmp_path / "out" / "model.onnx"
    out.parent.mkdir()
    result = optimize(path, out, budget_s=20)
    original = onnx_files.load(path)
    feeds = verification_feeds(original, None, None)
    reference = OrtTarget().compile(original, report=False)
    names = [o.name for o in reference.session.get_outputs()]
    candidate = OrtTarget().compile(onnx_files.load(out), report=False)
    for feed in feeds:
        equivalence = compare(names, reference.run(feed), candidate.run(feed))
        assert equivalence.ok, equivalence.first_failure()
    assert result.kept_original or result.chosen.final_timing.candidate_faster(MIN_GAIN)


@pytest.mark.slow
def test_a_bfloat16_decoder_ort_cannot_run_is_refused_in_one_line(tmp_path):
    path = _export(torch.bfloat16, tmp_path / "in" / "model.onnx")
    out = tmp_path / "out" / "model.onnx"
    out.parent.mkdir()
    with pytest.raises(GraphoptError, match="onnxruntime cannot") as refused:
        optimize(path, out, budget_s=20)
    assert "\n" not in str(refused.value) and list(out.parent.iterdir()) == []
