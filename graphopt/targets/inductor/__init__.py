"""TorchInductor as a graphopt target for FX graphs: ``compile_fx``, frozen weights, and a
FusionReport read from the code Inductor wrote."""

from graphopt.targets.inductor.target import InductorCompiled, InductorTarget, target_from_name

__all__ = ["InductorCompiled", "InductorTarget", "target_from_name"]
