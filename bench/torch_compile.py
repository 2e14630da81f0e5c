"""`python -m bench.torch_compile`: torch.compile(backend="graphopt") beside eager and Inductor.

A first measurement for issue 12 (the full `bench --torch` set is still to build): MiniLM-L6-H384
and a LLaMA-style decoder (4 layers, GQA 8/2) from their transformers configs, batch 1, sequence
16, inference. Each compiled module is called once (first-call time, which includes compiling),
then eager, Inductor and graphopt are timed interleaved in one process (measure.interleaved:
ratios per round, median and 95% bootstrap interval).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import transformers

from graphopt.core.measure import interleaved

MODELS = {
    "minilm-l6": lambda: transformers.BertModel(
        transformers.BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    ),
    "llama-4l-gqa": lambda: transformers.LlamaModel(
        transformers.LlamaConfig(
            hidden_size=512,
            intermediate_size=1376,
            num_hidden_layers=4,
            num_attention_heads=8,
            num_key_value_heads=2,
            vocab_size=32000,
        )
    ),
}


def _first_call(fn, kwargs) -> float:
    start = time.monotonic()
    fn(**kwargs)
    return time.monotonic() - start


def run(name: str, budget: float, seconds: float) -> dict:
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    kwargs = {"input_ids": torch.randint(0, 1000, (1, 16)), "attention_mask": torch.ones(1, 16, dtype=torch.int64)}
    with torch.no_grad():
        torch._dynamo.reset()
        inductor = torch.compile(model, backend="inductor")
        first_inductor = _first_call(inductor, kwargs)
        graphopt = torch.compile(
            model, backend="graphopt", options={"budget": budget, "cache_dir": None}
        )  # decided afresh
        first_graphopt = _first_call(graphopt, kwargs)
        reference = model(**kwargs).last_hidden_state
        error = (graphopt(**kwargs).last_hidden_state - reference).abs().max().item()
        call = lambda fn: lambda: fn(**kwargs)  # noqa: E731
        vs_inductor = interleaved([call(inductor)], [call(graphopt)], budget_s=seconds)
        vs_eager = interleaved([call(model)], [call(graphopt)], budget_s=seconds)
        strongest, first_strongest = _strongest_inductor(model, kwargs)
        vs_strongest = interleaved([call(strongest)], [call(graphopt)], budget_s=seconds)
    return {
        "model": name,
        "first_call_s": {"inductor": first_inductor, "graphopt": first_graphopt},
        "max_abs_error": error,
        "graphopt_vs_inductor": {
            "ratio": vs_inductor.ratio,
            "ci95": [vs_inductor.ci_low, vs_inductor.ci_high],
            "inductor_ms": vs_inductor.baseline_s * 1e3,
            "graphopt_ms": vs_inductor.candidate_s * 1e3,
        },
        "graphopt_vs_eager": {
            "ratio": vs_eager.ratio,
            "ci95": [vs_eager.ci_low, vs_eager.ci_high],
            "eager_ms": vs_eager.baseline_s * 1e3,
        },
        "graphopt_vs_inductor_freezing_max_autotune": {
            "ratio": vs_strongest.ratio,
            "ci95": [vs_strongest.ci_low, vs_strongest.ci_high],
            "inductor_ms": vs_strongest.baseline_s * 1e3,
            "first_call_s": first_strongest,
        },
    }


def _strongest_inductor(model, kwargs):
    """Inductor with freezing and max-autotune: the strongest setting a user would try."""
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True  # read when the first call compiles
    try:
        compiled = torch.compile(model, mode="max-autotune")
        return compiled, _first_call(compiled, kwargs)
    finally:
        inductor_config.freezing = False


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.torch_compile", description=__doc__)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--budget", type=float, default=30.0, help="graphopt's budget per graph")
    parser.add_argument("--seconds", type=float, default=20.0, help="interleaved timing per pair")
    parser.add_argument("--out", default="bench/results/torch-compile.json")
    args = parser.parse_args(argv)
    results = [run(name, args.budget, args.seconds) for name in args.models.split(",")]
    for r in results:
        print(json.dumps(r))
    with open(args.out, "w") as handle:
        json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
