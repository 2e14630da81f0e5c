"""The layout shows the architecture: rooms named by role, imports only downward, each
compiler's and IR's library only in its own rooms, no way in inside targets/, nothing at the
package root that belongs to a room (the issue's item 6). Read from the source (ast), so a
function-level import counts as much as a top-level one."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
GRAPHOPT = ROOT / "graphopt"
# rooms, bottom up: a room may import only rooms at or below its own level
LEVELS = {
    "core": 0,
    "formats": 1,
    "passes": 2,
    "targets": 2,
    "policies": 3,
    "reports": 3,
    "models": 3,
    "api": 4,
    "torch": 4,
    "jax": 4,
    "cli": 5,
    "examples": 0,
    "__init__": 6,
    "__main__": 6,
}
ROOT_MODULES = {"__init__.py", "__main__.py", "jax.py"}  # jax.py: the way in DESIGN.md names graphopt.jax


def _sources():
    """(room, relative path, imported module names) for every module of the package."""
    places = [(GRAPHOPT, "graphopt"), (ROOT / "passes", "graphopt/passes"), (ROOT / "models", "graphopt/models")]
    for folder, prefix in places:
        for path in folder.rglob("*.py"):
            relative = f"{prefix}/{path.relative_to(folder).as_posix()}"
            parts = relative.split("/")
            room = parts[1].removesuffix(".py")
            yield room, relative, _imports(path)


def _imports(path: Path) -> set[str]:
    """Every module imported at run time (annotation-only imports under TYPE_CHECKING are not arrows)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "graphopt" and len(parts) > 1 else None


def test_no_module_at_the_root_belongs_to_a_room():
    assert {p.name for p in GRAPHOPT.glob("*.py")} == ROOT_MODULES


def test_imports_only_go_down():
    """core at the bottom; formats; rules and targets; policies and reports; the ways in; the CLI."""
    upward = {}
    for room, relative, imports in _sources():
        for module in imports:
            other = _room_of(module)
            if other in LEVELS and LEVELS[other] > LEVELS[room]:
                upward.setdefault(relative, []).append(module)
    assert upward == {}


def test_no_way_in_inside_targets_or_formats():
    """Targets and formats neither decide nor reach the registry: the ways in drive them."""
    offenders = {}
    for room, relative, imports in _sources():
        if room in ("targets", "formats"):
            bad = {m for m in imports if m in ("graphopt.core.decide", "graphopt.core.registry", "graphopt.core.judge")}
            if bad:
                offenders[relative] = sorted(bad)
    assert offenders == {}


def _only_in(rooms: tuple[str, ...], forbidden) -> dict:
    offenders = {}
    for _, relative, imports in _sources():
        if relative.startswith(rooms):
            continue
        bad = {m for m in imports if forbidden(m)}
        if bad:
            offenders[relative] = sorted(bad)
    return offenders


def test_only_the_onnx_rooms_import_onnx_or_ort():
    onnx_packages = {"onnx", "onnx_ir", "onnxscript", "onnxruntime"}
    rooms = (
        "graphopt/formats/onnx/",
        "graphopt/targets/onnxruntime/",
        "graphopt/targets/openvino/",  # compiles ONNX graphs: it reads them with the ONNX format
        "graphopt/targets/iree/",  # IREE imports ONNX graphs too (onnx_import.py)
        "graphopt/passes/onnx/",
        "graphopt/models/",
    )
    mine = ("graphopt.formats.onnx", "graphopt.targets.onnxruntime", "graphopt.passes.onnx")
    assert _only_in(rooms, lambda m: m.split(".")[0] in onnx_packages or m.startswith(mine)) == {}


def test_only_the_fx_rooms_import_fx_rules():
    """FX rules are read by the FX format and their own families; the torch way in reaches them
    through the registry."""
    assert _only_in(("graphopt/passes/fx/", "graphopt/formats/fx/"), lambda m: m.startswith("graphopt.passes.fx")) == {}


def test_only_the_stablehlo_rooms_import_jax():
    """jax and jaxlib are read by the StableHLO format, its rules, the XLA and IREE targets (IREE's
    JAX binding calls with jax arrays) and the JAX way in."""
    rooms = ("graphopt/formats/stablehlo/", "graphopt/targets/xla/", "graphopt/passes/stablehlo/", "graphopt/jax.py")
    rooms += ("graphopt/targets/iree/",)
    rooms += ("graphopt/models/",)
    assert _only_in(rooms, lambda m: m.split(".")[0] in ("jax", "jaxlib", "flax")) == {}


def test_the_engine_imports_no_compiler_or_ir_library():
    heavy = {"onnx", "onnx_ir", "onnxscript", "onnxruntime", "torch", "jax", "jaxlib", "openvino", "lightgbm", "iree"}
    offenders = {
        r: sorted(i)
        for room, r, imports in _sources()
        if room == "core" and (i := {m for m in imports if m.split(".")[0] in heavy})
    }
    assert offenders == {}
