"""An OpenVINO compilation called with torch tensors (the torch backend's OpenVINO route).

OpenVINO takes and gives numpy arrays on the CPU; a CPU tensor's array shares its memory, so
inputs cross without a copy and outputs come back as tensors over OpenVINO's output arrays
(copied once out of the infer request, which reuses its buffers on the next run). Only CPU
tensors are taken: the backend offers this route only for graphs whose inputs lie on the CPU.
"""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass
class OpenVinoTorchBinding:
    """Call it with the GraphModule's inputs; the tensors at ``runtime`` feed ``input_names``."""

    compiled: object  # OpenVinoCompiled
    input_names: list[str]
    runtime: list[int]  # positions of the GraphModule's inputs that the model takes

    def __call__(self, *args):
        feeds = {name: args[i].detach().contiguous().numpy() for name, i in zip(self.input_names, self.runtime)}
        return tuple(torch.from_numpy(value) for value in self.compiled.run(feeds))


def bind(compiled, input_names: list[str], runtime: list[int]) -> OpenVinoTorchBinding:
    return OpenVinoTorchBinding(compiled, list(input_names), list(runtime))
