"""FX rule families: rewrites of Dynamo graphs that let Inductor's own pattern matchers and
fused kernels fire where the user's code hides the pattern. The registry is in the order rules
are applied (normalisations first, then the attention that reads them)."""

from graphopt.passes import Registry
from graphopt.passes.fx import activations, attention, conv, norms

FAMILIES = {"activations": activations, "norms": norms, "attention": attention, "conv": conv}
REGISTRY = Registry("fx", FAMILIES)
RULES = REGISTRY.all_rules()
families, all_rules, rules_by_name = REGISTRY.families, REGISTRY.all_rules, REGISTRY.rules_by_name
