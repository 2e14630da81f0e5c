"""Grouped-query attention: MultiHeadAttention over repeated K/V heads to ORT's
``com.microsoft::GroupQueryAttention``.

After the rotary and attention families, a LLaMA-style layer exported by torch 2.13 still
computes its keys and values the long way, per layer:

    k  = RotaryEmbedding(Transpose(Reshape(k3, [B, S, Hkv, Dh]), [0, 2, 1, 3]))   # [B, Hkv, S, Dh]
    kt = Concat(past_key, k, axis=-2)                     # the present key (decode step only)
    kr = Reshape(Expand(Unsqueeze(kt, [2]), [B, Hkv, G, T, Dh]), [B, H, T, Dh])   # repeat_kv
    (v the same without rotary)
    y  = MultiHeadAttention(q3, kr, vr, attention_bias=mask, num_heads=H)

GroupQueryAttention reads K/V with Hkv heads directly (head h uses K/V head h // G, exactly
transformers' ``repeat_kv`` order), appends them to the cache itself and returns the present
key/value, so the transposes, the cache concat and the H/Hkv-fold copy of K and V go away
(~11 kernels per layer, and the copies are the largest tensors of the step).

When Q and K are both rotated by RotaryEmbedding with the same positions and cos/sin tables
(what the rotary family writes), GroupQueryAttention rotates them itself (``do_rotary=1``, the
tables as its cos/sin caches, RotaryEmbedding's start offset spelled out as [B, S]
``position_ids``): two fewer kernels per layer. The sequence lengths it needs are read off the
mask, which all layers share, so they are computed once.

``gqa-packed-qkv`` then packs Q, K and V when they are MatMuls of one input by constant 2-D
weights: one MatMul by [Wq | Wk | Wv] feeds GroupQueryAttention's packed query input, which the
kernel splits as [H * Dh | Hkv * Dh | Hkv * Dh] columns, the concatenation order (the QKV
horizontal merge; the sums are the same products, so the outputs are the same up to MLAS's
blocking).

Legality, checked: the K/V repeat is Unsqueeze at axis 2, Expand and Reshape with static Hkv,
G = H / Hkv and head size, into the head count MultiHeadAttention was given; the head split is
Reshape + Transpose(0, 2, 1, 3) of a 3-D [B, S, Hkv * Dh] projection; the cache concat is on the
sequence axis; MultiHeadAttention has no bias, key padding mask or past inputs of its own and is
not unidirectional; float32 or float16. Rotary on K, when there, is ORT's RotaryEmbedding and is
applied to the 3-D projection instead (same per-head rotation, position and cos/sin inputs).

No input contract is needed: GroupQueryAttention is used with ``causal=0`` and the model's own
mask as ``attention_bias`` (ORT >= 1.22), with ``seqlens_k = T - 1`` for every row, so it attends
to exactly the keys the mask allows, padding included, as the decomposed graph does. ORT refuses a
step with past context, more than one query token and batch > 1, so with a cache the query must
be one token or the batch one (static: ``--fix-dim sequence_length=1`` or ``--fix-dim
batch_size=1`` on optimum's merged decoder); prefill without a cache takes any length.

Measured (``python -m bench.rule_effects``, bench/results/rule-effects.md): on the LLaMA-style
decoder (4 layers, GQA 8/2, hidden 512) the whole rule set runs prefill at 0.919 [0.909, 0.928]
of the original and without this family at 0.952 [0.943, 0.959]; the decode step at 0.923
[0.917, 0.927] against 0.973 [0.965, 0.980] (139 ORT kernels down to 81). Packing Q/K/V alone,
all rules with and without ``gqa-packed-qkv`` in two interleaved runs each: prefill 0.894 and
0.922 against 0.942 and 0.940; decode 0.922 and 0.922 against 0.943 and 0.943.

``gqa-repeat-shape`` comes first: transformers 4 (optimum's exports) slices the causal mask to
``key_states.shape[-2]``, read off the *repeated* keys, and that extra reader keeps the repeat from
being replaced. ``Shape(Reshape(Expand(Unsqueeze(k, [2]), ...), [B, H, T, Dh]))`` is ``Shape(k)``
with H in place of Hkv (the repeat copies heads, nothing else), so it is read off k instead:
``Concat(Shape(k)[0:1], [H], Shape(k)[2:])``, and when k is the cache concat, off its two parts
(T = past + new), since GroupQueryAttention makes that concat itself from a mask that must not
depend on it. Exact: the same integers; checked from the inferred
shapes (B, T and Dh the same dimensions on both, H static) and opset >= 15 (Shape's start/end).

Its sites appear only once the attention family has run (it rewrites what that family leaves),
so the family search takes its families from the greedy candidate's rewrites, not the input's.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import MatchResult
from onnxscript.rewriter import pattern as orp

from graphopt.formats.onnx.rules import rule
from graphopt.passes.onnx._util import constant, opset, same_computation, same_dim

FAMILY = "gqa"
_HEAD_SPLIT = [0, 2, 1, 3]


def _heads(op, x3, shape, prefix):
    return op.Transpose(
        op.Reshape(x3, shape, _outputs=[f"{prefix}_split"]), perm=_HEAD_SPLIT, _outputs=[f"{prefix}_heads"]
    )


def _pattern(
    op,
    q,
    k3,
    k_shape,
    v3,
    v_shape,
    positions,
    cos,
    sin,
    past_key,
    past_value,
    k_axes,
    k_expand,
    k_flat,
    v_axes,
    v_expand,
    v_flat,
    mask,
):
    k_heads = _heads(op, k3, k_shape, "k")
    k_rotated = op.RotaryEmbedding(k_heads, positions, cos, sin, _domain="com.microsoft", _outputs=["k_rotary"])
    k_new = orp.OrValue([k_rotated, k_heads])
    k_all = orp.OrValue([op.Concat(past_key, k_new, _outputs=["k_concat"]), k_new])
    v_new = _heads(op, v3, v_shape, "v")
    v_all = orp.OrValue([op.Concat(past_value, v_new, _outputs=["v_concat"]), v_new])
    k_repeated = op.Reshape(
        op.Expand(op.Unsqueeze(k_all, k_axes), k_expand, _outputs=["k_grouped"]), k_flat, _outputs=["k_repeated"]
    )
    v_repeated = op.Reshape(
        op.Expand(op.Unsqueeze(v_all, v_axes), v_expand, _outputs=["v_grouped"]), v_flat, _outputs=["v_repeated"]
    )
    out = op.MultiHeadAttention(
        q, k_repeated, v_repeated, None, None, mask, _domain="com.microsoft", _outputs=["attention"]
    )
    return out, k_all, v_all


def _dims(value: ir.Value, rank: int):
    """Static ints where known, None for symbolic dims; None when the rank is not ``rank``."""
    if value.shape is None or value.shape.rank() != rank:
        return None
    return tuple(d if isinstance(d, int) else None for d in value.shape)


def _check(
    context,
    q,
    k3,
    v3,
    k_axes,
    v_axes,
    attention,
    k_grouped,
    v_grouped,
    k_repeated,
    v_repeated,
    k_split,
    v_split,
    mask,
    k_heads,
    v_heads,
    k_concat=None,
    v_concat=None,
    k_rotary=None,
    **_,
):
    heads = attention.producer().attributes.get_int("num_heads", None)
    repeats = ((k_split, k_grouped, k_repeated), (v_split, v_grouped, v_repeated))
    why = (
        _attention_problem(attention, q, k3, v3, mask)
        or _repeat_problem(heads, q, k3, v3, k_axes, v_axes, repeats)
        or _cache_problem(q, k_concat, v_concat, k_heads, v_heads, k_rotary, head_size=_dims(v_split, 4)[3])
    )
    if why:
        return MatchResult().fail(why)
    mask_dims = _dims(mask, 4)
    if mask_dims is None or mask_dims[1] not in (1, heads):
        return MatchResult().fail("the mask is not [B or 1, 1 or H, S, T]")
    return True


def _attention_problem(attention, q, k3, v3, mask) -> str | None:
    """Why the MultiHeadAttention node and its inputs are not what GroupQueryAttention takes, or None."""
    node = attention.producer()
    attrs = node.attributes
    if attrs.get_int("unidirectional", 0) != 0 or attrs.get_int("num_heads", None) is None:
        return "MultiHeadAttention is unidirectional or has no num_heads"
    if len(node.inputs) > 6 and any(v is not None for v in node.inputs[6:]):
        return "MultiHeadAttention has past inputs of its own"
    if mask is None:
        return "MultiHeadAttention has no attention bias (the mask this rewrite passes on)"
    if q.dtype not in (ir.DataType.FLOAT, ir.DataType.FLOAT16) or {k3.dtype, v3.dtype, mask.dtype} != {q.dtype}:
        return f"Q/K/V/mask must be one float32 or float16 type, got {q.dtype}, {k3.dtype}, {v3.dtype}, {mask.dtype}"
    return None


def _repeat_problem(heads: int, q, k3, v3, k_axes, v_axes, repeats) -> str | None:
    """Why K and V are not [B, S, Hkv * Dh] repeated to ``heads`` heads of Q's head size, or None."""
    for axes in (k_axes, v_axes):
        if constant(axes) is None or constant(axes).tolist() != [2]:
            return "K/V heads are not repeated by Unsqueeze at axis 2"
    q_dims, k_dims, v_dims = _dims(q, 3), _dims(k3, 3), _dims(v3, 3)
    if q_dims is None or k_dims is None or v_dims is None or None in (q_dims[2], k_dims[2], v_dims[2]):
        return "Q/K/V are not 3-D with a static hidden size"
    for (split, grouped, repeated), kv_dims in zip(repeats, (k_dims, v_dims)):
        split_dims, grouped_dims, repeated_dims = _dims(split, 4), _dims(grouped, 5), _dims(repeated, 4)
        if split_dims is None or grouped_dims is None or repeated_dims is None:
            return "the K/V head split or repeat has no inferred shape"
        kv_heads, head_size = split_dims[2], split_dims[3]
        if kv_heads is None or head_size is None or kv_heads * head_size != kv_dims[2]:
            return "the K/V head split is not [B, S, Hkv, Dh] with static Hkv and Dh"
        if grouped_dims[1] != kv_heads or grouped_dims[2] is None or grouped_dims[4] != head_size:
            return "the K/V repeat is not [B, Hkv, G, T, Dh]"
        if repeated_dims[1] != heads or repeated_dims[3] != head_size or kv_heads * grouped_dims[2] != heads:
            return f"the K/V repeat does not give the {heads} heads MultiHeadAttention was given"
    if q_dims[2] != heads * head_size:
        return f"Q is not {heads} heads of size {head_size}"
    return None


def _cache_problem(q, k_concat, v_concat, k_heads, v_heads, k_rotary, head_size: int) -> str | None:
    """Why the KV cache (when there is one) and K's rotary are not what GroupQueryAttention does, or None."""
    if (k_concat is None) != (v_concat is None):
        return "only one of K and V has a cache"
    for concat, heads_value in ((k_concat, k_rotary or k_heads), (v_concat, v_heads)):
        if concat is not None:
            node_concat = concat.producer()
            if node_concat.attributes.get_int("axis", None) not in (2, -2) or node_concat.inputs[1] is not heads_value:
                return "the cache is not concatenated on the sequence axis, past first"
    if k_concat is not None and _dims(q, 3)[1] != 1 and _dims(q, 3)[0] != 1:
        return "with a cache ORT's GroupQueryAttention takes one query token, or any number at batch 1"
    if k_rotary is not None:
        rotary_attrs = k_rotary.producer().attributes
        if rotary_attrs.get_int("rotary_embedding_dim", 0) not in (0, head_size):
            return "K's rotary covers part of the head only"
    return None


def _fusable_query_rotary(q: ir.Value, positions, cos, sin, k_rotary: ir.Value | None, head_size: int):
    """The RotaryEmbedding producing ``q``, when GroupQueryAttention can do it (and K's) itself:
    same positions and cos/sin tables as K's, full-head rotation, [max_positions, Dh/2] tables."""
    node = q.producer()
    if k_rotary is None or node is None or node.op_type != "RotaryEmbedding" or node.domain != "com.microsoft":
        return None
    k_node = k_rotary.producer()
    if len(node.inputs) > 4 or not all(same_computation(a, b) for a, b in zip(node.inputs[1:4], (positions, cos, sin))):
        return None
    interleaved = {n.attributes.get_int("interleaved", 0) for n in (node, k_node)}
    if len(interleaved) != 1 or node.attributes.get_int("rotary_embedding_dim", 0) not in (0, head_size):
        return None
    if any(_dims(table, 2) is None or _dims(table, 2)[1] != head_size // 2 for table in (cos, sin)):
        return None
    if positions.shape is None or positions.shape.rank() != 1 or positions.shape[0] != 1:
        # [B, S] position ids index tables of another length (rotary-position-ids: one row per
        # token), while GroupQueryAttention needs tables covering past + new positions
        return None
    return node


def _position_ids(op, positions, batch, length):
    """[B, S] position ids: RotaryEmbedding's one-element start offset spelled out per token.
    ``batch`` and ``length`` are 1-element shape values."""
    if positions.shape.rank() == 2:
        return positions
    zero, one = (op.Constant(value=ir.tensor(np.array(v, np.int64))) for v in (0, 1))
    offsets = op.Unsqueeze(op.Range(zero, op.Squeeze(length), one), op.Constant(value_ints=[0]))
    per_token = op.Add(op.Reshape(positions, op.Constant(value_ints=[1, 1])), offsets)
    return op.Expand(per_token, op.Concat(batch, length, axis=0))


def _rotary_inputs(op, q, mask, positions, cos, sin) -> list:
    """GroupQueryAttention's cos/sin caches and [B, S] position ids, shapes read off the mask where it has them."""
    batch = op.Shape(mask if mask.shape[0] == q.shape[0] else q, start=0, end=1)
    length = op.Shape(mask, start=2, end=3) if mask.shape[2] == q.shape[1] else op.Shape(q, start=1, end=2)
    return [cos, sin, _position_ids(op, positions, batch, length)]


def _lengths(op, mask, q, same_batch: bool):
    """(seqlens_k: the last valid key index per batch row, total_sequence_length), int32, from the mask's T."""
    total = op.Cast(
        op.Reshape(op.Shape(mask, start=3, end=4), op.Constant(value=ir.tensor(np.zeros((0,), np.int64)))),
        to=ir.DataType.INT32,
    )
    last = op.Sub(total, op.Constant(value=ir.tensor(np.array(1, np.int32))))
    return op.Expand(last, op.Shape(mask if same_batch else q, start=0, end=1)), total


def _gqa(
    op,
    q,
    k3,
    v3,
    attention,
    positions=None,
    cos=None,
    sin=None,
    past_key=None,
    past_value=None,
    mask=None,
    k_split=None,
    k_rotary=None,
    k_concat=None,
    **_,
):
    mha = attention.producer().attributes
    heads = mha.get_int("num_heads")
    kv_heads, head_size = k_split.shape[2], k_split.shape[3]
    # Shapes are read off the mask where it has them, since every layer shares it (CSE then
    # leaves one copy of the length arithmetic): [B, 1, S, T] unless broadcast over B or S.
    same_batch = mask.shape[0] == q.shape[0]
    rotary_inputs, rotary_attrs = [None, None, None], {}
    q_rotary = _fusable_query_rotary(q, positions, cos, sin, k_rotary, head_size)
    if q_rotary is not None:  # GroupQueryAttention rotates Q and K itself
        q, rotary_inputs = q_rotary.inputs[0], _rotary_inputs(op, q_rotary.inputs[0], mask, positions, cos, sin)
        rotary_attrs = {"do_rotary": 1, "rotary_interleaved": q_rotary.attributes.get_int("interleaved", 0)}
    elif k_rotary is not None:
        rotary = {name: a.value for name, a in k_rotary.producer().attributes.items() if name != "num_heads"}
        k3 = op.RotaryEmbedding(k3, positions, cos, sin, **rotary, _domain="com.microsoft")
    if k_concat is None:
        past_key = past_value = None
    seqlens_k, total = _lengths(op, mask, q, same_batch)
    scale = {"scale": mha.get_float("scale")} if "scale" in mha else {}
    return op.GroupQueryAttention(
        q,
        k3,
        v3,
        past_key,
        past_value,
        seqlens_k,
        total,
        *rotary_inputs,
        mask,
        num_heads=heads,
        kv_num_heads=kv_heads,
        causal=0,
        **rotary_attrs,
        **scale,
        _domain="com.microsoft",
        _outputs=3,
    )


gqa = rule(
    "gqa",
    FAMILY,
    "MultiHeadAttention over K/V heads repeated by Expand/Reshape  ->  com.microsoft GroupQueryAttention",
    _pattern,
    _gqa,
    _check,
)


def _packed_pattern(op, x, wq, wk, wv):
    return op.GroupQueryAttention(
        op.MatMul(x, wq),
        op.MatMul(x, wk),
        op.MatMul(x, wv),
        _allow_other_inputs=True,
        _domain="com.microsoft",
        _outputs=["gqa_out", "present_key", "present_value"],
    )


def _packed_check(context, x, wq, wk, wv, gqa_out, **_):
    weights = [constant(w) for w in (wq, wk, wv)]
    if (
        any(w is None or w.ndim != 2 for w in weights)
        or len({w.shape[0] for w in weights}) != 1
        or len({w.dtype for w in weights}) != 1
    ):
        return MatchResult().fail("Q/K/V weights are not 2-D constants of one type and input size")
    attrs = gqa_out.producer().attributes
    heads, kv_heads = attrs.get_int("num_heads", 0), attrs.get_int("kv_num_heads", 0)
    q_cols, k_cols, v_cols = (w.shape[1] for w in weights)
    if not heads or not kv_heads or k_cols != v_cols or q_cols * kv_heads != k_cols * heads:
        return MatchResult().fail("the Q/K/V widths are not num_heads and kv_num_heads heads of one size")
    return True


def _packed(op, x, wq, wk, wv, gqa_out, **_):
    node = gqa_out.producer()
    packed = np.concatenate([constant(w) for w in (wq, wk, wv)], axis=1)
    qkv = op.MatMul(x, op.initializer(ir.tensor(packed), name=f"{wq.name}_qkv"))
    attributes = {k: a.value for k, a in node.attributes.items()}
    return op.GroupQueryAttention(qkv, None, None, *node.inputs[3:], **attributes, _domain="com.microsoft", _outputs=3)


# Q, K and V projected from one input: one MatMul over the concatenated weights, packed into
# GroupQueryAttention's query input (the QKV merge; ORT splits it inside the kernel).
gqa_packed = rule(
    "gqa-packed-qkv",
    FAMILY,
    "GroupQueryAttention(x Wq, x Wk, x Wv)  ->  GroupQueryAttention(x [Wq Wk Wv])",
    _packed_pattern,
    _packed,
    _packed_check,
)


def _repeat_shape_pattern(op, k, axes, expand_shape, flat_shape):
    return op.Shape(op.Reshape(op.Expand(op.Unsqueeze(k, axes), expand_shape), flat_shape, _outputs=["repeated"]))


def _repeat_shape_check(context, k, axes, repeated, **_):
    if constant(axes) is None or constant(axes).reshape(-1).tolist() != [2]:
        return MatchResult().fail("the heads are not repeated at axis 2")
    if opset(k) < 15:
        return MatchResult().fail("Shape's start/end need opset 15")
    kd, rd = _dims_or_symbols(k), _dims_or_symbols(repeated)
    if kd is None or rd is None or not isinstance(rd[1], int):
        return MatchResult().fail("the key and its repeat are not 4-D with a static head count")
    same = all(same_dim(kd[i], rd[i]) for i in (0, 2, 3))
    if not same or not isinstance(kd[1], int) or rd[1] % kd[1]:
        return MatchResult().fail(f"the repeat {rd} is not the key {kd} with its heads repeated")
    return True


def _dims_or_symbols(value: ir.Value):
    return None if value.shape is None or value.shape.rank() != 4 else tuple(value.shape)


def _repeat_shape(op, k, repeated, **_):
    """[B, H, T, Dh] of the repeat, each dimension read from values the attention does not own:
    GroupQueryAttention will make the cache concat (and K's rotary) itself, and the mask it reads
    must depend on neither."""
    static = (op.Constant(value=ir.tensor(np.array([d], np.int64))) for d in (repeated.shape[1], repeated.shape[3]))
    heads, head_size = static
    node = k.producer()
    cache_concat = node is not None and node.op_type == "Concat" and len(node.inputs) == 2
    if cache_concat and node.attributes.get_int("axis", 0) in (2, -2):
        past, new = node.inputs
        length = op.Add(op.Shape(past, start=2, end=3), _dimension(op, new, 2))
        batch = op.Shape(past, start=0, end=1)
    else:
        length, batch = _dimension(op, k, 2), _dimension(op, k, 0)
    return op.Concat(batch, heads, length, head_size, axis=0)


_SAME_SHAPE_AS_FIRST_INPUT = frozenset({"RotaryEmbedding", "Add", "Mul", "Sub", "Neg"})


def _dimension(op, value: ir.Value, axis: int):
    """``Shape(value)[axis]``, read further up where ``value`` comes from a rotation (RoPE,
    written out or fused), Transpose or Reshape that carries the dimension unchanged (the head
    split of a projection)."""
    for _ in range(12):
        node = value.producer()
        if node is None or node.domain not in ("", "com.microsoft"):
            break
        if node.op_type in _SAME_SHAPE_AS_FIRST_INPUT and _same_dim_at(node.inputs[0], value, axis) == axis:
            value = node.inputs[0]
        elif node.op_type == "Transpose" and node.attributes.get("perm") is not None:
            value, axis = node.inputs[0], node.attributes["perm"].as_ints()[axis]
        elif node.op_type == "Reshape" and _same_dim_at(node.inputs[0], value, axis) is not None:
            value, axis = node.inputs[0], _same_dim_at(node.inputs[0], value, axis)
        else:
            break
    return op.Shape(value, start=axis, end=axis + 1)


def _same_dim_at(source: ir.Value, value: ir.Value, axis: int) -> int | None:
    """The axis of ``source`` with the same leading dimension as ``value[axis]`` (a Reshape that
    splits only later axes keeps the earlier ones), or None."""
    if source.shape is None or value.shape is None or axis >= source.shape.rank():
        return None
    same_prefix = all(same_dim(source.shape[i], value.shape[i]) for i in range(axis + 1))
    return axis if same_prefix else None


repeat_shape = rule(
    "gqa-repeat-shape",
    FAMILY,
    "Shape of K/V repeated by Unsqueeze/Expand/Reshape  ->  Shape(K) with the repeated head count",
    _repeat_shape_pattern,
    _repeat_shape,
    _repeat_shape_check,
    remove_nodes=False,
)

RULES = [repeat_shape, gqa, gqa_packed]
