"""MatMul: ``Add(MatMul(a, b), c) -> Gemm(a, b, c)`` for 2-D operands.

Legality: Gemm computes ``a @ b + c`` with c broadcast unidirectionally to [M, N]; that equals
the MatMul+Add only when a and b are 2-D (MatMul broadcasts batch dims, Gemm has none) and c
broadcasts to [M, N] without growing the result (rank <= 2, and each dim 1 or equal). Float types
only (Gemm's type constraint in opset 13+ allows float, double, float16, bfloat16 and ints, but
ORT's CPU kernel is float/double). The order of summation inside the GEMM kernel is unchanged in
fp32 within verify's tolerance.

For an N-D ``a`` (``matmul-add-gemm-nd``): ``Reshape(Gemm(Reshape(a, [-1, K]), b, c), [d0, ..., N])``,
what ORT's own MatMulAddFusion builds. Done here, before ORT, the two Reshapes meet the Reshapes
around them (a window partition, the head split of Q/K/V, another Gemm's output) and the cleanup
rules merge them; the three Q/K/V projections then share one input Reshape. Left to ORT, every
projection keeps its own pair of Reshapes next to the model's (Swin: 34 more kernels than
needed). Legality: ``a``'s shape is static (the output shape is a constant), ``b`` is 2-D [K, N],
``c`` holds N values along the last axis only (shape [N] or [1, ..., 1, N]): then row i of the
flattened ``a`` times ``b`` plus ``c`` is exactly output row i. Judged by time like every rule:
an earlier measurement found this form slower than the MatMul on some small shapes.
"""

from __future__ import annotations

import onnx_ir as ir
from onnxscript.rewriter import MatchResult

from graphopt.formats.onnx.rules import rule
from graphopt.passes.onnx._util import rank, static_shape


def _pattern(op, a, b, c):
    return op.Add(op.MatMul(a, b), c)


def _check(context, a, b, c, **_):
    if rank(a) != 2 or rank(b) != 2:
        return MatchResult().fail(f"MatMul operands have ranks {rank(a)}, {rank(b)}; Gemm needs 2-D")
    if a.dtype not in (ir.DataType.FLOAT, ir.DataType.DOUBLE):
        return MatchResult().fail(f"dtype {a.dtype} has no CPU Gemm kernel")
    if c.shape is None or len(c.shape) > 2:
        return MatchResult().fail("bias rank unknown or above 2")
    n = b.shape[1]
    m = a.shape[0]
    expected = (m, n)[2 - len(c.shape) :]
    for dim, want in zip(c.shape, expected):
        if dim != 1 and dim != want:
            return MatchResult().fail(f"bias shape {c.shape} does not broadcast to [M, N]")
    return True


# Add(MatMul(a, b), c) -> Gemm(a, b, c)   for 2-D a, b
matmul_add_to_gemm = rule(
    "matmul-add-gemm",
    "matmul",
    "Add(MatMul(a, b), c), a and b 2-D  ->  Gemm(a, b, c)",
    _pattern,
    lambda op, a, b, c: op.Gemm(a, b, c),
    _check,
    commute=True,
)


def _check_nd(context, a, b, c, **_):
    dims = static_shape(a)
    if dims is None or len(dims) < 3 or rank(b) != 2:
        return MatchResult().fail(f"a is not of static rank >= 3 ({a.shape}) or b is not 2-D")
    if a.dtype not in (ir.DataType.FLOAT, ir.DataType.DOUBLE):
        return MatchResult().fail(f"dtype {a.dtype} has no CPU Gemm kernel")
    n = b.shape[1]
    if (
        c.shape is None
        or not isinstance(n, int)
        or c.shape[-1] != n
        or any(d != 1 for d in c.shape[:-1])
        or len(c.shape) > len(dims)
    ):
        return MatchResult().fail(f"bias shape {c.shape} is not [N] along the last axis")
    return True


def _replacement_nd(op, a, b, c):
    dims, n = static_shape(a), b.shape[1]
    flat = op.Reshape(a, op.Constant(value_ints=[-1, dims[-1]]))
    bias = c if len(c.shape) == 1 else op.Reshape(c, op.Constant(value_ints=[n]))
    return op.Reshape(op.Gemm(flat, b, bias), op.Constant(value_ints=[int(d) for d in dims[:-1]] + [int(n)]))


# Add(MatMul(a, b), c) -> Reshape(Gemm(Reshape(a, [-1, K]), b, c), a's dims with N)   for static N-D a
matmul_add_to_gemm_nd = rule(
    "matmul-add-gemm-nd",
    "matmul",
    "Add(MatMul(a, b), c), a of static rank >= 3, b 2-D  ->  Reshape(Gemm(Reshape(a, [-1, K]), b, c))",
    _pattern,
    _replacement_nd,
    _check_nd,
    commute=True,
)

RULES = [matmul_add_to_gemm, matmul_add_to_gemm_nd]
