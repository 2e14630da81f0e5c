"""An ORT session called with torch tensors: inputs bound where the tensors lie, outputs handed
back as torch tensors through DLPack, nothing copied through numpy (the ORT route of the torch
backend). On CUDA tensors the outputs are bound on the CUDA device (untested: no GPU here)."""

from __future__ import annotations

import dataclasses
import functools
import threading

import numpy as np
import torch


@dataclasses.dataclass
class TorchBinding:
    """Call it with the GraphModule's inputs; the tensors at ``runtime`` feed ``input_names``."""

    session: object  # onnxruntime.InferenceSession
    input_names: list[str]
    runtime: list[int]  # positions of the GraphModule's inputs that the session takes
    device: str = "cpu"  # where outputs are bound
    output_names: list[str] = dataclasses.field(default_factory=list)

    def __call__(self, *args):
        binding = self._binding()
        held = []  # the contiguous tensors must outlive the run
        for name, i in zip(self.input_names, self.runtime):
            tensor = args[i].detach().contiguous()
            held.append(tensor)
            binding.bind_input(
                name,
                tensor.device.type,
                tensor.device.index or 0,
                numpy_dtype(tensor.dtype),
                tuple(tensor.shape),
                tensor.data_ptr(),
            )
        # Outputs are bound afresh each call: a binding kept from the last call would make ORT
        # write into the buffers of the tensors it handed back then.
        binding.clear_binding_outputs()
        for name in self.output_names:
            binding.bind_output(name, self.device)
        self.session.run_with_iobinding(binding)
        return tuple(torch.from_dlpack(value._get_c_value().to_dlpack()) for value in binding.get_outputs())

    def _binding(self):
        """One I/O binding per thread (a binding is not safe to share between concurrent calls)."""
        local = self.__dict__.setdefault("_local", threading.local())
        if not hasattr(local, "binding"):
            local.binding = self.session.io_binding()
        return local.binding


@functools.cache
def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The element type to bind (bfloat16 has no numpy type: torch raises, the caller falls back)."""
    return torch.empty((), dtype=dtype).numpy().dtype


def bind(compiled, input_names: list[str], runtime: list[int], device: str) -> TorchBinding:
    """``compiled`` (a CompiledGraph) as a callable taking the GraphModule's inputs."""
    session = compiled.session
    return TorchBinding(session, input_names, runtime, device, [o.name for o in session.get_outputs()])
