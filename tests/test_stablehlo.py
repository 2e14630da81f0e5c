"""The StableHLO format (graphopt/formats/stablehlo/) and the XLA target (graphopt/targets/xla/):
the three file forms JAX users have, a module's inputs and ops, bad input, and XLA compiling a
module with its fusions read from the optimized HLO and outputs equal to jax.jit's."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax import export  # noqa: E402

from graphopt.core import protocols, registry  # noqa: E402
from graphopt.core.errors import BadModelError  # noqa: E402
from graphopt.formats.stablehlo import StableHloFormat, load, save  # noqa: E402
from graphopt.targets.xla import XlaTarget, fusion_report  # noqa: E402

RTOL, ATOL = 1e-5, 1e-5  # fp32: the same module through the same compiler, only argument passing differs


def mlp(x, w1, w2):
    """A layer with what XLA fuses: dots (library fusions), GELU and a residual (loop fusions)."""
    h = jax.nn.gelu(x @ w1, approximate=False)
    return x + h @ w2


def _arguments(batch=2, seq=8, hidden=32):
    rng = np.random.default_rng(0)
    return [
        rng.standard_normal((batch, seq, hidden), np.float32),
        rng.standard_normal((hidden, 4 * hidden), np.float32) * 0.1,
        rng.standard_normal((4 * hidden, hidden), np.float32) * 0.1,
    ]


@pytest.fixture
def mlir_file(tmp_path):
    path = tmp_path / "mlp.mlir"
    path.write_text(jax.jit(mlp).lower(*_arguments()).as_text())
    return path


def test_text_and_bytecode_round_trip_to_the_same_module(mlir_file, tmp_path):
    fmt = StableHloFormat()
    module = fmt.load(mlir_file)
    assert module.form == "text" and "stablehlo.dot_general" in module.text
    save(module, tmp_path / "mlp.mlirbc")
    assert (tmp_path / "mlp.mlirbc").read_bytes().startswith(b"ML\xefR")
    again = load(tmp_path / "mlp.mlirbc")
    assert again.form == "bytecode" and fmt.fingerprint(again) == fmt.fingerprint(module)
    save(again, tmp_path / "back.mlir")
    assert fmt.fingerprint(load(tmp_path / "back.mlir")) == fmt.fingerprint(module)


def test_inputs_and_ops_of_a_lowered_module(mlir_file):
    fmt = StableHloFormat()
    module = fmt.load(mlir_file)
    specs = fmt.input_specs(module)
    assert [(s.dtype, s.dims) for s in specs] == [
        (np.float32, (2, 8, 32)),
        (np.float32, (32, 128)),
        (np.float32, (128, 32)),
    ]
    ops = list(fmt.op_types(module))
    assert ops.count("stablehlo.dot_general") == 2 and "func.func" in ops
    assert isinstance(fmt, protocols.Format)


def test_a_shape_polymorphic_export_keeps_its_symbols_and_writes_back_as_an_export(tmp_path):
    batch, seq = export.symbolic_shape("batch, seq")
    x, w1, w2 = _arguments()
    exported = export.export(jax.jit(mlp))(jax.ShapeDtypeStruct((batch, seq, 32), jnp.float32), w1, w2)
    path = tmp_path / "mlp.jaxexport"
    path.write_bytes(exported.serialize())
    fmt = StableHloFormat()
    module = fmt.load(path)
    assert module.form == "exported"
    assert fmt.input_specs(module)[0].dims == ("batch", "seq", 32)
    save(module, tmp_path / "copy.jaxexport")
    copy = export.deserialize(bytearray((tmp_path / "copy.jaxexport").read_bytes()))
    x = np.ones((3, 5, 32), np.float32)  # sizes the export never saw
    np.testing.assert_allclose(np.asarray(copy.call(x, w1, w2)), np.asarray(mlp(x, w1, w2)), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "content, says",
    [
        (b"not a model at all", "not a StableHLO module"),
        (b'module { "foo.bar"() : () -> () }', "unregistered dialect"),
        (b"\x00\x01\x02binary junk", "not a StableHLO module"),
    ],
)
def test_bad_input_is_one_line(tmp_path, content, says):
    path = tmp_path / "bad.mlir"
    path.write_bytes(content)
    with pytest.raises(BadModelError, match=says) as raised:
        load(path)
    assert "\n" not in str(raised.value)


def test_xla_compiles_the_module_and_reports_its_fusions(mlir_file):
    module = load(mlir_file)
    target = registry.target_for("xla-cpu")
    assert isinstance(target, protocols.Target) and target.name == "xla-cpu"
    compiled = target.compile(module)
    arguments = _arguments()
    outputs = compiled.run({f"arg{i}": a for i, a in enumerate(arguments)})
    np.testing.assert_allclose(outputs[0], np.asarray(jax.jit(mlp)(*arguments)), rtol=RTOL, atol=ATOL)
    expected = fusion_report(jax.jit(mlp).lower(*arguments).compile().as_text())  # what jax.jit itself runs
    assert compiled.report.fused == expected.fused and compiled.report.kernels == expected.kernels
    assert sum(compiled.report.fused.values()) >= 2  # the two dots at least are fusions of their own


def test_the_fusion_report_reads_the_entry_computation():
    hlo = """HloModule m

%fused_computation (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  ROOT %e = f32[4]{0} exponential(%p)
}

ENTRY %main (x: f32[4], y: f32[4,4]) -> (f32[4], f32[4]) {
  %x = f32[4]{0} parameter(0)
  %y = f32[4,4]{1,0} parameter(1)
  %b = f32[2,2]{1,0} bitcast(%x)
  %f = f32[4]{0} fusion(%x), kind=kLoop, calls=%fused_computation
  %d = f32[4]{0} dot(%y, %f), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  ROOT %t = (f32[4]{0}, f32[4]{0}) tuple(%f, %d)
}
"""
    report = fusion_report(hlo)
    assert (
        report.fused == {"fusion.kLoop": 1} and report.kernels == 2
    )  # the fusion and the dot; parameters, bitcast, tuple move no data
    assert report.ops["dot"] == 1 and "exponential" not in report.ops  # inside a fusion, not a kernel of its own


def test_dynamic_modules_are_refused_by_xla_with_one_line(tmp_path):
    batch = export.symbolic_shape("batch")[0]
    x, w1, w2 = _arguments()
    exported = export.export(jax.jit(mlp))(jax.ShapeDtypeStruct((batch, 8, 32), jnp.float32), w1, w2)
    path = tmp_path / "dyn.jaxexport"
    path.write_bytes(exported.serialize())
    with pytest.raises(BadModelError, match="dynamic dimensions"):
        XlaTarget().compile(load(path))


def test_xla_options_are_levers_that_keep_outputs_close_and_are_written_beside_the_output(mlir_file, tmp_path):
    """Each compile option offered compiles in this process (an unknown one would be an error, not
    an abort), keeps outputs within fp32 tolerance (another dot kernel: another summation order),
    and a winner is written as the jax.jit compiler_options that reproduce it."""
    from graphopt.targets.xla import options

    target = registry.target_for("xla-cpu")
    assert isinstance(target, protocols.Tunable) and isinstance(target, protocols.SettingsFile)
    arguments = _arguments()
    expected = np.asarray(jax.jit(mlp)(*arguments))
    levers = target.levers(None)
    assert {name for lever in levers for name, _ in lever.options} == {name for name, _ in options.LEVERS}
    for lever in levers:
        outputs = target.with_lever(lever).compile(load(mlir_file)).run({f"arg{i}": a for i, a in enumerate(arguments)})
        np.testing.assert_allclose(outputs[0], expected, rtol=RTOL, atol=ATOL)
    both = target.combine(levers[:2])
    output = tmp_path / "out.mlir"
    written = target.write_lever(output, both, None)
    assert written == str(tmp_path / "out.xla.json") and target.read_lever(output) == both
    jitted = target.with_lever(both).jit(mlp)
    np.testing.assert_allclose(np.asarray(jitted(*arguments)), expected, rtol=RTOL, atol=ATOL)
    assert target.write_lever(output, None, None) is None and not (tmp_path / "out.xla.json").exists()
    assert target.lever_from_record(both.record()) == both
