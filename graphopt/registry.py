"""Which Format reads a file and which Target a name means: the one place that knows the
implementations by name. They are imported lazily, by module path, so the engine and the ways in
depend only on graphopt.protocols, and a format or compiler that is not installed costs nothing
until asked for."""

from __future__ import annotations

import importlib
from pathlib import Path

from graphopt.errors import BadModelError, GraphoptError

# file suffix -> (format factory as "module:attribute", the module of its rule families, which
# defines FAMILIES, all_rules() and rules_by_name(names), the target its models go to by default)
_ONNX = ("graphopt.formats.onnx:OnnxFormat", "graphopt.passes.onnx", "ort-cpu")
_STABLEHLO = ("graphopt.formats.stablehlo:StableHloFormat", "graphopt.passes.stablehlo", "xla-cpu")
FORMATS = {".onnx": _ONNX, ".mlir": _STABLEHLO, ".stablehlo": _STABLEHLO, ".mlirbc": _STABLEHLO, ".jaxexport": _STABLEHLO}
# target name prefix -> "module:function" parsing the full name
TARGETS = {
    "ort": "graphopt.targets.onnxruntime:target_from_name",
    "xla": "graphopt.targets.xla:target_from_name",
}


# policy name -> "module:function" building it from (format, target); the learned policy reads
# the graph through the format and picks its weights by the target's name
POLICIES = {
    "learned": "graphopt.policy:learned_policy",
    "search": "graphopt.search.policies:search_policy",
    "greedy": "graphopt.search.policies:greedy_policy",
}
DEFAULT_POLICY = "learned"  # the measured search in the shipped ranker's order; the search itself without weights


def _load(reference: str):
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _suffix(path) -> str:
    suffix = Path(path).suffix.lower()
    return suffix if suffix in FORMATS else ".onnx"  # tried as ONNX, whose loader says if it is not one


def rule_families(path=".onnx"):
    """The module of rule families for the format that reads ``path``."""
    return importlib.import_module(FORMATS[_suffix(path)][1])


def default_target(path) -> str:
    """The target a model file is compiled for unless one is named: ORT for ONNX, XLA for StableHLO."""
    return FORMATS[_suffix(path)][2]


def format_for(path) -> tuple[object, list]:
    """(Format, all its rules) for a model file, by suffix."""
    return _load(FORMATS[_suffix(path)][0])(), rule_families(path).all_rules()


def target_for(name: str):
    prefix = name.split("-", 1)[0]
    if prefix not in TARGETS:
        raise BadModelError(f"unknown target {name!r}; known: {', '.join(f'{p}-...' for p in TARGETS)}")
    return _load(TARGETS[prefix])(name)


def policy_for(name: str, fmt=None, target=None):
    if name not in POLICIES:
        raise GraphoptError(f"unknown policy {name!r}; use {', '.join(POLICIES)}")
    return _load(POLICIES[name])(fmt, target)
