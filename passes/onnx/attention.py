"""Attention: the exporters' scaled-dot-product attention to ORT's fused attention kernels.

ORT's own AttentionFusion fired on none of the zoo's exports (torch 2.13, either exporter): its
C++ matcher expects the subgraph of one older exporter. These rules are onnxscript's ORT fusion
patterns, adopted as graphopt rules and applied in stages, each a rule here:

1. ``sdpa``: ``Softmax(Q K^T * scale [+ mask]) V`` (with the scale on Q and K, or on the
   product; the mask as an additive bias, or the IsNaN/Where guard of SDPA exports) to an
   intermediate ``SDPA`` op.
2. ``mha`` / ``mha-past``: the Q/K/V reshapes and transposes around it to
   ``com.microsoft::MultiHeadAttention`` on (batch, sequence, hidden) tensors, with the KV cache
   concat when there is one; ``mha-bias`` folds the projections' bias Adds into it,
   ``mha-scale`` a constant scale on Q.
3. ``attention``: three sibling Q/K/V MatMuls feeding MultiHeadAttention to ``Attention`` with
   the weights concatenated (the horizontal merge the issue calls QKV).
4. ``sdpa-via-mha``: an ``SDPA`` no later stage took (GQA heads repeated by Expand, say) to
   MultiHeadAttention on 4-D tensors by transposes, so no intermediate op is left.

Grouped-query attention (LLaMA's repeated K/V heads) is the next family, passes/onnx/gqa.py: it
starts from the MultiHeadAttention these stages leave. onnxscript's own GQA rule is not adopted:
it needs transformers 4's causal-mask subgraph and a ``position_ids`` input, and fires on no
torch 2.13 / transformers 5 export.

The intermediate ``SDPA`` op lives in onnxscript's private ``ai.onnxruntime._fusion`` domain and
no runtime has a kernel for it: a candidate that still holds one is refused by ORT, so the
search drops it. Registry order puts the stages in sequence; the rewrite loop takes them to a
fixpoint, one stage per round.

Legality: float32/float16 Q, K, V with a static head count and head size (checked from shapes);
the scale must be a constant (1/sqrt(head size) when omitted); the mask must broadcast over heads.
ORT's attention kernels compute softmax in float32 with a max-subtraction, like the decomposed
graph; a fully masked row gives NaN in the decomposed graph and ORT's kernel alike only when the
mask is -inf (exports use the dtype's lowest value, which gives a uniform row in both).

Measured (``python -m bench.rule_effects``): alone, 2-layer BERT 0.781 [0.762, 0.785], MiniLM-L6
0.958 [0.950, 0.963], DistilBERT 0.970 [0.961, 0.976]; on the LLaMA-style decoder alone it is
slower (1.054 [1.049, 1.065]: without the rotary family the SDPA stage ends in sdpa-via-mha's
transposes), and beside the others it is a wash on prefill (all 0.946 vs all but attention 0.948)
and a gain on the decode step (all 0.937 vs all but attention 0.969; earlier runs
saw the opposite, so it is near the noise): the search measures
which to keep.
"""

from __future__ import annotations

from onnxscript.rewriter.ort_fusions import attention, mha, mha_bias, mha_scale, sdpa, sdpa_via_mha

from graphopt.formats.onnx.rules import adopt

FAMILY = "attention"

RULES = [
    adopt("sdpa", FAMILY, "Softmax(Q K^T * scale + mask) V  ->  SDPA (intermediate)", sdpa.sdpa_rules.rules),
    adopt(
        "mha-past",
        FAMILY,
        "SDPA with KV-cache concat  ->  com.microsoft MultiHeadAttention",
        mha.mha_rules_with_past.rules,
    ),
    adopt("mha", FAMILY, "reshape/transpose + SDPA  ->  com.microsoft MultiHeadAttention", mha.mha_rules_no_past.rules),
    adopt(
        "mha-scale",
        FAMILY,
        "MultiHeadAttention(Q * c)  ->  MultiHeadAttention(Q, scale=c/sqrt(d))",
        mha_scale._mha_scale_rules.rules,
    ),
    adopt(
        "mha-bias",
        FAMILY,
        "MultiHeadAttention(Q + bq, K + bk, V + bv)  ->  MultiHeadAttention(bias=[bq,bk,bv])",
        mha_bias.mha_bias_rules.rules,
    ),
    adopt(
        "attention",
        FAMILY,
        "Q/K/V MatMuls + MultiHeadAttention  ->  com.microsoft Attention (QKV merged)",
        attention.attention_rules.rules,
    ),
    adopt(
        "sdpa-via-mha",
        FAMILY,
        "SDPA left by the stages above  ->  MultiHeadAttention on 4-D tensors",
        sdpa_via_mha._rules.rules,
    ),
]
