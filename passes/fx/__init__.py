"""FX rule families: rewrites of Dynamo graphs that let Inductor's own pattern matchers and
fused kernels fire where the user's code hides the pattern. RULES is the registry, in the order
they are applied (normalisations first, then the attention that reads them)."""

from graphopt.passes.fx import activations, attention, conv, norms

FAMILIES = {"activations": activations, "norms": norms, "attention": attention, "conv": conv}
RULES = [r for module in FAMILIES.values() for r in module.RULES]


def all_rules(*, gradients: bool = False, frozen: bool = False) -> list:
    """Every registered rule; with ``gradients``, only those that keep gradients exact; with
    ``frozen``, only those that still help when Inductor freezes the weights."""
    return [r for r in RULES if (r.preserves_gradients or not gradients) and (r.with_freezing or not frozen)]
