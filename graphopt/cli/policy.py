"""`graphopt policy collect | retime | train | eval`: the learned policy's data, weights and judgement
(graphopt/policies/). Errors are one line and exit 2, as for every graphopt command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

policy_app = typer.Typer(
    no_args_is_help=True, help="The learned rewrite policy: collect a dataset, train weights, evaluate them."
)
console = Console(stderr=True)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _needs(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        _fail(f"this needs {', '.join(missing)}: pip install 'graphopt[policy]'")


@policy_app.command("collect")
def collect(
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Dataset folder (one Parquet file per graph; a rerun resumes).")
    ] = Path("policy-data"),
    count: Annotated[int, typer.Option(help="Training graphs to sample (plus a third as many held-out ones).")] = 24,
    seed: Annotated[int, typer.Option()] = 0,
    arch: Annotated[list[str] | None, typer.Option(help="Only these training architectures (repeatable).")] = None,
    measure_s: Annotated[float, typer.Option(help="Timing per pool entry, seconds.")] = 6.0,
    ray: Annotated[
        str | None, typer.Option(help="Run on Ray: 'auto' or a cluster address (default: local processes).")
    ] = None,
    target: Annotated[
        str, typer.Option(help="Any target that compiles ONNX: ort-cpu, openvino-cpu, iree-cpu, a plugged-in one.")
    ] = "ort-cpu",
    hours: Annotated[float | None, typer.Option(help="Start no graph after this many hours (a rerun resumes).")] = None,
    corpus_kind: Annotated[
        str,
        typer.Option(
            "--corpus",
            help="onnx: torch-exported transformers and CNNs plus files from other projects; "
            "jax: the JAX zoo's architectures as StableHLO (for xla-cpu, iree-cpu).",
        ),
    ] = "onnx",
) -> None:
    """Judge every candidate of sampled corpus graphs and store each evaluation."""
    _needs("pyarrow", "torch", "transformers", *(("ray",) if ray else ()))
    from graphopt.core import registry
    from graphopt.core.errors import GraphoptError
    from graphopt.policies.training import corpus
    from graphopt.policies.training.commands import collect_corpus

    try:
        registry.target_for(target)
    except GraphoptError as error:
        _fail(str(error))
    if corpus_kind not in corpus.KINDS:
        _fail(f"unknown corpus {corpus_kind!r}; choose from {', '.join(corpus.KINDS)}")
    training = corpus.of_kind(corpus_kind).TRAIN
    unknown = set(arch or ()) - set(training)
    if unknown:
        _fail(f"unknown or held-out architecture(s) {', '.join(sorted(unknown))}; training ones: {', '.join(training)}")
    written = collect_corpus(
        out,
        count,
        seed,
        arch,
        measure_s=measure_s,
        ray_address=ray,
        progress=lambda m: console.print(m, highlight=False, soft_wrap=True),
        target=target,
        hours=hours,
        kind=corpus_kind,
    )
    Console().print(f"{len(written)} graph(s) written to {out}")


@policy_app.command("featurize")
def featurize(
    data: Annotated[Path, typer.Argument(help="A dataset folder from `graphopt policy collect`.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for the rows with today's features.")],
    ray: Annotated[
        str | None, typer.Option(help="Run on Ray: 'auto' or a cluster address (default: local processes).")
    ] = None,
) -> None:
    """Read a dataset's features again with today's feature set, keeping its measurements."""
    _needs("pyarrow", "torch", "transformers", *(("ray",) if ray else ()))
    from graphopt.policies.training.featurize import featurize as featurize_data

    if out.resolve() == data.resolve():
        _fail("write the new features to another folder (-o): the dataset is the measurements")
    try:
        written = featurize_data(data, out, ray, progress=lambda m: console.print(m, highlight=False, soft_wrap=True))
    except (FileNotFoundError, ValueError) as error:
        _fail(str(error))
    Console().print(f"{len(written)} graph(s) featurized into {out}")


@policy_app.command("retime")
def retime(
    data: Annotated[Path, typer.Argument(help="A dataset folder from `graphopt policy collect`.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for the retimed rows (a rerun resumes).")] = Path(
        "policy-retimed"
    ),
    arch: Annotated[
        list[str] | None, typer.Option(help="Architectures to retime (default: the held-out ones).")
    ] = None,
    measure_s: Annotated[float, typer.Option(help="Timing per entry, seconds, every round kept.")] = 3.0,
    ray: Annotated[
        str | None, typer.Option(help="Run on Ray: 'auto' or a cluster address (default: local processes).")
    ] = None,
) -> None:
    """Time every accepted entry again, apart from the timing that chose it (for `eval --retimed`)."""
    _needs("pyarrow", "torch", "transformers", *(("ray",) if ray else ()))
    from graphopt.policies.training import corpus
    from graphopt.policies.training.retime import retime as retime_data

    try:
        written = retime_data(
            data,
            out,
            arch or corpus.HELD_OUT,
            measure_s,
            ray,
            progress=lambda m: console.print(m, highlight=False, soft_wrap=True),
        )
    except (FileNotFoundError, ValueError) as error:
        _fail(str(error))
    Console().print(f"{len(written)} graph(s) retimed into {out}")


@policy_app.command("train")
def train(
    data: Annotated[Path, typer.Argument(help="A dataset folder from `graphopt policy collect`.")],
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Weights file (default: the shipped graphopt/policies/weights/ort-cpu.json)."),
    ] = None,
    seed: Annotated[int, typer.Option()] = 0,
    ray: Annotated[str | None, typer.Option(help="Fit on Ray: 'auto' or a cluster address (default: here).")] = None,
    rule_names: Annotated[
        bool, typer.Option(help="Let the ranker read rule and family names too (default: target-neutral features).")
    ] = False,
) -> None:
    """Train the ranker on the dataset's training architectures and write its weights."""
    _needs("pyarrow", "lightgbm", *(("ray",) if ray else ()))
    from graphopt.policies.training.commands import train_from

    try:
        ranker, path = train_from(data, out, seed=seed, ray_address=ray, rule_names=rule_names)
    except (FileNotFoundError, ValueError) as error:
        _fail(str(error))
    Console().print(f"wrote {path} (feature schema {ranker.feature_schema}, training set {ranker.training_set})")


@policy_app.command("eval")
def evaluate(
    data: Annotated[Path, typer.Argument(help="A dataset folder with held-out architectures.")],
    weights: Annotated[Path | None, typer.Option(help="Weights file (default: the shipped one).")] = None,
    retimed: Annotated[
        Path | None, typer.Option(help="Credit kept entries with these timings (`graphopt policy retime`).")
    ] = None,
    leave_one_out: Annotated[
        bool, typer.Option(help="Also train without each architecture in turn and judge on it.")
    ] = False,
) -> None:
    """Learned vs greedy vs random vs the measured search at equal budget, on held-out graphs."""
    _needs("pyarrow", "lightgbm", "scipy")
    from graphopt.policies import weights_path
    from graphopt.policies.ranker import Ranker
    from graphopt.policies.training import commands

    try:
        summary = commands.gain(data)
        if weights is None and not weights_path(summary["target"]).exists():
            _print_nothing_shipped(summary)
            return
        result = commands.evaluation(data, Ranker.load(weights) if weights else None, retimed=retimed)
        by_arch = commands.leave_one_out(data) if leave_one_out else {}
    except (FileNotFoundError, ValueError) as error:
        _fail(str(error))
    _print_evaluation(result)
    if by_arch:
        _print_leave_one_out(by_arch)


def _print_nothing_shipped(summary: dict) -> None:
    """A target without weights: what its dataset holds to learn, so 'none shipped' has numbers."""
    Console().print(
        f"{summary['target']}: no weights shipped (the learned policy is the search there). The dataset holds "
        f"{summary['graphs']} graphs and {summary['candidates']} candidates; {summary['timed']} passed the target's "
        f"report to timing, {summary['kept']} were kept (faster by the engine's margin with confidence) on "
        f"{summary['graphs_gaining']} graphs; the whole search's geometric-mean speedup is "
        f"{summary['search_speedup']:.3f}x. Most frequent rejection: {summary['top_rejection']}."
    )


def _print_leave_one_out(by_arch: dict) -> None:
    table = Table(title="leave one architecture out: trained on the others, judged on it")
    for column in ("architecture", "graphs", "learned at 1/20", "search (whole)", "greedy", "Kendall tau", "top-1"):
        table.add_column(column, justify="left" if column == "architecture" else "right")
    for arch, result in by_arch.items():
        speedups, quality = result["speedups"], result["quality"]
        table.add_row(
            arch,
            str(result["graphs"]),
            f"{result['twentieth']['learned']:.3f}x",
            f"{result['twentieth']['search']:.3f}x",
            f"{speedups['greedy'][1.0]:.3f}x",
            f"{quality['kendall_tau']:.3f}",
            f"{quality['top1_slowdown']:.3f}",
        )
    Console().print(table)


def _print_evaluation(result: dict) -> None:
    out = Console()
    budgets = sorted({b for per in result["speedups"].values() for b in per})
    baseline = {"inductor": "Inductor as torch.compile runs it", "ort-cpu": "ORT ENABLE_ALL"}.get(
        result.get("target"), f"{result.get('target')} as is"
    )
    table = Table(
        title=f"held-out graphs: {result['graphs']} ({', '.join(result['archs'])}); "
        f"geometric-mean speedup over {baseline}, "
        "by budget (share of what judging the whole pool cost)"
    )
    table.add_column("policy")
    for budget in budgets:
        table.add_column(f"{budget:.0%}" if budget < 1 else "whole search", justify="right")
    for policy in ("learned", "search", "greedy", "random"):
        if policy in result["speedups"]:
            table.add_row(policy, *(f"{result['speedups'][policy][b]:.3f}x" for b in budgets))
    out.print(table)
    if result.get("retimed"):
        out.print(
            f"kept entries credited with their retimed ratio on {result['retimed']} of {result['graphs']} graphs "
            "(chosen by the first timing)"
        )
    quality = result["quality"]
    out.print(
        f"ranking: Kendall tau {quality['kendall_tau']:.3f} over {quality['graphs_ranked']} graphs; "
        f"top-1 slowdown {quality['top1_slowdown']:.3f}, top-5 slowdown {quality['top5_slowdown']:.3f}"
    )
    reached = result["twentieth"]
    out.print(
        f"learned with 1/20 of the budget: {reached['learned']:.3f}x, "
        f"{reached['speedup_share']:.1%} of the whole search's "
        f"{reached['search']:.3f}x ({reached['gain_share']:.1%} of its gain)"
    )
