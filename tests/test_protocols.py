"""One engine, one contract: every member the ways in call is declared in core/protocols.py,
every Format/RuleSet/Target implements all of it, and each pair (ONNX+ORT, FX+Inductor, FX via
the ORT route, StableHLO+XLA) runs through ``decide()`` on a tiny graph and through its way in
(``graphopt.optimize``, the torch backend, the JAX API)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest

import graphopt
import graphopt.torch
from graphopt.core import protocols, registry
from graphopt.core.budget import Budget
from graphopt.core.decide import decide
from graphopt.core.errors import GraphoptError
from graphopt.formats.fx.capture import dynamo_graph
from graphopt.policies.search import FamilySearch, Greedy
from tests.test_optimize import _mlp_with_erf_gelu
from tests.test_torch_backend import _Swish  # x * sigmoid(x) between two Linear layers: silu's site

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

GRAPHOPT = Path(__file__).parents[1] / "graphopt"
# the ways in and the engine's own callers: every attribute they read on these names must be declared
CALLERS = [
    "api/files.py",
    "api/checking.py",
    "api/__init__.py",
    "cli/app.py",
    "jax.py",
    "torch/choice.py",
    "torch/onnx_route.py",
]
CALLERS += [
    "core/decide.py",
    "core/judge.py",
    "core/harness.py",
    "policies/learned.py",
    "policies/search.py",
    "reports/plot.py",
]
TARGET_MEMBERS = (protocols.Target, protocols.Tunable, protocols.SettingsFile, protocols.Profiler, protocols.Freezing)
TARGET_MEMBERS += (protocols.TorchRunner, protocols.ShapeBinding, protocols.OpVocabulary)
TARGET_MEMBERS += (protocols.ParameterHolding, protocols.JaxRunner, protocols.CompileCache, protocols.JaxJit)
TARGET_MEMBERS += (protocols.StandardLevels,)
ROLES = {  # variable name in the callers -> the protocols that declare what may be read on it
    "fmt": (protocols.Format,),
    "target": TARGET_MEMBERS,
    "target_a": TARGET_MEMBERS,
    "target_b": TARGET_MEMBERS,
    "xla": TARGET_MEMBERS,
    "target_as_is": TARGET_MEMBERS,
    "judged": TARGET_MEMBERS,
    "rule_set": (protocols.RuleSet,),
    "policy": (protocols.Policy,),
    "compiled": (protocols.Compiled,),
}


def _declared(protocol) -> set[str]:
    names = {n for n in vars(protocol) if not n.startswith("_")}
    return names | set(getattr(protocol, "__annotations__", {}))


def _reads() -> dict[str, set[tuple[str, str]]]:
    """Per caller, the (variable, attribute) pairs read on the variables of ROLES."""
    found = {}
    for relative in CALLERS:
        tree = ast.parse((GRAPHOPT / relative).read_text())
        pairs = {
            (node.value.id, node.attr)
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ROLES
        }
        found[relative] = pairs
    return found


def test_every_member_the_ways_in_call_is_declared():
    undeclared = {}
    for relative, pairs in _reads().items():
        for name, attribute in pairs:
            if not any(attribute in _declared(p) for p in ROLES[name]):
                undeclared.setdefault(relative, []).append(f"{name}.{attribute}")
    assert undeclared == {}
    assert sum(len(p) for p in _reads().values()) > 40  # the scan sees the calls (not an empty pass)


def _rule_sets():
    from graphopt.formats.fx.format import FxRules
    from graphopt.formats.onnx import OnnxRules
    from graphopt.formats.stablehlo.rules import StableHloRules

    return {"onnx": OnnxRules, "stablehlo": StableHloRules, "fx": FxRules}


def _formats():
    return [registry.format_named(name)[0] for name in ("onnx", "stablehlo", "fx")]


def test_every_format_and_rule_set_implements_the_whole_contract():
    RULE_SETS = _rule_sets()
    for fmt in _formats():
        missing = sorted(n for n in _declared(protocols.Format) if not hasattr(fmt, n))
        assert missing == [], fmt.name
        assert isinstance(fmt, protocols.Format)
        rule_set = RULE_SETS[fmt.name](registry.rule_families(fmt.name).all_rules())
        assert sorted(n for n in _declared(protocols.RuleSet) if not hasattr(rule_set, n)) == [], fmt.name


def test_every_target_implements_the_contract_and_declares_its_capabilities():
    ort, xla, inductor = (registry.target_for(n) for n in ("ort-cpu", "xla-cpu", "inductor-cpu"))
    for target in (ort, xla, inductor):
        assert sorted(n for n in _declared(protocols.Target) if not hasattr(target, n)) == [], target.name
        assert isinstance(target, protocols.Target)
    assert [isinstance(ort, c) for c in (protocols.Tunable, protocols.SettingsFile, protocols.Profiler)] == [True] * 3
    assert not isinstance(inductor, (protocols.Tunable, protocols.SettingsFile, protocols.Profiler))  # by absence
    assert isinstance(xla, protocols.Tunable) and isinstance(xla, protocols.SettingsFile)  # compile options
    assert isinstance(xla, protocols.JaxJit) and not isinstance(xla, (protocols.Profiler, protocols.JaxRunner))
    assert isinstance(inductor, protocols.Freezing) and isinstance(ort, protocols.TorchRunner)
    assert not isinstance(ort, protocols.Freezing) and not isinstance(xla, protocols.TorchRunner)
    openvino = registry.target_for("openvino-cpu")
    assert sorted(n for n in _declared(protocols.Target) if not hasattr(openvino, n)) == []
    capabilities = (protocols.Tunable, protocols.SettingsFile, protocols.Profiler)
    capabilities += (protocols.ShapeBinding, protocols.OpVocabulary)
    assert [isinstance(openvino, c) for c in capabilities] == [True] * 5
    assert not any(isinstance(t, (protocols.ShapeBinding, protocols.OpVocabulary)) for t in (ort, xla, inductor))
    for policy in (Greedy(), FamilySearch(), registry.policy_for("learned", _formats()[0], ort)):
        assert isinstance(policy, protocols.Policy) and policy.explanation == []


def test_onnx_and_ort_through_decide():
    fmt, rules = registry.format_named("onnx")
    original = fmt.from_object(_mlp_with_erf_gelu(np.float32))
    graph = fmt.copy(original)
    fmt.prepare(graph)
    decision = decide(
        graph, fmt.rules(rules, original), registry.target_for("ort-cpu"), Greedy(), fmt.feeds(graph), Budget(6.0)
    )
    evaluation = next(iter(decision.log))
    assert [s.rule for s in evaluation.candidate.applied] == ["gelu-erf"] and evaluation.equivalence.ok
    assert decision.target == "ort-cpu" and evaluation.report.fused.get("com.microsoft::Gelu") == 1


def _grouped_attention(q, k):
    """Two query heads per K head, K repeated (jnp.repeat) before the product: grouped_dot's pattern."""
    return jnp.einsum("bhqd,bhkd->bhqk", q, jnp.repeat(k, 2, axis=1))


def _attention_arguments():
    rng = np.random.default_rng(0)
    return rng.standard_normal((1, 4, 8, 16), np.float32), rng.standard_normal((1, 2, 8, 16), np.float32)


def test_stablehlo_and_xla_through_decide():
    from jax import export

    exported = export.export(jax.jit(_grouped_attention))(*_attention_arguments())
    name, fmt, rules = registry.format_of(exported)
    graph = fmt.from_object(exported)
    feeds = [dict(zip([s.name for s in fmt.input_specs(graph)], _attention_arguments()))]
    decision = decide(graph, fmt.rules(rules, graph), registry.target_for("xla-cpu"), Greedy(), feeds, Budget(6.0))
    evaluation = next(iter(decision.log))
    assert name == "stablehlo" and [s.rule for s in evaluation.candidate.applied] == ["grouped_dot"]
    # XLA's optimized HLO has its two kernels (the dot's custom fusion, one loop fusion) either way
    # at this size: the judge drops it before verifying or timing, as it should
    assert (evaluation.report.kernels, evaluation.rejected) == (2, "no fusion gained and no kernel saved")
    assert decision.target == "xla-cpu" and decision.chosen is None


class _Attention(torch.nn.Module):
    """Attention written out with an additive mask: the FX sdpa rule's site."""

    def forward(self, q, k, v, mask):
        return torch.softmax(q @ k.transpose(-2, -1) * 0.25 + mask, dim=-1) @ v


class _ErfGelu(torch.nn.Module):
    """GELU written out with erf between two Linear layers: the ONNX gelu-erf rule's site."""

    def __init__(self):
        super().__init__()
        self.up, self.down = torch.nn.Linear(16, 64), torch.nn.Linear(64, 8)

    def forward(self, x):
        h = self.up(x)
        return self.down(h * (0.5 * (1.0 + torch.erf(h / 1.4142135623730951))))  # as torch's dynamo export writes it


def test_fx_and_inductor_through_decide():
    from graphopt.formats.fx.format import feeds_of

    q, k, v = (torch.randn(1, 2, 16, 8) for _ in range(3))
    gm, args = dynamo_graph(_Attention(), q, k, v, torch.zeros(1, 1, 16, 16))
    name, fmt, rules = registry.format_of(gm)
    rule_set = fmt.rules(rules, gm)
    assert name == "fx" and [s.rule for s in rule_set.sites(gm)] == ["sdpa"]
    target = registry.target_for("inductor-cpu")
    with torch.no_grad():
        # 30 s: a cold Inductor compiles this graph in seconds, and a candidate is judged only
        # when its compilation and a timing fit what is left (core/judge.py search)
        decision = decide(gm, rule_set, target, Greedy(), [feeds_of(gm, args)], Budget(30.0, saves=False))
    evaluation = next(iter(decision.log))
    assert [s.rule for s in evaluation.candidate.applied] == ["sdpa"] and evaluation.equivalence.ok
    gained = evaluation.report.gained_over(decision.baseline.report)
    # read from the code Inductor wrote: its own matcher misses attention with a mask input
    assert "aten._scaled_dot_product_flash_attention_for_cpu" in gained, gained
    assert evaluation.timing is not None and decision.target == "inductor-cpu"
    assert "scaled_dot_product" not in gm.code  # the rewrite is on a copy


def test_fx_sites_can_be_left_out_one_class_at_a_time():
    model, x = _Swish().eval(), torch.randn(4, 16)
    gm, _ = dynamo_graph(model, x)
    fmt, rules = registry.format_named("fx")
    rule_set = fmt.rules(rules, gm)
    (site,) = rule_set.sites(gm)
    left = rule_set.rewrite("without silu", gm, ["silu"], frozenset({site.site_class}))
    assert left.applied == [] and "sigmoid" in left.graph.code


def test_fx_via_the_ort_route_through_decide():
    from graphopt.torch import onnx_route

    model, x = _ErfGelu().eval(), torch.randn(2, 4, 16)
    gm, args = dynamo_graph(model, x)
    route = onnx_route.compile_graph(gm, args, budget_s=8.0, policy="greedy")
    assert route.decision is not None and route.decision.target == "ort-cpu"
    (evaluation,) = route.decision.log
    assert "gelu-erf" in {s.rule for s in evaluation.candidate.applied} and evaluation.report is not None
    with torch.no_grad():
        torch.testing.assert_close(route(*args)[0], model(x), rtol=1e-5, atol=1e-5)


def test_the_torch_backend_logs_the_engines_decision_and_the_sites():
    model, x = _Swish().eval(), torch.randn(4, 16)
    (decision,) = graphopt.torch.explain(model, x, options={"budget": 8, "policy": "greedy"})
    labels = [e["label"] for e in decision.evaluations]
    assert "all rules" in labels and "onnxruntime route" in labels  # the FX candidate and the route, one log
    assert sorted(decision.sites_taken + decision.sites_left) == sorted({*decision.sites_taken, *decision.sites_left})
    assert [s.split("@")[0] for s in decision.sites_taken + decision.sites_left] == ["silu"]
    for record in decision.evaluations:  # the engine's acceptance rule, for every contender
        timing = record["timing"]
        accepted = not record["rejected"] and timing is not None and timing["ci_high"] < 1 - 0.015
        assert accepted == (record["rejected"] is None)


def test_the_jax_api_goes_through_the_engine():
    import graphopt.jax as gjax

    fast = gjax.optimize(_grouped_attention, *_attention_arguments(), budget=8)
    assert fast.graphopt.target == "xla-cpu" and len(fast.graphopt.log) == 1
    np.testing.assert_allclose(
        np.asarray(fast(*_attention_arguments())),
        np.asarray(_grouped_attention(*_attention_arguments())),
        rtol=1e-5,
        atol=1e-5,
    )


def test_optimize_a_stablehlo_file_from_python_compiles_with_xla(tmp_path):
    from graphopt.api.files import optimize

    path = tmp_path / "m.mlir"
    path.write_text(jax.jit(_grouped_attention).lower(*_attention_arguments()).as_text())
    result = optimize(path, tmp_path / "out.mlir", budget_s=8.0)
    assert result.decision.target == "xla-cpu" and (tmp_path / "out.mlir").is_file()


@pytest.mark.parametrize("kind", ["path", "proto", "onnx_ir"])
def test_graphopt_optimize_takes_each_onnx_input_kind(tmp_path, kind):
    proto = _mlp_with_erf_gelu(np.float32)
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    model = {"path": str(path), "proto": proto, "onnx_ir": ir.from_proto(proto)}[kind]
    result = graphopt.optimize(model, budget=6, policy="greedy")
    assert result.decision.target == "ort-cpu" and len(result.decision.log) == 1
    assert isinstance(result.model, ir.Model) and result.report()["target"] == "ort-cpu"
    assert list(tmp_path.iterdir()) == [path]  # nothing written unless asked
    assert proto.graph.node[0].op_type != "Gelu"  # the caller's model is not rewritten


def test_graphopt_optimize_takes_stablehlo_text_and_an_exported():
    from jax import export

    text = jax.jit(_grouped_attention).lower(*_attention_arguments()).as_text()
    exported = export.export(jax.jit(_grouped_attention))(*_attention_arguments())
    for model in (text, exported):
        result = graphopt.optimize(model, budget=6, policy="greedy")
        assert result.decision.target == "xla-cpu" and [
            s.rule for s in next(iter(result.decision.log)).candidate.applied
        ] == ["grouped_dot"]


def test_graphopt_check_on_models_in_memory():
    proto = _mlp_with_erf_gelu(np.float32)
    result = graphopt.check(proto, proto, time_budget=5)
    assert result.equivalence.ok and result.verdict in ("pass", "inconclusive") and result.compiler == "ORT"
    assert result.baseline == "<ModelProto in memory>"


def test_a_model_no_format_reads_is_a_one_line_error():
    with pytest.raises(GraphoptError, match="cannot read a dict"):
        graphopt.optimize({"not": "a model"})
