"""graphopt.jax.optimize: a drop-in for jax.jit(fn) over pytrees, and `graphopt optimize` /
`graphopt check` on StableHLO files written by jax.jit(...).lower(...).as_text()."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import graphopt.jax as gjax  # noqa: E402
from graphopt.cli.app import app  # noqa: E402
from graphopt.models import jax_zoo  # noqa: E402

RTOL, ATOL = 1e-5, 1e-5  # fp32, as for every XLA comparison: the same math, at most another dot kernel
TINY = jax_zoo.Shape(layers=1, hidden=64, heads=4, kv_heads=2, ffn=128, cache=16, vocab=100)


def _decode():
    return jax_zoo._decoder(jax.random.PRNGKey(0), TINY)


def test_the_result_takes_and_gives_the_same_pytrees_as_jit():
    fn, args = _decode()
    fast = gjax.optimize(fn, *args, budget=20)
    expected, got = jax.jit(fn)(*args), fast(*args)
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(expected)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL)
    assert fast.graphopt.log  # the grouped-dot candidate was judged
    if fast.graphopt.chosen is not None:  # what runs is the kept module, called from jax.jit
        assert "call_exported" in fast.lower(*args).as_text()
    params, ids, k, v = args
    other = fast(
        params, jnp.ones((2, 1), jnp.int32), jnp.concatenate([k, k], 1), jnp.concatenate([v, v], 1)
    )  # another batch: jit's path
    assert other[0].shape == (2, 1, TINY.vocab)


def test_optimize_and_check_on_a_lowered_module(tmp_path):
    fn, args = _decode()
    source = tmp_path / "decode.mlir"
    source.write_text(jax.jit(fn, keep_unused=True).lower(*args).as_text())
    out = tmp_path / "decode.opt.mlir"
    result = CliRunner().invoke(app, ["optimize", str(source), "-o", str(out), "--budget", "20"])
    assert result.exit_code == 0, result.output
    assert out.exists() and "xla-cpu" in result.output
    checked = CliRunner().invoke(app, ["check", str(source), str(out), "--on-inconclusive", "pass"])
    assert checked.exit_code == 0, checked.output


@pytest.mark.parametrize("content", [b"not mlir", b'module { "foo.bar"() : () -> () }'])
def test_bad_stablehlo_input_is_exit_2_and_no_file(tmp_path, content):
    source, out = tmp_path / "bad.mlir", tmp_path / "bad.opt.mlir"
    source.write_bytes(content)
    result = CliRunner().invoke(app, ["optimize", str(source), "-o", str(out)])
    assert result.exit_code == 2 and not out.exists()
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "not a StableHLO module" in errors[0] and "Traceback" not in result.output


def test_a_shape_polymorphic_export_is_refused_with_one_line(tmp_path):
    from jax import export

    exported = export.export(jax.jit(lambda x: jnp.sin(x) * 2))(
        jax.ShapeDtypeStruct(export.symbolic_shape("b, 8"), jnp.float32)
    )
    source, out = tmp_path / "poly.jaxexport", tmp_path / "poly.opt.jaxexport"
    source.write_bytes(exported.serialize())
    result = CliRunner().invoke(app, ["optimize", str(source), "-o", str(out)])
    assert result.exit_code == 2 and not out.exists() and "dynamic" in result.output
