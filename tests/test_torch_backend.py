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
        assert "graphopt.torch_backend" in sys.modules
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
    torch.manual_seed(0)
    model, reference = _Mlp(), _Mlp()
    reference.load_state_dict(model.state_dict())
    x = torch.randn(4, 16)
    _compiled(model)(x).square().sum().backward()
    reference(x).square().sum().backward()
    for mine, theirs in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_route_that_gives_wrong_outputs_falls_back_to_inductor_with_a_warning(monkeypatch):
    from graphopt.targets.onnxruntime import torch_route

    real = torch_route.compile_graph

    def wrong(*args):
        route = real(*args)
        right = route.__call__
        monkeypatch.setattr(type(route), "__call__", lambda self, *a: tuple(t + 1.0 for t in right(*a)))
        return route

    monkeypatch.setattr(torch_route, "compile_graph", wrong)
    model = _Mlp().eval()
    x = torch.randn(4, 16)
    with torch.no_grad(), pytest.warns(UserWarning, match="falling back to Inductor.*output_0"):
        out = _compiled(model)(x)
    torch.testing.assert_close(out, model(x), rtol=1e-5, atol=1e-5)


def test_unknown_options_are_refused():
    from graphopt.torch_backend import graphopt_backend

    with pytest.raises(ValueError, match="unknown option"):
        graphopt_backend(torch.fx.symbolic_trace(_Mlp()), [torch.randn(2, 16)], options={"budjet": 3})


def test_explain_says_what_each_graph_got():
    import graphopt.torch

    model = _Mlp().eval()
    decisions = graphopt.torch.explain(model, torch.randn(4, 16), options={"budget": 5})
    assert len(decisions) == 1
    decision = decisions[0]
    assert decision.target == "onnxruntime" and decision.nodes > 3 and decision.seconds > 0
    assert decision.reason  # the kept candidate and its ratio, or why the exported graph stayed
    assert (decision.ratio is None) == (decision.ci95 is None)


def test_a_cached_decision_is_replayed_without_timing(tmp_path, monkeypatch):
    from graphopt.targets.onnxruntime import torch_route

    model = _Mlp().eval()
    x = torch.randn(4, 16)
    with torch.no_grad():
        torch.testing.assert_close(_compiled(model, cache_dir=str(tmp_path))(x), model(x), rtol=1e-5, atol=1e-5)
    assert len(list(tmp_path.glob("*.json"))) == 1
    monkeypatch.setattr(torch_route, "decide", lambda *a, **k: pytest.fail("timed again despite the cache"))
    with torch.no_grad():
        torch.testing.assert_close(_compiled(model, cache_dir=str(tmp_path))(x), model(x), rtol=1e-5, atol=1e-5)
