"""The third-party corpus (graphopt/models/corpus.py): each kind of file builds, ORT runs it,
and graphopt optimizes it without being wrong: a scikit-learn pipeline (ai.onnx.ml operators),
a CNN from a transformers vision class exported by torch's legacy exporter, its int8 QDQ
form from onnxruntime.quantization, and a Keras encoder exported through tf2onnx."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skl2onnx")
pytest.importorskip("transformers")
ort = pytest.importorskip("onnxruntime")

from graphopt.api.files import optimize  # noqa: E402
from graphopt.core.verify import compare  # noqa: E402
from graphopt.models import corpus  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sklearn-pipeline", "regnet", "mobilenetv1-int8-static", "keras-encoder"])
def test_a_corpus_file_runs_and_graphopt_hands_back_an_equivalent_model(tmp_path, name):
    path, feeds = corpus.build(name, tmp_path / "corpus")
    expected = ort.InferenceSession(str(path)).run(None, feeds)
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, **feeds)
    out = tmp_path / "out.onnx"
    result = optimize(path, out, budget_s=20, inputs_file=str(inputs))
    assert out.exists()
    actual = ort.InferenceSession(str(out)).run(None, feeds)
    verdict = compare(
        [f"out{i}" for i in range(len(expected))], expected, actual
    )  # per dtype: fp32 rtol 1e-4, integers exact
    assert verdict.ok, verdict.first_failure()
    assert result.decision.reason  # kept or handed back, it says why
