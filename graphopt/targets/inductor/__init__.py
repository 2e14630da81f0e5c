"""TorchInductor as a graphopt target for FX graphs: FX rules applied before Inductor's own
pre-grad passes, ``compile_fx``, and a FusionReport read from the code Inductor wrote."""

from graphopt.passes.fx import all_rules as all_fx_rules
from graphopt.targets.inductor.target import InductorCompiled, compile_graph, compile_rewritten, fx_rules, rewritten

__all__ = ["InductorCompiled", "all_fx_rules", "compile_graph", "compile_rewritten", "fx_rules", "rewritten"]
