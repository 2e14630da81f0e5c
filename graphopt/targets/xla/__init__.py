"""XLA (through PJRT) as a graphopt Target for StableHLO modules: compile, fusion report from the
optimized HLO, run."""

from graphopt.targets.xla.report import fusion_report
from graphopt.targets.xla.target import XlaCompiled, XlaTarget, target_from_name

__all__ = ["XlaCompiled", "XlaTarget", "fusion_report", "target_from_name"]
