"""Normalization: RMSNorm, SkipLayerNorm and SkipSimplifiedLayerNorm in the forms ORT's CPU kernels take.

ORT fuses LayerNormalization but not RMSNorm (no SimplifiedLayerNormFusion fires on torch's
``x * rsqrt(mean(x^2) + eps) * w`` in either exporter), and its SkipLayerNormFusion gives up
when the residual Add has a second consumer (pre-LN GPT-2, ViT, LLaMA) or when shapes are
missing (legacy exports with dynamic axes). These rules are onnxscript's ORT fusion patterns,
adopted as graphopt rules so each match is a site the search can take or leave.

- ``rms-norm``: ``Pow/Mul(x, x) -> ReduceMean -> Add(eps) -> Sqrt -> Reciprocal/Div -> Mul ->
  Mul(scale)`` to ``SimplifiedLayerNormalization(x, scale, epsilon)``.
- ``skip-layer-norm``: ``LayerNormalization(Add(x, skip [+ bias]))`` to
  ``com.microsoft::SkipLayerNormalization``, exposing the sum as its 4th output when something
  else reads it (the pre-LN residual stream).
- ``skip-rms-norm``: the same for ``SimplifiedLayerNormalization``.

Legality (the adopted checks enforce it): float32 or float16 input; normalization over the last
axis only; scale and bias 1-D of the hidden size; the epsilon is carried over unchanged. The fused
kernels accumulate in float32 like the decomposed graph; their reduction order differs, so results
agree to float32 rounding (verify.py's tolerance), not bit for bit. NaN/Inf in a row propagate to
that row in both forms.

Measured (``python -m bench.rule_effects``, bench/results/rule-effects.md; ratio to the original
under ORT ENABLE_ALL, median [95% CI]): alone, LLaMA prefill 0.960 [0.955, 0.973], decode step
0.992 [0.986, 0.996]; on the BERT-family encoders alone it changes nothing ORT does not already do
(DistilBERT 1.008 [0.999, 1.012]) and on the 2-layer BERT at hidden 64 it is slower (1.012 [1.003,
1.020]: ORT's SkipLayerNormalization kernel loses to Add + LayerNorm at that width, which is why
the search may drop this family and switch ORT's own fusion off).
"""

from __future__ import annotations

from onnxscript.rewriter.ort_fusions import rms_normalization, skip_normalization

from graphopt.formats.onnx.rules import adopt

FAMILY = "normalization"

RMS_NORM = adopt(
    "rms-norm",
    FAMILY,
    "x * rsqrt(mean(x^2) + eps) * w  ->  SimplifiedLayerNormalization",
    rms_normalization.rms_normalization_rules,
)
SKIP_LAYER_NORM = adopt(
    "skip-layer-norm",
    FAMILY,
    "LayerNormalization(x + skip [+ bias])  ->  com.microsoft SkipLayerNormalization",
    skip_normalization.skip_layer_normalization_ruleset.rules,
)
SKIP_RMS_NORM = adopt(
    "skip-rms-norm",
    FAMILY,
    "SimplifiedLayerNormalization(x + skip [+ bias])  ->  com.microsoft SkipSimplifiedLayerNormalization",
    skip_normalization.skip_rms_normalization_ruleset.rules,
)

RULES = [RMS_NORM, SKIP_LAYER_NORM, SKIP_RMS_NORM]
