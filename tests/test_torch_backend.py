"""`torch.compile(model, backend="graphopt")`: found by name in a fresh process, equal to eager,
a weight change noticed, gradients to Inductor, a failing route falls back with a warning."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")


class _Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up, self.down = torch.nn.Linear(16, 64), torch.nn.Linear(64, 8)

    def forward(self, x):
        return self.down(torch.nn.functional.gelu(self.up(x)))


def test_backend_is_found_by_name_in_a_fresh_process():
    script = textwrap.dedent("""
        import sys, torch
        model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 4)).eval()
        x = torch.randn(3, 16)
        assert "graphopt" not in sys.modules
        with torch.no_grad():
            out = torch.compile(model, backend="graphopt", options={"budget": 5})(x)
            torch.testing.assert_close(out, model(x), rtol=1e-5, atol=1e-5)
        assert "graphopt.torch.backend" in sys.modules
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]


def _compiled(model, **options):
    torch._dynamo.reset()
    return torch.compile(model, backend="graphopt", options={"budget": 5} | options)


def test_outputs_match_eager_and_a_weight_change_is_noticed():
    model = _Mlp().eval()
    x = torch.randn(4, 16)
    compiled = _compiled(model)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)
        model.up.weight.mul_(2.0)  # baked into the ORT session: the guard must see it
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_a_training_step_goes_to_inductor_and_its_gradients_match_eager():
    # x * sigmoid(x) is rewritten to silu (a rule that keeps gradients exact) in the training graph
    torch.manual_seed(0)
    model, reference = _Swish(), _Swish()
    reference.load_state_dict(model.state_dict())
    x = torch.randn(4, 16)
    _compiled(model)(x).square().sum().backward()
    reference(x).square().sum().backward()
    decision = graphopt_decisions()[-1]
    assert (decision.target, decision.contender, decision.rules) == ("inductor", "inductor+rules", {"silu": 1})
    for mine, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        # fp32 gradients through two Linear layers and Inductor's fused kernels: a few ulp of
        # reassociation, far below what a wrong derivative (silu' vs relu') would give
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_route_that_gives_wrong_outputs_falls_back_to_inductor_with_a_warning(monkeypatch):
    from graphopt.torch import onnx_route

    real = onnx_route.compile_graph

    def wrong(*args, **kwargs):
        route = real(*args, **kwargs)
        right = route.__call__
        monkeypatch.setattr(type(route), "__call__", lambda self, *a: tuple(t + 1.0 for t in right(*a)))
        return route

    monkeypatch.setattr(onnx_route, "compile_graph", wrong)
    model = _Mlp().eval()
    x = torch.randn(4, 16)
    with (
        torch.no_grad(),
        pytest.warns(UserWarning, match="falling back to Inductor.*onnxruntime left out: output output_0"),
    ):
        out = _compiled(model, target="onnxruntime")(x)
    torch.testing.assert_close(out, model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("target", ["onnxruntime", "openvino"])
def test_an_earlier_result_is_not_overwritten_by_a_later_call(target):
    # the ORT route hands outputs back through DLPack, OpenVINO's request reuses its buffers:
    # each call must get buffers of its own
    model = _Mlp().eval()
    compiled = _compiled(model, target=target)
    first_input, second_input = torch.randn(4, 16), torch.randn(4, 16)
    with torch.no_grad():
        first = compiled(first_input)
        kept = first.clone()
        compiled(second_input)
    torch.testing.assert_close(first, kept, rtol=0, atol=0)
    torch.testing.assert_close(first, model(first_input), rtol=1e-5, atol=1e-5)


class _Swish(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up, self.down = torch.nn.Linear(16, 64), torch.nn.Linear(64, 8)

    def forward(self, x):
        h = self.up(x)
        return self.down(h * torch.sigmoid(h))


@pytest.mark.slow
def test_a_wrong_fx_rule_is_named_and_left_out(monkeypatch):
    from graphopt.core.rules import NodeRule
    from graphopt.passes.fx import activations

    def relu(graph, x):  # the real rule's match (x*sigmoid(x)), the wrong replacement
        return graph.call_function(torch.relu, (x,))

    wrong = NodeRule(
        "wrong_silu", "activations", "x*sigmoid(x) -> relu(x), wrong on purpose", activations._match_silu, relu
    )
    monkeypatch.setattr(activations, "RULES", [wrong])
    model = _Swish().eval()
    x = torch.randn(4, 16)
    with (
        torch.no_grad(),
        pytest.warns(UserWarning, match=r"FX rule\(s\) wrong_silu left out.*not equivalent: output output_0"),
    ):
        out = _compiled(model, target="inductor")(x)
    torch.testing.assert_close(out, model(x), rtol=1e-5, atol=1e-5)
    decision = graphopt_decisions()[-1]
    assert (
        decision.rules == {}
        and decision.sites_taken == []
        and [s.split("@")[0] for s in decision.sites_left] == ["wrong_silu"]
    )
    rejected = [e for e in decision.evaluations if e["rejected"]]
    assert rejected and rejected[0]["sites"][0]["rule"] == "wrong_silu"  # the engine's log says why


def graphopt_decisions():
    from graphopt.torch.backend import DECISIONS

    return DECISIONS


class _Encoder(torch.nn.Module):
    """Token ids to hidden states through one attention layer: a sequence axis that changes."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(50, 32)
        self.qkv, self.out = torch.nn.Linear(32, 96), torch.nn.Linear(32, 32)
        self.norm = torch.nn.LayerNorm(32)

    def forward(self, ids):
        x = self.embed(ids)
        batch, length, _ = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, 4, 8).permute(2, 0, 3, 1, 4)
        attention = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1) @ v
        return self.norm(x + self.out(attention.transpose(1, 2).reshape(batch, length, 32)))


@pytest.mark.slow
def test_new_sequence_lengths_need_no_recompiles_beyond_dynamos():
    from torch._dynamo.testing import CompileCounter

    model = _Encoder().eval()
    lengths = [8, 12, 16, 5]
    counter = CompileCounter()
    torch._dynamo.reset()
    with torch.no_grad():
        for n in lengths:
            torch.compile(model, backend=counter)(torch.randint(0, 50, (2, n)))
    before = len(graphopt_decisions())
    compiled = _compiled(model, target="onnxruntime")
    with torch.no_grad():
        for n in lengths:
            ids = torch.randint(0, 50, (2, n))
            torch.testing.assert_close(compiled(ids), model(ids), rtol=1e-4, atol=1e-5)
    decisions = graphopt_decisions()[before:]
    assert len(decisions) == counter.frame_count  # one static graph, then one dynamic graph for all others
    assert [d.target for d in decisions] == ["onnxruntime"] * counter.frame_count


@pytest.mark.slow
def test_a_graph_break_gives_graphs_decided_on_their_own():
    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.first, self.second = _Mlp(), torch.nn.Linear(8, 3)

        def forward(self, x):
            h = self.first(x)
            torch._dynamo.graph_break()
            return self.second(torch.relu(h))

    model = Broken().eval()
    x = torch.randn(4, 16)
    before = len(graphopt_decisions())
    with torch.no_grad():
        torch.testing.assert_close(_compiled(model)(x), model(x), rtol=1e-5, atol=1e-5)
    decisions = graphopt_decisions()[before:]
    assert len(decisions) == 2
    assert all("onnxruntime" in d.timings or "onnxruntime" in d.left_out for d in decisions)


def test_unknown_options_are_refused():
    from graphopt.torch.backend import graphopt_backend

    with pytest.raises(ValueError, match="unknown option"):
        graphopt_backend(torch.fx.symbolic_trace(_Mlp()), [torch.randn(2, 16)], options={"budjet": 3})


def test_explain_says_what_each_graph_got():
    import graphopt.torch

    model = _Mlp().eval()
    decisions = graphopt.torch.explain(model, torch.randn(4, 16), options={"budget": 20})  # room for every contender
    assert len(decisions) == 1
    decision = decisions[0]
    assert decision.nodes > 3 and decision.seconds > 0 and decision.reason
    assert decision.target in ("onnxruntime", "inductor")
    # under auto each ONNX route was measured against Inductor: its ratio with an interval
    for route in ("onnxruntime", "openvino"):
        ratio, (low, high) = decision.timings[route]
        assert low <= ratio <= high
    assert (decision.ratio is None) == (decision.contender == "inductor")


def test_a_budget_too_small_for_any_contender_keeps_inductor_and_names_what_it_did_not_try():
    """The budget bounds what the first call adds to Inductor's compile: a contender whose
    estimated cost does not fit is not started, and the decision says so."""
    import graphopt.torch
    from graphopt.torch.choice import auto_routes

    model = _Mlp().eval()
    x = torch.randn(4, 16)
    (decision,) = graphopt.torch.explain(model, x, options={"budget": 0.5, "cache_dir": None})
    assert (decision.target, decision.contender, decision.timings) == ("inductor", "inductor", {})
    assert set(decision.left_out) == {"inductor+freezing", *auto_routes([x])}
    assert all(why.startswith("not tried: it needs about") for why in decision.left_out.values())
    assert "no contender to judge" in decision.reason


@pytest.mark.parametrize("target", ["auto", "onnxruntime", "openvino"])
def test_a_cached_decision_is_replayed_without_timing(tmp_path, monkeypatch, target):
    from graphopt.torch import choice as torch_choice
    from graphopt.torch import onnx_route

    model = _Mlp().eval()
    x = torch.randn(4, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            _compiled(model, cache_dir=str(tmp_path), target=target)(x), model(x), rtol=1e-5, atol=1e-5
        )
    assert len(list(tmp_path.glob("*.json"))) == 1
    first = graphopt_decisions()[-1]
    monkeypatch.setattr(onnx_route, "decide", lambda *a, **k: pytest.fail("decided again despite the cache"))
    monkeypatch.setattr(torch_choice, "decide", lambda *a, **k: pytest.fail("decided again despite the cache"))
    monkeypatch.setattr(torch_choice, "interleaved", lambda *a, **k: pytest.fail("timed again despite the cache"))
    with torch.no_grad():
        torch.testing.assert_close(
            _compiled(model, cache_dir=str(tmp_path), target=target)(x), model(x), rtol=1e-5, atol=1e-5
        )
    replayed = graphopt_decisions()[-1]
    assert replayed.cached and (replayed.target, replayed.contender) == (first.target, first.contender)


@pytest.mark.parametrize("target", ["onnxruntime", "openvino", "auto"])
def test_a_swapped_weight_is_noticed(target):
    # module.weight = Parameter(...) keeps Dynamo's graph (weights are inputs) but not what was baked
    model = _Mlp().eval()
    x = torch.randn(4, 16)
    compiled = _compiled(model, target=target)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)
        model.down.weight = torch.nn.Parameter(torch.randn_like(model.down.weight))
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)


def test_the_openvino_route_runs_new_sizes_and_says_what_ran():
    # compiled for the first call's shapes (OpenVINO fuses more with static shapes); a second
    # batch size (a dynamic graph from Dynamo) runs too
    model = _Mlp().eval()
    compiled = _compiled(model, target="openvino")
    with torch.no_grad():
        for batch in (4, 7):
            x = torch.randn(batch, 16)
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)
    decision = graphopt_decisions()[-1]
    assert (decision.target, decision.contender) == ("openvino", "openvino")


DEFAULT_CACHE_SCRIPT = """
import torch, graphopt.torch
from tests.test_torch_backend import _Mlp
torch.manual_seed(0)
model = _Mlp().eval()
decision = graphopt.torch.explain(model, torch.randn(4, 16), options={"budget": 5, "target": "onnxruntime"})[0]
print("cached" if decision.cached else "decided", decision.timings)
"""


def test_a_second_process_replays_the_default_cache_without_timing(tmp_path):
    """No cache_dir given: decisions go to the user's cache folder (here GRAPHOPT_CACHE_DIR), so a
    second process times nothing; GRAPHOPT_CACHE_DIR=off keeps nothing."""
    import os
    import subprocess
    import sys

    def run(folder):
        environment = os.environ | {"GRAPHOPT_CACHE_DIR": str(folder)}
        command = [sys.executable, "-c", DEFAULT_CACHE_SCRIPT]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout.strip().splitlines()[-1]

    assert run(tmp_path / "decisions").startswith("decided")
    assert len(list((tmp_path / "decisions").glob("*.json"))) == 1
    assert run(tmp_path / "decisions") == "cached {}"
    assert run("off").startswith("decided") and not (tmp_path / "off").exists()


def test_a_cached_record_that_cannot_be_replayed_is_decided_again(tmp_path):
    model = _Mlp().eval()
    x = torch.randn(4, 16)
    with torch.no_grad():
        _compiled(model, cache_dir=str(tmp_path), target="onnxruntime")(x)
    (record,) = tmp_path.glob("*.json")
    record.write_text('{"target": "onnxruntime", "onnx": {"what": "a record from another version"}}')
    with torch.no_grad():
        out = _compiled(model, cache_dir=str(tmp_path), target="onnxruntime")(x)
    torch.testing.assert_close(out, model(x), rtol=1e-5, atol=1e-5)
    assert not graphopt_decisions()[-1].cached and "another version" not in record.read_text()


def test_with_no_time_to_search_the_route_takes_the_learned_top_prediction():
    """A small budget leaves no search: the ORT route then runs the learned policy's top
    prediction (the shipped ort-cpu weights), unmeasured, recorded for replay, and its outputs
    match eager within fp32 tolerance (the route's timing and eager check confirm it in a run)."""
    pytest.importorskip("lightgbm")
    transformers = pytest.importorskip("transformers")
    from graphopt.formats.fx.capture import dynamo_graph
    from graphopt.torch import onnx_route

    config = transformers.BertConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256, vocab_size=500
    )
    model = transformers.BertModel(config).eval()
    ids = torch.randint(0, 500, (1, 16))
    gm, inputs = dynamo_graph(lambda i: model(input_ids=i).last_hidden_state, ids)
    route = onnx_route.compile_graph(gm, list(inputs), 0.0, "learned")
    assert route.decision is None and route.record["rules"], route.record
    assert "top prediction" in route.record["reason"]
    with torch.no_grad():
        torch.testing.assert_close(route(*inputs)[0], gm(*inputs)[0], rtol=1e-4, atol=1e-5)
    as_is = onnx_route.compile_graph(gm, list(inputs), 0.0, "search")  # no prediction without the learned policy
    assert as_is.record["rules"] is None
