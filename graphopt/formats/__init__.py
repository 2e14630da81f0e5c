"""One adapter per graph format, each on the format's own well-kept IR (ONNX: onnx_ir)."""
