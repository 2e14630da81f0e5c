"""The ml family on graphs skl2onnx writes for real scikit-learn pipelines, and near misses."""

import numpy as np
import pytest

pytest.importorskip("skl2onnx")

import onnx_ir as ir  # noqa: E402
from skl2onnx import to_onnx  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from graphopt.formats.onnx import files as onnx_files  # noqa: E402
from graphopt.formats.onnx.adapter import prepare  # noqa: E402
from graphopt.formats.onnx.rewrite import rewrite_to_fixpoint  # noqa: E402
from graphopt.passes.onnx import ml  # noqa: E402
from tests.passes.onnx.harness import assert_no_site, assert_same_outputs, ops, parse  # noqa: E402

RNG = np.random.default_rng(0)
FEATURES = RNG.standard_normal((256, 12)).astype(np.float32) * 3.0 + 5.0  # offset, scaled features, as real data
LABELS = (FEATURES[:, :3].sum(axis=1) > 15).astype(np.int64) + (FEATURES[:, 3] > 7).astype(np.int64)


def _converted(pipeline) -> ir.Model:
    fitted = pipeline.fit(FEATURES, LABELS if hasattr(pipeline, "predict_proba") else FEATURES[:, 0] * 2.0)
    proto = to_onnx(
        fitted,
        FEATURES[:1],
        target_opset={"": 17, "ai.onnx.ml": 3},
        options={"zipmap": False} if hasattr(pipeline, "predict_proba") else None,
    )
    return prepare(ir.serde.deserialize_model(proto))


def _folded(model: ir.Model, rules=ml.RULES) -> ir.Model:
    rewritten = onnx_files.copy(model)
    applied = rewrite_to_fixpoint(rewritten, rules)
    assert applied, "no ml rule fired"
    assert_same_outputs(
        model, rewritten, {model.graph.inputs[0].name: FEATURES[:64]}
    )  # labels exactly, scores to fp32 tolerance
    return rewritten


def test_scaler_then_logistic_regression_becomes_one_classifier():
    folded = _folded(_converted(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))))
    assert "Scaler" not in ops(folded) and ops(folded).count("LinearClassifier") == 1


def test_scaler_pca_and_a_classifier_fold_into_the_classifier():
    folded = _folded(_converted(make_pipeline(StandardScaler(), PCA(6), LogisticRegression(max_iter=500))))
    assert not {"Scaler", "Sub", "MatMul", "Gemm"} & set(ops(folded))


def test_scaler_pca_and_a_regressor_fold_into_the_regressor():
    folded = _folded(_converted(make_pipeline(StandardScaler(), PCA(6), LinearRegression())))
    assert not {"Scaler", "Sub", "MatMul"} & set(ops(folded))


def test_a_fold_of_a_fold_keeps_its_own_weights():
    # sub-matmul makes Gemm(x, W, b) named after the product; scaler-matmul then folds the Scaler
    # into that Gemm and names its weights the same way: both must stay in the graph
    folded = _folded(
        _converted(make_pipeline(StandardScaler(), PCA(6), LinearRegression())), [ml.sub_matmul, ml.scaler_matmul]
    )
    assert ops(folded).count("Gemm") == 1 and "Scaler" not in ops(folded)


def test_matmul_of_a_centred_3d_input_is_left_alone():
    model = parse("""<ir_version: 8, opset_import: ["" : 17]> g (float[2,4,3] x) => (float[2,4,2] y) {
        c = Constant <value = float[3] {1.0, 2.0, 3.0}> ()
        w = Constant <value = float[3,2] {1.0, 0.0, 0.0, 1.0, 1.0, 1.0}> ()
        d = Sub (x, c)
        y = MatMul (d, w) }""")
    assert_no_site(model, ml.sub_matmul)  # Gemm takes 2-D inputs only


def test_gemm_that_scales_its_product_is_not_folded_into_the_scaler():
    model = parse("""<ir_version: 8, opset_import: ["" : 17, "ai.onnx.ml" : 3]> g (float[N,3] x) => (float[N,2] y) {
        s = ai.onnx.ml.Scaler <offset = [1.0, 2.0, 3.0], scale = [0.5, 0.5, 0.5]> (x)
        w = Constant <value = float[3,2] {1.0, 0.0, 0.0, 1.0, 1.0, 1.0}> ()
        b = Constant <value = float[2] {0.5, -0.5}> ()
        y = Gemm <alpha = 2.0> (s, w, b) }""")
    assert_no_site(prepare(model), ml.scaler_matmul)
