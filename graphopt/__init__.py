"""graphopt: rewrite graphs so that the downstream compiler's fusions fire.

The path a model takes is a straight line (see DESIGN.md):
load -> enumerate sites -> policy picks -> rewrite -> target compiles and reports fusions ->
verify -> measure -> accept or keep the original -> save + report.
"""

__version__ = "0.1.0"
