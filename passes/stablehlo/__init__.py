"""StableHLO rule families: rewrites of StableHLO modules (jaxlib's MLIR bindings) aimed at what
XLA's fusion passes and its CPU dot library need, each judged by measurement. RULES is the
registry, in the order rules are applied."""

from graphopt.passes.stablehlo import attention

FAMILIES = {"attention": attention}
RULES = [r for module in FAMILIES.values() for r in module.RULES]


def all_rules() -> list:
    return list(RULES)


def rules_by_name(names: list[str] | None = None) -> list:
    """The named rules (all of them when ``names`` is empty); an unknown name is a usage error."""
    if not names:
        return all_rules()
    known = {r.name: r for r in RULES}
    unknown = [n for n in names if n not in known]
    if unknown:
        from graphopt.errors import GraphoptError

        raise GraphoptError(f"unknown StableHLO rule(s): {', '.join(unknown)}; see `graphopt rules`")
    return [known[n] for n in names]
