"""The FX format: one name per operation however it is spelled, where each symbolic size comes
from, inputs at a second size, fingerprints that follow what the graph computes."""

from __future__ import annotations

import operator

import pytest

torch = pytest.importorskip("torch")

from graphopt.formats.fx import fingerprint, kind, symbol_sources  # noqa: E402
from graphopt.formats.fx.capture import dynamo_graphs as _graphs  # noqa: E402
from graphopt.formats.fx.graphs import symbolic_dims  # noqa: E402
from graphopt.formats.fx.resize import second_size  # noqa: E402


def test_one_name_however_it_is_spelled():
    x = torch.randn(3, 4)
    gm, _ = _graphs(lambda a: [a * 2, torch.mul(a, 2), a.mul(2), a / 2, torch.div(a, 2)], (x,))[0]
    names = [kind(n) for n in gm.graph.nodes if n.op in ("call_function", "call_method")]
    assert names == ["mul", "mul", "mul", "div", "div"]
    assert kind(operator) is None and kind(3.0) is None


def test_symbolic_sizes_are_found_on_the_tensors_and_a_second_size_is_made():
    def encoder(ids, mask):
        return (ids * mask).sum(-1) + ids.shape[1]

    ids, mask = torch.randint(0, 9, (2, 8)), torch.ones(2, 8, dtype=torch.int64)
    gm, example = _graphs(encoder, (ids, mask), dynamic=True)[0]
    args = [
        ids if i == _position(gm, "ids") else mask if i == _position(gm, "mask") else None for i in range(len(example))
    ]
    sources = symbol_sources(gm)
    assert sorted(sources) == [
        i for i, a in enumerate(example) if isinstance(a, torch.SymInt)
    ]  # every SymInt input found
    for sym, (tensor, dim) in sources.items():
        args[sym] = args[tensor].shape[dim]
    assert sorted(args[sym] for sym in sources) == [2, 8]  # batch and sequence
    resized = second_size(gm, args)
    assert resized is not None
    for position, dims in symbolic_dims(gm).items():
        for dim in dims:
            assert resized[position].shape[dim] != args[position].shape[dim]
    for sym, (tensor, dim) in sources.items():
        assert resized[sym] == resized[tensor].shape[dim]  # SymInt inputs follow the tensors
    torch.testing.assert_close(gm(*resized)[0], encoder(resized[_position(gm, "ids")], resized[_position(gm, "mask")]))


def _position(gm, name):
    placeholders = [n.name for n in gm.graph.nodes if n.op == "placeholder"]
    return next(i for i, p in enumerate(placeholders) if name in p)


def test_static_graphs_have_no_second_size():
    gm, example = _graphs(lambda a: a + 1, (torch.randn(2, 3),))[0]
    assert second_size(gm, example) is None


def test_fingerprint_follows_the_computation_and_the_input_types():
    x = torch.randn(2, 3)
    first = fingerprint(_graphs(lambda a: a + 1, (x,))[0][0])
    assert first == fingerprint(_graphs(lambda a: a + 1, (x,))[0][0])
    assert first != fingerprint(_graphs(lambda a: a - 1, (x,))[0][0])
    assert first != fingerprint(_graphs(lambda a: a + 1, (x.double(),))[0][0])
