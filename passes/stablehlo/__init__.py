"""StableHLO rule families: rewrites of StableHLO modules (jaxlib's MLIR bindings) aimed at what
XLA's fusion passes and its CPU dot library need, each judged by measurement. RULES is the
registry, in the order rules are applied."""

from graphopt.passes import Registry
from graphopt.passes.stablehlo import attention

FAMILIES = {"attention": attention}
REGISTRY = Registry("stablehlo", FAMILIES)
RULES = REGISTRY.all_rules()
families, all_rules, rules_by_name = REGISTRY.families, REGISTRY.all_rules, REGISTRY.rules_by_name
