"""The `graphopt` command: optimize, check, inspect, rules, zoo, policy.

Every user error (a bad file, an unknown rule, inputs we cannot generate) is one line on stderr
and exit code 2, never a traceback, and never a half-written output file.
"""

from __future__ import annotations

import sys
import time
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from graphopt.cli.policy import policy_app
from graphopt.core.errors import GraphoptError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Rewrite ONNX and StableHLO graphs so that the compiler's fusions fire (ONNX Runtime, XLA); "
    "verified and measured.",
)
zoo_app = typer.Typer(no_args_is_help=True, help="Build the reference model zoo (needs the \\[zoo] extra).")
app.add_typer(zoo_app, name="zoo")
app.add_typer(policy_app, name="policy")
console = Console(stderr=True)
EXAMPLES = ("tiny-bert",)


def _fail(error: GraphoptError) -> None:
    console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    raise typer.Exit(error.exit_code)


def _parse_shapes(values: list[str], flag: str = "--shape") -> dict[str, tuple[int, ...]]:
    shapes = {}
    for value in values:
        name, _, dims = value.partition("=")
        try:
            shapes[name] = tuple(int(d) for d in dims.replace("x", ",").split(",") if d)
        except ValueError:
            raise GraphoptError(f"{flag} {value!r}: expected NAME=D0,D1,... with integer sizes") from None
        if not name or not shapes[name]:
            raise GraphoptError(f"{flag} {value!r}: expected NAME=D0,D1,...")
    return shapes


def _parse_dims(values: list[str]) -> dict[str, int]:
    dims = {}
    for value in values:
        name, _, size = value.partition("=")
        if not name or not size.isdigit() or int(size) < 1:
            raise GraphoptError(f"--fix-dim {value!r}: expected SYMBOL=N with a positive integer N")
        dims[name] = int(size)
    return dims


def example_path(name: str) -> Path:
    if name not in EXAMPLES:
        raise GraphoptError(f"unknown example {name!r}; choose from {', '.join(EXAMPLES)}")
    return Path(str(resources.files("graphopt.examples") / f"{name}.onnx"))


def _default_target(path) -> str:
    from graphopt.core import registry

    return registry.default_target(path)


# `graphopt optimize`'s arguments and options, each named once, so the command reads as its steps
_Model = Annotated[
    Path | None,
    typer.Argument(help="The ONNX model or StableHLO module (.mlir, .mlirbc, .jaxexport) to optimize."),
]
_Output = Annotated[
    Path | None,
    typer.Option("-o", "--output", help="Where to write the model (default MODEL.opt.onnx); its weights go beside it."),
]
_Example = Annotated[str | None, typer.Option(help=f"Optimize a model shipped with graphopt: {', '.join(EXAMPLES)}.")]
_Target = Annotated[
    str | None,
    typer.Option(
        help="ort-cpu, ort-cpu-<disable|basic|extended|all>, openvino-cpu, auto (the faster of the two; ONNX); "
        "xla-cpu (StableHLO)."
    ),
]
_Inputs = Annotated[Path | None, typer.Option(help=".npz with one array per model input.")]
_Shape = Annotated[
    list[str], typer.Option(help="Bind an input's shape for verification and timing: NAME=D0,D1,... (repeatable).")
]
_FixDim = Annotated[
    list[str],
    typer.Option(
        help="Fix a dynamic dimension in the graph: SYMBOL=N (repeatable); the output accepts only that size."
    ),
]
_FixShape = Annotated[list[str], typer.Option(help="Fix an input's shape in the graph: NAME=D0,D1,... (repeatable).")]
_Budget = Annotated[
    float | None,
    typer.Option(
        help="Seconds the whole command may take (positive). Default: automatic, 60 s, raised for a large "
        "model to what judging one candidate takes there, at most 240 s."
    ),
]
_Policy = Annotated[
    str, typer.Option(help="learned (the search in the order the shipped ranker predicts), search, or greedy.")
]
_Rules = Annotated[str | None, typer.Option(help="Comma-separated rule names (default: all).")]
_Report = Annotated[Path | None, typer.Option(help="Write the report here: .json, .md or .html.")]
_Plot = Annotated[
    Path | None,
    typer.Option(help="Draw time by operator type, input vs output, to this .png (ORT's profiler; needs matplotlib)."),
]
_InPlace = Annotated[bool, typer.Option("--in-place", help="Replace MODEL (and its weights file) with the result.")]
_Mkdir = Annotated[bool, typer.Option("--mkdir", help="Create the output folders if they do not exist.")]
_Log = Annotated[
    Path | None,
    typer.Option(help="Save every evaluation (sites, fusion report, equivalence, timing) as JSON lines here."),
]


@app.command()
def optimize(
    model: _Model = None,
    output: _Output = None,
    example: _Example = None,
    target: _Target = None,
    inputs: _Inputs = None,
    shape: _Shape = [],  # noqa: B006
    fix_dim: _FixDim = [],  # noqa: B006
    fix_shape: _FixShape = [],  # noqa: B006
    budget: _Budget = None,
    policy: _Policy = "learned",
    rules: _Rules = None,
    report: _Report = None,
    plot: _Plot = None,
    in_place: _InPlace = False,
    mkdir: _Mkdir = False,
    log: _Log = None,
) -> None:
    """Rewrite MODEL, keep the result only if it is equivalent and faster, and report."""
    started = time.time()
    out = None
    try:
        source, out = _optimize_paths(model, example, output, in_place)
        target = target or _default_target(source)
        _check_side_files(report, plot, mkdir, log)
        result = _run_optimize(
            source, out, target, policy, rules, shape, inputs, budget, fix_dim, fix_shape, in_place, mkdir
        )
        _write_side_files(result, target, report, plot, log)
        written = [str(p) for p in (out, plot, report, log) if p]
        written += [p for p in (result.settings_path, result.record_path) if p]
        console.print("wrote " + ", ".join(written), highlight=False)
    except GraphoptError as error:
        _fail(error)
    except KeyboardInterrupt:
        console.print(f"[bold red]interrupted:[/] {_written_since(started, out, plot, report, log)}", highlight=False)
        raise typer.Exit(130) from None


def _written_since(started: float, *paths) -> str:
    """What an interrupted run left, read from the files themselves (each write is atomic): the
    model and what is written beside it under its name (weights, settings), the plot, the report."""
    candidates = [Path(p) for p in paths if p is not None]
    if paths[0] is not None and Path(paths[0]).parent.is_dir():
        stem = Path(paths[0]).name.removesuffix(".onnx")
        candidates += [p for p in Path(paths[0]).parent.iterdir() if p.name.startswith(stem) and p not in candidates]
    written = [
        str(p) for p in candidates if p.is_file() and not p.name.startswith(".") and p.stat().st_mtime >= started
    ]
    return f"wrote {', '.join(written)}; nothing else" if written else "nothing written"


def _optimize_paths(model, example, output, in_place) -> tuple[Path, Path]:
    if (model is None) == (example is None):
        raise GraphoptError("give either MODEL or --example NAME")
    if example and in_place:
        raise GraphoptError("--in-place needs a MODEL of yours, not an example")
    source = model or example_path(example)
    if output is None:
        output = (
            model if in_place else (model.with_suffix(".opt" + model.suffix) if model else Path(f"{example}.opt.onnx"))
        )
    return source, output


def _check_side_files(report: Path | None, plot: Path | None, mkdir: bool, log: Path | None = None) -> None:
    if report is not None and report.suffix.lower() not in (".json", ".md", ".html"):
        raise GraphoptError(f"--report {report}: give a .json, .md or .html file name")
    if plot is not None and plot.suffix.lower() != ".png":
        raise GraphoptError(f"--plot {plot}: give a .png file name")
    for path in (report, plot, log):
        if path is not None and not path.parent.is_dir() and not mkdir:
            raise GraphoptError(f"folder {path.parent} does not exist (pass --mkdir to create it)")


def _run_optimize(source, out, target, policy, rules, shape, inputs, budget, fix_dim, fix_shape, in_place, mkdir):
    from graphopt.api.files import optimize as run_optimize
    from graphopt.cli.progress_bar import progress_display
    from graphopt.core import registry
    from graphopt.core.registry import POLICIES
    from graphopt.reports import optimize as report_mod

    if policy not in POLICIES:
        raise GraphoptError(f"unknown policy {policy!r}; use {' or '.join(POLICIES)}")
    if budget is not None and not budget > 0:
        raise GraphoptError(f"--budget must be a positive number of seconds (got {budget:g})")
    with progress_display(console, "graphopt") as on_progress:
        result = run_optimize(
            source,
            out,
            target=target if target == "auto" else registry.target_for(target),
            policy=policy,
            rules=registry.rule_families(registry.format_name(source)).rules_by_name(
                rules.split(",") if rules else None
            ),
            shapes=_parse_shapes(shape),
            inputs_file=str(inputs) if inputs else None,
            budget_s=budget,
            on_progress=on_progress,
            fix_dims=_parse_dims(fix_dim),
            fix_shapes=_parse_shapes(fix_shape, "--fix-shape"),
            in_place=in_place,
            make_dirs=mkdir,
        )
    report_mod.render(result, Console())
    return result


def _write_side_files(result, target: str, report: Path | None, plot: Path | None, log: Path | None) -> None:
    from graphopt.core import registry

    for path in (report, plot, log):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    if log is not None:
        result.decision.log.save(log)
    if plot is not None:
        from graphopt.reports import plot as report_plot

        console.print("profiling input and output for the plot", highlight=False)
        report_plot.plot(result, plot, result.decision.compiled_with or registry.target_for(target))
    if report is not None:
        from graphopt.reports import documents as report_documents

        report_documents.write(result, report, str(plot) if plot else None)


@app.command()
def check(
    baseline: Annotated[Path, typer.Argument(help="Baseline model, or a folder of models.")],
    candidate: Annotated[Path, typer.Argument(help="Candidate model, or a folder with the same file names.")],
    target: Annotated[str | None, typer.Option(help="ort-cpu (default), ort-cpu-<level>, openvino-cpu.")] = None,
    max_slowdown: Annotated[str | None, typer.Option(help="Allowed slowdown, e.g. 2% (default) or 0.02.")] = None,
    confidence: Annotated[float | None, typer.Option(help="Confidence of the timing verdict (default 0.95).")] = None,
    inputs: Annotated[Path | None, typer.Option(help=".npz with one array per model input.")] = None,
    rtol: Annotated[float | None, typer.Option(help="Relative tolerance for every float output.")] = None,
    atol: Annotated[float | None, typer.Option(help="Absolute tolerance (scaled by the output's magnitude).")] = None,
    tolerance_profile: Annotated[str | None, typer.Option(help="default, exact, fp16 or bf16.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="text (default), json, junit or markdown.")] = None,
    output: Annotated[Path | None, typer.Option(help="Write the report here instead of stdout.")] = None,
    time_budget: Annotated[
        float | None, typer.Option(help="Seconds of timing per pair before 'inconclusive' (default 60).")
    ] = None,
    on_inconclusive: Annotated[str | None, typer.Option(help="pass (default) or fail.")] = None,
) -> None:
    """Fail (exit 1) when CANDIDATE is slower than BASELINE beyond a tolerance, or not equivalent.

    Exit codes: 0 pass, 1 regression, 2 usage error or bad input. Settings may also come from
    [tool.graphopt.check] in pyproject.toml; flags win.
    """
    from graphopt.reports import check as check_report

    try:
        settings, fmt = _check_settings(
            target, max_slowdown, confidence, inputs, rtol, atol, tolerance_profile, fmt, time_budget, on_inconclusive
        )
        if output is not None and not output.parent.is_dir():
            raise GraphoptError(f"folder {output.parent} does not exist")
        results = _run_checks(_pairs(baseline, candidate), settings)
    except GraphoptError as error:
        _fail(error)
    except KeyboardInterrupt:
        console.print("[bold red]interrupted:[/] nothing written", highlight=False)
        raise typer.Exit(130) from None
    _write_check_report(results, fmt, output)
    for r in results:
        if r.verdict != "pass":
            console.print(check_report.headline(r), highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(1 if any(r.failed() for r in results) else 0)


def _check_settings(
    target, max_slowdown, confidence, inputs, rtol, atol, tolerance_profile, fmt, time_budget, on_inconclusive
):
    """Flags first, then [tool.graphopt.check] in pyproject.toml, then defaults; validated."""
    from graphopt.api.checking import CheckSettings
    from graphopt.cli.config import check_settings, parse_fraction

    config = check_settings()
    pick = lambda flag, key, default: flag if flag is not None else config.get(key, default)  # noqa: E731
    settings = CheckSettings(
        target=pick(target, "target", None),
        max_slowdown=parse_fraction(pick(max_slowdown, "max-slowdown", "2%")),
        confidence=float(pick(confidence, "confidence", 0.95)),
        inputs=str(pick(inputs, "inputs", None)) if pick(inputs, "inputs", None) else None,
        tolerance_profile=pick(tolerance_profile, "tolerance-profile", "default"),
        rtol=pick(rtol, "rtol", None),
        atol=pick(atol, "atol", None),
        time_budget_s=float(pick(time_budget, "time-budget", 60.0)),
        on_inconclusive=pick(on_inconclusive, "on-inconclusive", "pass"),
    )
    fmt = pick(fmt, "format", "text")
    if fmt not in ("text", "json", "junit", "markdown"):
        raise GraphoptError(f"unknown format {fmt!r}; use text, json, junit or markdown")
    if settings.on_inconclusive not in ("pass", "fail"):
        raise GraphoptError("--on-inconclusive takes pass or fail")
    if not 0.5 <= settings.confidence < 1:
        raise GraphoptError("--confidence must be in [0.5, 1)")
    if not settings.time_budget_s > 0:
        raise GraphoptError("--time-budget must be a positive number of seconds")
    settings.tolerances()  # validates the profile name before any work
    return settings, fmt


def _run_checks(pairs, settings) -> list:
    from graphopt.api.checking import check as run_check
    from graphopt.cli.progress_bar import progress_display
    from graphopt.core.progress import Event

    results = []
    with progress_display(console, "graphopt check") as show:
        for base, cand in pairs:
            results.append(run_check(base, cand, settings, on_progress=lambda m, c=cand: show(Event(f"{c.name}: {m}"))))
    return results


def _write_check_report(results, fmt: str, output) -> None:
    import os

    from graphopt.core.atomic import atomic_path
    from graphopt.reports import check as check_report

    report = check_report.render(results, fmt)
    if output:
        with atomic_path(output) as tmp:
            tmp.write_text(report)
    else:
        sys.stdout.write(report)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as handle:
            handle.write(check_report.markdown(results))


def _pairs(baseline: Path, candidate: Path) -> list[tuple[Path, Path]]:
    """One pair, or every model file name the two folders share."""
    if baseline.is_dir() != candidate.is_dir():
        raise GraphoptError("give two model files or two folders")
    if not baseline.is_dir():
        return [(baseline, candidate)]
    from graphopt.core.registry import SUFFIXES

    names = sorted(p.name for p in baseline.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    missing = [n for n in names if not (candidate / n).is_file()]
    if missing:
        raise GraphoptError(f"{candidate} has no {', '.join(missing)}")
    if not names:
        raise GraphoptError(f"{baseline} holds no model files ({', '.join(sorted(SUFFIXES))})")
    return [(baseline / n, candidate / n) for n in names]


@app.command()
def inspect(
    model: Annotated[Path, typer.Argument(help="The ONNX model or StableHLO module to inspect.")],
    target: _Target = None,
    inputs: _Inputs = None,
) -> None:
    """Show what the compiler fuses in MODEL now, which sites graphopt's rules find, and near misses."""
    from graphopt.core import registry
    from graphopt.core.decide import bound
    from graphopt.core.protocols import OpVocabulary

    out = Console()
    try:
        fmt, rules = registry.format_for(model)
        target = registry.target_for(target or registry.default_target(model))
        graph = fmt.load(model)
        fmt.prepare(graph)
        target.admit(graph)
        target = bound(target, fmt.feeds(graph, None, str(inputs) if inputs else None))
        report = target.compile(graph, report=True).report
    except GraphoptError as error:
        _fail(error)
    rule_set = fmt.rules(rules, graph, runs_op=target.runs_op if isinstance(target, OpVocabulary) else None)
    out.print(
        f"[bold]{model}[/]: {sum(1 for _ in fmt.op_types(graph))} nodes, "
        f"{report.kernels} {target.compiler} {target.kernel_noun} ({target.name})"
    )
    listing = lambda counts: ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())) or "none"  # noqa: E731
    out.print(f"fused kernels in what {target.compiler} runs: " + listing(report.fused))
    out.print(f"of which {target.compiler}'s own fusions created: " + listing(report.fired))
    sites = rule_set.sites(graph)
    out.print(f"sites graphopt finds: {len(sites)}")
    for site in sites:
        out.print(f"  {site.rule:<22} at {site.anchor} ({len(site.nodes)} nodes)")
    misses = rule_set.near_misses(graph, sites)
    if misses:
        out.print("near misses (closest failed match per rule):")
        for miss in misses:
            out.print(f"  {miss.rule:<22} at {miss.anchor}: {escape(miss.reason)} ({miss.matched_nodes} nodes matched)")


@app.command("rules")
def list_rules(
    graph_format: Annotated[str, typer.Option("--format", help="onnx, stablehlo or fx: whose rules to list.")] = "onnx",
) -> None:
    """List the rewrite rules by family: each family's legality notes, then one line per rule."""
    from graphopt.core import registry

    try:
        families = registry.rule_families(graph_format)
    except GraphoptError as error:
        _fail(error)

    out = Console()
    family = None
    for r in families.all_rules():
        if r.family != family:
            family = r.family
            out.print(f"\n[bold]{family}[/]")
            out.print(
                (families.families()[family].__doc__ or "").strip(), highlight=False, markup=False, soft_wrap=True
            )
        out.print(f"  [cyan]{r.name}[/]  {escape(r.summary)}", highlight=False, soft_wrap=True)


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
        _fail(
            GraphoptError(f"the zoo needs torch and transformers: pip install 'graphopt[zoo]' ({error.name} missing)")
        )
    try:
        path, inputs_path = build(name, out_dir, size=size, exporter=exporter, dynamic=dynamic, seq=seq, batch=batch)
    except GraphoptError as error:
        _fail(error)
    Console().print(f"wrote {path} and {inputs_path}")


def main() -> None:  # pragma: no cover - the console script calls app directly
    sys.exit(app())
