"""StableHLO rule families: rewrites of StableHLO modules (jaxlib's MLIR bindings) aimed at what
the compilers of StableHLO need (XLA's fusion passes and CPU dot library, IREE's dispatch
formation), each judged by measurement on the target it is for, so one model can keep a rule on
one compiler and drop it on another. RULES is the registry, in the order rules are applied."""

from graphopt.passes import Registry
from graphopt.passes.stablehlo import attention, calls, constants, products, scaling

FAMILIES = {
    "calls": calls,
    "constants": constants,
    "attention": attention,
    "products": products,
    "scaling": scaling,
}
REGISTRY = Registry("stablehlo", FAMILIES)
RULES = REGISTRY.all_rules()
families, all_rules, rules_by_name = REGISTRY.families, REGISTRY.all_rules, REGISTRY.rules_by_name
