"""StableHLO rule families: rewrites of StableHLO modules (jaxlib's MLIR bindings) aimed at what
XLA's fusion passes and its CPU dot library need, each judged by measurement. RULES is the
registry, in the order rules are applied."""

from graphopt.passes import named
from graphopt.passes.stablehlo import attention

FAMILIES = {"attention": attention}
RULES = [r for module in FAMILIES.values() for r in module.RULES]


def all_rules() -> list:
    return list(RULES)


def rules_by_name(names: list[str] | None = None) -> list:
    """The named rules (all of them when ``names`` is empty); an unknown name is a usage error."""
    return named(RULES, names, "see `graphopt rules --format stablehlo`")
