from pathlib import Path

import numpy as np
import onnx_ir as ir
import pytest

from graphopt.core.errors import InputGenerationError
from graphopt.formats.onnx import inputs
from tests.passes.onnx.harness import parse


def _embedding_model() -> ir.Model:
    model = parse(
        """<ir_version: 8, opset_import: ["" : 18]>
    g (int64[batch, sequence] input_ids, int64[batch, sequence] attention_mask, """
        """float[50, 4] table) => (float[batch, sequence, 4] y) {
        ax = Constant<value = int64[1] {-1}>()
        e = Gather(table, input_ids)
        m = Cast<to=1>(attention_mask)
        u = Unsqueeze(m, ax)
        y = Mul(e, u)
    }"""
    )
    table = model.graph.inputs.pop()  # make the 50-row table an initializer, as in a real model
    table.const_value = ir.tensor(np.zeros((50, 4), np.float32))
    model.graph.register_initializer(table)
    return model


def test_token_ids_stay_inside_the_embedding_table():
    model = _embedding_model()
    shapes = inputs.bind_dims(inputs.input_specs(model))
    feeds = inputs.generate(model, shapes)
    assert shapes["input_ids"] == (1, 16)
    assert feeds["input_ids"].min() >= 0 and feeds["input_ids"].max() < 50


def test_mask_is_zero_one_and_never_fully_masked():
    model = _embedding_model()
    feeds = inputs.generate(model, {"input_ids": (8, 12), "attention_mask": (8, 12)}, seed=3)
    mask = feeds["attention_mask"]
    assert set(np.unique(mask)) <= {0, 1}
    assert (mask.sum(axis=1) > 0).all()
    assert (mask[:, 0] == 1).all()


def test_symbols_bind_consistently_and_user_shapes_win():
    specs = inputs.input_specs(_embedding_model())
    bound = inputs.bind_dims(specs, {"input_ids": (3, 5)})
    # attention_mask shares both symbols with input_ids, so it follows the user's binding
    assert bound == {"input_ids": (3, 5), "attention_mask": (3, 5)}
    alternate = inputs.bind_dims(specs, None, inputs.ALTERNATE_SIZES)
    assert alternate["input_ids"] != inputs.bind_dims(specs)["input_ids"]


def test_dimension_expressions_are_evaluated():
    specs = [inputs.InputSpec("mask", np.dtype("int64"), ("batch", "past_sequence + 1"))]
    assert inputs.bind_dims(specs) == {"mask": (1, 9)}


def test_dimension_names_that_are_not_identifiers_are_symbols():
    # paddle2onnx names dynamic dimensions "DynamicDimension.0"; tf2onnx "unk__12"; others "N?"
    specs = [
        inputs.InputSpec("x", np.dtype("float32"), ("DynamicDimension.0", 40, 96)),
        inputs.InputSpec("y", np.dtype("float32"), ("DynamicDimension.0", "batch:0")),
    ]
    bound = inputs.bind_dims(specs)
    assert bound["x"][0] == bound["y"][0] and bound["x"][1:] == (40, 96) and bound["y"][1] == 1
    assert inputs.bind_dims(specs, {"x": (2, 40, 96)})["y"][0] == 2  # one name, one size


def test_wrong_rank_in_user_shape_is_refused():
    with pytest.raises(InputGenerationError, match="rank 1 given"):
        inputs.bind_dims(inputs.input_specs(_embedding_model()), {"input_ids": (3,)})


def test_scalar_inputs_are_zero_dimensional_arrays_ort_accepts():
    # a voice-activity model's sample rate, an If's condition: inputs of shape ()
    model = parse("""<ir_version: 8, opset_import: ["" : 18]> g (bool flag, float gain, float[3] x) => (float[3] y) {
        g2 = Where(flag, gain, gain)
        y = Mul(x, g2) }""")
    feeds = inputs.generate(model, inputs.bind_dims(inputs.input_specs(model)))
    assert (
        all(isinstance(a, np.ndarray) for a in feeds.values())
        and feeds["flag"].shape == ()
        and feeds["gain"].shape == ()
    )
    from tests.passes.onnx.harness import run

    assert run(model, feeds)[0].shape == (3,)


def _strided_audio_model() -> ir.Model:
    """[batch, samples] through a 64-tap Conv of stride 32 (an audio front end), with a recurrent
    state of fixed batch 1 beside it: 16 samples are too few, and batch 2 does not fit the state."""
    model = parse(
        '<ir_version: 8, opset_import: ["" : 18]> '
        """g (float[batch, samples] x, float[1, 4] state, float[4, 1, 64] w) => (float[1, 4, frames] y) {
        ax = Constant<value = int64[1] {1}>()
        last = Constant<value = int64[1] {2}>()
        u = Unsqueeze(x, ax)
        c = Conv<strides = [32]>(u, w)
        s = Unsqueeze(state, last)
        y = Add(c, s) }"""
    )
    model.graph.inputs.pop()  # w becomes the Conv's weights (an initializer), as in a real model
    weights = next(v for n in model.graph for v in n.inputs if v is not None and v.name == "w")
    weights.const_value = ir.tensor(np.ones((4, 1, 64), np.float32) / 64)
    model.graph.register_initializer(weights)
    return model


def test_larger_sizes_are_tried_when_the_model_does_not_run_at_the_defaults(tmp_path):
    from graphopt.api.files import optimize

    path = tmp_path / "audio.onnx"
    ir.save(_strided_audio_model(), path)
    result = optimize(path, None, budget_s=10)  # would exit 2: "Invalid input shape" at 16 samples
    assert result.decision is not None


OPTIMUM = Path(__file__).parent / "data" / "optimum"


def test_an_unnamed_leading_symbol_is_the_batch():
    # torch's dynamo exporter names dynamic axes s33, s50: the first axis is bound as a batch of 1
    specs = [
        inputs.InputSpec("input_ids", np.dtype("int64"), ("s33", "s50")),
        inputs.InputSpec("attention_mask", np.dtype("int64"), ("s6", "s81")),
    ]
    assert inputs.bind_dims(specs) == {"input_ids": (1, 16), "attention_mask": (1, 16)}
    assert inputs.bind_dims(specs, None, inputs.ALTERNATE_SIZES) == {"input_ids": (2, 7), "attention_mask": (2, 7)}


def test_a_kv_cache_decoder_is_verified_at_the_decode_step_and_a_short_prefill():
    """optimum's text-generation-with-past export: the first feeds are one new token after a
    cache of 127, at position 127; the second a batch of 2 with 7 new tokens after 5."""
    from graphopt.formats.onnx.feeds import verification_feeds

    model = ir.load(OPTIMUM / "llama-tiny" / "model.onnx")
    assert inputs.size_ladder(inputs.input_specs(model)) is inputs.DECODE_LADDER
    step, prefill = verification_feeds(model, None, None)
    assert step["input_ids"].shape == (1, 1) and step["past_key_values.0.key"].shape == (1, 2, 127, 16)
    assert step["attention_mask"].shape == (1, 128) and step["position_ids"].tolist() == [[127]]
    assert prefill["input_ids"].shape == (2, 7) and prefill["past_key_values.1.value"].shape == (2, 2, 5, 16)
    assert prefill["position_ids"].tolist() == [list(range(5, 12))] * 2


def test_a_model_without_a_cache_keeps_the_prefill_ladder():
    assert inputs.size_ladder(inputs.input_specs(_embedding_model())) is inputs.SIZE_LADDER
