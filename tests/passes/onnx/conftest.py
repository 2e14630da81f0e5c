"""Exports of the zoo's tiny models, made once per test session, for rule families whose patterns
are what a real exporter writes (attention, normalization): a hand-written graph would only test
that the rule matches what its author thought the exporter writes."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    pytest.importorskip("transformers", reason="the zoo needs the [zoo] extra")
    from graphopt.models.zoo import build

    cache = {}

    def export(name: str, exporter: str = "dynamo"):
        key = (name, exporter)
        if key not in cache:
            path, inputs = build(name, tmp_path_factory.mktemp(name), size="tiny", exporter=exporter, dynamic=True)
            with np.load(inputs) as data:
                cache[key] = (path, {k: data[k] for k in data.files})
        return cache[key]

    return export
