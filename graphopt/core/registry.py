"""Which Format reads a file or an object, which Target a name means, which Policy: the one
place that knows the implementations by name. They are imported lazily, by module path, so the
engine and the ways in depend only on graphopt.core.protocols, and a format or compiler that is
not installed costs nothing until asked for.

Targets are also found through the ``graphopt.targets`` entry-point group: a package that
implements the Target protocol registers a name prefix and a function parsing the full target
name (``[project.entry-points."graphopt.targets"] mycc = "mypkg.graphopt_target:target_from_name"``),
and ``--target mycc-cpu`` then reaches it like a built-in one. graphopt's own IREE target is
registered that way (pyproject.toml), so the plugin path is the one a built-in target runs on.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from pathlib import Path

from graphopt.core.errors import GraphoptError, UsageError

# format name -> (Format factory as "module:attribute", the module of its rule families, which
# defines families(), all_rules() and rules_by_name(names), the target its graphs go to by default)
FORMATS = {
    "onnx": ("graphopt.formats.onnx:OnnxFormat", "graphopt.passes.onnx", "ort-cpu"),
    "stablehlo": ("graphopt.formats.stablehlo:StableHloFormat", "graphopt.passes.stablehlo", "xla-cpu"),
    "fx": ("graphopt.formats.fx.format:FxFormat", "graphopt.passes.fx", "inductor-cpu"),
}
SUFFIXES = {
    ".onnx": "onnx",
    ".mlir": "stablehlo",
    ".stablehlo": "stablehlo",
    ".mlirbc": "stablehlo",
    ".jaxexport": "stablehlo",
}
# (from, to) -> "module:function" converting a graph of one format into the other
CONVERSIONS = {("fx", "onnx"): "graphopt.formats.onnx.from_fx:export"}
# target name prefix -> "module:function" parsing the full name (more come from ENTRY_POINTS)
TARGETS = {
    "ort": "graphopt.targets.onnxruntime:target_from_name",
    "openvino": "graphopt.targets.openvino:target_from_name",
    "xla": "graphopt.targets.xla:target_from_name",
    "inductor": "graphopt.targets.inductor:target_from_name",
}
ENTRY_POINTS = "graphopt.targets"  # the group plugged-in targets register under
# policy name -> "module:function" building it from (format, target); the learned policy reads
# the graph through the format and picks its weights by the target's name
POLICIES = {
    "learned": "graphopt.policies:learned_policy",
    "search": "graphopt.policies.search:search_policy",
    "greedy": "graphopt.policies.search:greedy_policy",
}
DEFAULT_POLICY = "learned"  # the measured search in the shipped ranker's order; the search itself without weights


def _load(reference: str):
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def format_name(path) -> str:
    """The format a file is read as, by suffix (an unknown suffix is tried as ONNX, whose loader
    says if it is not one)."""
    return SUFFIXES.get(Path(path).suffix.lower(), "onnx")


def rule_families(name: str = "onnx"):
    """The module of rule families of a format (by name: onnx, stablehlo, fx)."""
    if name not in FORMATS:
        raise UsageError(f"unknown format {name!r}; use {', '.join(FORMATS)}")
    return importlib.import_module(FORMATS[name][1])


def default_target(path) -> str:
    """The target a model file is compiled for unless one is named: ORT for ONNX, XLA for StableHLO."""
    return FORMATS[format_name(path)][2]


def format_named(name: str):
    """(Format, all its rules) for a format name."""
    return _load(FORMATS[name][0])(), rule_families(name).all_rules()


def format_for(path) -> tuple[object, list]:
    """(Format, all its rules) for a model file, by suffix."""
    return format_named(format_name(path))


def format_of(model: object) -> tuple[str, object, list]:
    """(format name, Format, all its rules) for a model in memory: the first format that accepts
    it (an onnx.ModelProto or onnx_ir.Model, StableHLO text or a jax.export.Exported, an FX
    GraphModule). A format whose library is not installed is skipped."""
    for name in FORMATS:
        try:
            fmt, rules = format_named(name)
        except ImportError:
            continue
        if fmt.accepts(model):
            return name, fmt, rules
    raise GraphoptError(
        f"graphopt cannot read a {type(model).__name__}; "
        "pass a path, an ONNX model, StableHLO text or a jax.export.Exported"
    )


def converter(source: str, to: str):
    """The function converting a graph of format ``source`` into one of format ``to``."""
    if (source, to) not in CONVERSIONS:
        raise UsageError(f"no conversion from {source} to {to}")
    return _load(CONVERSIONS[(source, to)])


def target_of(target, format_name: str):
    """``target`` as a Target: itself when it is one, the one it names, or (None) the format's own compiler."""
    if target is not None and not isinstance(target, str):
        return target
    return target_for(target or FORMATS[format_name][2])


@functools.cache
def plugged_in() -> dict[str, str]:
    """Target prefix -> "module:function" for every installed package registering one under
    ENTRY_POINTS (a built-in prefix cannot be taken over)."""
    found = {point.name: point.value for point in importlib.metadata.entry_points(group=ENTRY_POINTS)}
    return {prefix: reference for prefix, reference in found.items() if prefix not in TARGETS}


def known_targets() -> dict[str, str]:
    return TARGETS | plugged_in()


def target_for(name: str):
    prefix = name.split("-", 1)[0]
    known = known_targets()
    if prefix not in known:
        raise UsageError(f"unknown target {name!r}; known: {', '.join(f'{p}-...' for p in known)}")
    return _load(known[prefix])(name)


def policy_for(name: str, fmt=None, target=None):
    if name not in POLICIES:
        raise UsageError(f"unknown policy {name!r}; use {', '.join(POLICIES)}")
    return _load(POLICIES[name])(fmt, target)
