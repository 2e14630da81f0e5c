"""The `graphopt` command: optimize, inspect, rules, zoo.

Every user error (a bad file, an unknown rule, inputs we cannot generate) is one line on stderr
and exit code 2, never a traceback, and never a half-written output file.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from graphopt.errors import GraphoptError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Rewrite ONNX graphs so that ONNX Runtime's fusions fire; verified and measured.")  # fmt: skip
zoo_app = typer.Typer(no_args_is_help=True, help="Build the reference model zoo (needs the [zoo] extra).")
app.add_typer(zoo_app, name="zoo")
console = Console(stderr=True)
EXAMPLES = ("tiny-bert",)


def _fail(error: GraphoptError) -> None:
    console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
    raise typer.Exit(error.exit_code)


def _parse_shapes(values: list[str]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for value in values:
        name, _, dims = value.partition("=")
        try:
            shapes[name] = tuple(int(d) for d in dims.replace("x", ",").split(",") if d)
        except ValueError:
            raise GraphoptError(f"--shape {value!r}: expected NAME=D0,D1,... with integer sizes") from None
        if not name or not shapes[name]:
            raise GraphoptError(f"--shape {value!r}: expected NAME=D0,D1,...")
    return shapes


def example_path(name: str) -> Path:
    if name not in EXAMPLES:
        raise GraphoptError(f"unknown example {name!r}; choose from {', '.join(EXAMPLES)}")
    return Path(str(resources.files("graphopt.examples") / f"{name}.onnx"))


@app.command()
def optimize(
    model: Annotated[Optional[Path], typer.Argument(help="The ONNX model to optimize.")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Where to write the model (default MODEL.opt.onnx).")] = None,
    example: Annotated[Optional[str], typer.Option(help=f"Optimize a model shipped with graphopt: {', '.join(EXAMPLES)}.")] = None,
    target: Annotated[str, typer.Option(help="ort-cpu, or ort-cpu-<disable|basic|extended|all>.")] = "ort-cpu",
    inputs: Annotated[Optional[Path], typer.Option(help=".npz with one array per model input.")] = None,
    shape: Annotated[list[str], typer.Option(help="Bind an input's shape: NAME=D0,D1,... (repeatable).")] = [],  # noqa: B006
    budget: Annotated[float, typer.Option(help="Seconds the search may spend evaluating candidates.")] = 60.0,
    policy: Annotated[str, typer.Option(help="greedy or search.")] = "search",
    rules: Annotated[Optional[str], typer.Option(help="Comma-separated rule names (default: all).")] = None,
    report: Annotated[Optional[Path], typer.Option(help="Write the report as JSON here.")] = None,
) -> None:
    """Rewrite MODEL, keep the result only if it is equivalent and faster, and report."""
    from graphopt import report as report_mod
    from graphopt.optimize import optimize as run_optimize
    from graphopt.rules import rules_by_name
    from graphopt.search.policies import POLICIES
    from graphopt.targets import target_from_name

    try:
        if (model is None) == (example is None):
            raise GraphoptError("give either MODEL or --example NAME")
        source = model or example_path(example)
        out = output or (model.with_suffix(".opt.onnx") if model else Path(f"{example}.opt.onnx"))
        if policy not in POLICIES:
            raise GraphoptError(f"unknown policy {policy!r}; use {' or '.join(POLICIES)}")
        with console.status("graphopt") as status:
            result = run_optimize(
                source, out, target=target_from_name(target), policy=policy,
                rules=rules_by_name(rules.split(",") if rules else None), shapes=_parse_shapes(shape),
                inputs_file=str(inputs) if inputs else None, budget_s=budget,
                on_progress=lambda message: status.update(f"graphopt: {message}"),
            )  # fmt: skip
        report_mod.render(result, Console())
        if report:
            report_mod.write_json(result, report)
        console.print(f"wrote {out}")
    except GraphoptError as error:
        _fail(error)


@app.command()
def inspect(model: Annotated[Path, typer.Argument(help="The ONNX model to inspect.")]) -> None:
    """Show what ORT fuses in MODEL now, which sites graphopt's rules find, and near misses."""
    from graphopt.formats import onnx_format
    from graphopt.optimize import prepare
    from graphopt.rules import all_rules
    from graphopt.search.sites import find_sites, near_misses
    from graphopt.targets import OrtTarget

    out = Console()
    try:
        notes: list[str] = []
        graph = prepare(onnx_format.load(model), notes)
        report = OrtTarget().compile(graph, report=True).report
    except GraphoptError as error:
        _fail(error)
    out.print(f"[bold]{model}[/]: {sum(1 for _ in graph.graph.all_nodes())} nodes, {report.kernels} ORT kernels (ENABLE_ALL)")
    out.print("fusions ORT fires: " + (", ".join(f"{k} x{v}" for k, v in sorted(report.fused.items())) or "none"))
    rules = all_rules()
    sites = find_sites(graph, rules)
    out.print(f"sites graphopt finds: {len(sites)}")
    for site in sites:
        out.print(f"  {site.rule:<22} at {site.anchor} ({len(site.nodes)} nodes)")
    misses = near_misses(graph, rules)
    if misses:
        out.print("near misses (closest failed match per rule):")
        for miss in misses:
            out.print(f"  {miss.rule:<22} at {miss.anchor}: {miss.reason} ({miss.matched_nodes} nodes matched)")


@app.command("rules")
def list_rules() -> None:
    """List the rewrite rules with their legality notes."""
    from graphopt.rules import all_rules

    out = Console()
    family = None
    for r in all_rules():
        if r.family != family:
            family = r.family
            out.print(f"\n[bold]{family}[/]")
            out.print(r.doc, highlight=False, markup=False, soft_wrap=True)
        out.print(f"  [cyan]{r.name}[/]")


@zoo_app.command("list")
def zoo_list() -> None:
    """List the zoo's models and variants."""
    from graphopt.models.zoo import ZOO

    for name, spec in ZOO.items():
        Console().print(f"{name:<14} {spec.description}")


@zoo_app.command("build")
def zoo_build(
    name: Annotated[str, typer.Argument(help="A zoo model (see `graphopt zoo list`).")],
    out_dir: Annotated[Path, typer.Option("-o", "--out-dir")] = Path("zoo"),
    size: Annotated[str, typer.Option(help="base (the real config) or tiny.")] = "base",
    exporter: Annotated[str, typer.Option(help="dynamo or legacy.")] = "dynamo",
    dynamic: Annotated[bool, typer.Option(help="Dynamic batch/sequence axes.")] = False,
    seq: Annotated[int, typer.Option(help="Sequence length of the example inputs (text models).")] = 16,
    batch: Annotated[int, typer.Option()] = 1,
) -> None:
    """Export a zoo model to ONNX and write matching inputs (.npz) beside it."""
    try:
        from graphopt.models.zoo import build
    except ImportError as error:
        _fail(GraphoptError(f"the zoo needs torch and transformers: pip install 'graphopt[zoo]' ({error.name} missing)"))
    try:
        path, inputs_path = build(name, out_dir, size=size, exporter=exporter, dynamic=dynamic, seq=seq, batch=batch)
    except GraphoptError as error:
        _fail(error)
    Console().print(f"wrote {path} and {inputs_path}")


def main() -> None:  # pragma: no cover - the console script calls app directly
    sys.exit(app())
