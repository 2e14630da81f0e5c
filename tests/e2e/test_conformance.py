"""A corpus nobody here wrote: the models shipped with onnx's backend tests, with their outputs.

For each model (simple, pytorch-converted, pytorch-operator, light model zoo), `optimize` runs
on the shipped inputs and the result must still produce the shipped expected outputs wherever
the original model does under ORT. Tolerances are the corpus's own (onnx's backend runner
compares models at rtol 1e-3, atol 1e-7). The tally (optimized / unchanged / refused) is
printed (run with -s) and written to conformance-summary.json in the test's tmp folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx.backend.test.runner import Runner

from graphopt.api.files import optimize
from graphopt.core.errors import GraphoptError
from graphopt.formats.onnx import files as onnx_files
from graphopt.targets.onnxruntime import OrtTarget

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
RTOL, ATOL = 1e-3, 1e-7


def _cases():
    for group in ("simple", "pytorch-converted", "pytorch-operator"):
        for case in sorted((DATA / group).iterdir()):
            data_set = case / "test_data_set_0"
            if (case / "model.onnx").exists() and data_set.exists():
                yield f"{group}/{case.name}", case / "model.onnx", data_set
    for model in sorted((DATA / "light").glob("*.onnx")):
        yield f"light/{model.stem}", model, None


def _read_pb(path: Path):
    tensor = onnx.TensorProto()
    tensor.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(tensor)


def _feeds_and_expected(model_path: Path, data_set: Path | None):
    proto = onnx.load(str(model_path), load_external_data=False)
    initializers = {i.name for i in proto.graph.initializer}
    real_inputs = [i for i in proto.graph.input if i.name not in initializers]
    if data_set is None:  # light models: the backend runner's deterministic dummy inputs
        feeds = {x.name: Runner.generate_dummy_data(x, seed=0, name=model_path.stem) for x in real_inputs}
        expected = [
            _read_pb(model_path.with_name(f"{model_path.stem}_output_{i}.pb")) for i in range(len(proto.graph.output))
        ]
    else:
        feeds = {x.name: _read_pb(data_set / f"input_{i}.pb") for i, x in enumerate(real_inputs)}
        expected = [_read_pb(data_set / f"output_{i}.pb") for i in range(len(proto.graph.output))]
    return feeds, expected


def _matches(actual, expected) -> bool:
    return all(
        np.allclose(a, e, rtol=RTOL, atol=ATOL, equal_nan=True) and a.shape == e.shape for a, e in zip(actual, expected)
    )


@pytest.mark.slow
def test_backend_corpus_still_matches_expected_outputs(tmp_path):
    tally = {"optimized": [], "unchanged": {}, "refused": {}, "original_mismatch": []}
    wrong = []
    for name, model_path, data_set in _cases():
        try:
            feeds, expected = _feeds_and_expected(model_path, data_set)
        except Exception as error:  # non-tensor inputs (sequences) have no .pb to read as a tensor
            tally["refused"][name] = f"corpus data not readable as tensors: {error}"
            continue
        npz = tmp_path / "inputs.npz"
        np.savez(npz, **feeds)
        out = tmp_path / f"{name.replace('/', '_')}.opt.onnx"
        try:
            result = optimize(model_path, out, inputs_file=str(npz), budget_s=3)
        except GraphoptError as error:
            tally["refused"][name] = str(error)
            assert not out.exists()
            continue
        if result.kept_original:
            tally["unchanged"][name] = result.reason
        else:
            tally["optimized"].append(name)
        original_outputs = OrtTarget().compile(onnx_files.load(model_path), report=False).run(feeds)
        if not _matches(original_outputs, expected):
            tally["original_mismatch"].append(name)
            continue
        if not _matches(OrtTarget().compile(onnx_files.load(out), report=False).run(feeds), expected):
            wrong.append(name)
    summary = {k: (len(v), v) for k, v in tally.items()} | {"wrong": wrong}
    (tmp_path / "conformance-summary.json").write_text(json.dumps(summary, indent=1))
    print({k: v[0] for k, v in summary.items() if k != "wrong"}, "wrong:", wrong)
    assert not wrong, f"optimized models no longer match the corpus: {wrong}"
    assert len(tally["refused"]) + len(tally["unchanged"]) + len(tally["optimized"]) >= 100
