"""MatMul: ``Add(MatMul(a, b), c) -> Gemm(a, b, c)`` for 2-D operands.

Legality: Gemm computes ``a @ b + c`` with c broadcast unidirectionally to [M, N]; that equals
the MatMul+Add only when a and b are 2-D (MatMul broadcasts batch dims, Gemm has none) and c
broadcasts to [M, N] without growing the result (rank <= 2, and each dim 1 or equal). Float types
only (Gemm's type constraint in opset 13+ allows float, double, float16, bfloat16 and ints, but
ORT's CPU kernel is float/double). The order of summation inside the GEMM kernel is unchanged in
fp32 within verify's tolerance.

Deliberately not done for 3-D MatMuls: wrapping them in Reshape/Gemm/Reshape (as ORT's own
MatMulAddFusion does) costs more than it saves on small shapes.
"""

from __future__ import annotations

import onnx_ir as ir
from onnxscript.rewriter import MatchResult

from graphopt.passes.onnx._util import rank
from graphopt.formats.onnx.rules import rule


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
    "matmul-add-gemm", "matmul", "Add(MatMul(a, b), c), a and b 2-D  ->  Gemm(a, b, c)", _pattern, lambda op, a, b, c: op.Gemm(a, b, c), _check, commute=True
)

RULES = [matmul_add_to_gemm]
