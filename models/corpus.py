"""The third-party corpus: ONNX files of the kinds people ship that are not torch-exported
transformers, reproducible from registry packages (issue 15).

The sources, each building a file and the inputs it is judged on:

- vision architectures from transformers' model classes (random weights, small configs), the
  families timm and model hubs ship: ConvNeXt, Swin, MobileViT, EfficientNet, RegNet, LeViT,
  SegFormer (a segmentation head), MobileNetV1; exported by torch's legacy exporter (the form
  most published CNN files have) at batch 1;
- a MobileNetV3-style network with hard-swish and hard-sigmoid written out (``x * relu6(x + 3) / 6``),
  the form Keras/tf2onnx and Paddle exports and much hand-written model code have; a
  YOLOv8-style detector (models/detector.py: split/concat blocks, max-pools, nearest
  upsampling, a DFL box head); a CRNN text recognizer (models/ocr.py: convolutions, a
  bidirectional LSTM, a CTC class head: the OCR recognizers PaddleOCR and EasyOCR ship);
- classical models converted by skl2onnx: a scaler + PCA + logistic-regression pipeline, a
  random forest, gradient boosting, an MLP (ai.onnx.ml operators and plain MatMul chains);
- int8 variants made with ``onnxruntime.quantization`` from the corpus's CNNs (static, QDQ
  format, calibrated on random images) and its MLP-like graphs (dynamic): what CPU deployment
  ships, and where ORT's quantized fusions need particular arrangements.

- Keras 3 models on the TensorFlow backend exported with Keras's own ``model.export(format="onnx")``
  (tf2onnx underneath): keras.applications' MobileNetV3Small, MobileNetV2 and EfficientNetV2B0,
  and a small text encoder of Keras layers (MultiHeadAttention, LayerNormalization, tanh-GELU
  Dense): NHWC graphs with a Transpose at the entry, hard-swish written out, a dynamic batch
  dimension and Keras's own way of writing attention and LayerNorm.

- PaddlePaddle models exported by paddle2onnx (PaddleOCR's kind of file): an SVTR-style text
  recognizer (PaddleOCR's attention: one qkv Linear, ``reshape``/``transpose`` into heads,
  ``paddle.scale`` on q, opset 11) and paddle.vision's MobileNetV3-Small (opset 14). Optional:
  paddle2onnx pins onnx <= 1.17, older than the onnx graphopt needs, so it is not in the
  ``corpus`` extra; with ``pip install paddlepaddle && pip install --no-deps paddle2onnx`` the
  entries build (without it they are skipped with a note).

timm itself needs torchvision, which has no CPU build here; transformers' classes cover the
same architectures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

IMAGE = 64  # side of the images the vision entries take (small enough for a 2-core machine)


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    source: str  # "transformers-vision", "skl2onnx", "quantized"
    description: str
    build: Callable[[Path], tuple[Path, dict[str, np.ndarray]]]  # folder -> (model file, inputs)


def _vision(config_name: str, model_name: str, **config):
    def build(folder: Path):
        import torch
        import transformers

        from graphopt.models.architectures import randomized
        from graphopt.models.export import export

        torch.manual_seed(0)
        model = getattr(transformers, model_name)(getattr(transformers, config_name)(**config)).eval()
        model = randomized(model, 0)
        pixels = torch.randn(1, config.get("num_channels", 3), IMAGE, IMAGE)
        path = folder / f"{model_name.lower()}.onnx"
        export(model, {"pixel_values": pixels}, {"pixel_values": {0: "batch"}}, path, exporter="legacy", dynamic=False)
        return path, {"pixel_values": pixels.numpy()}

    return build


def _mobilenetv3_written(folder: Path):
    """A MobileNetV3-style network as much model code writes it: hard-swish and the squeeze-
    excitation's hard-sigmoid written out (``x * relu6(x + 3) / 6``), exported by torch's legacy
    exporter at opset 17 (the written-out form Keras and Paddle exports have too)."""
    return _torch_legacy(folder, _MobileNetV3Written, "mobilenetv3-written", "pixel_values")


def _detector(folder: Path):
    """A detection network shaped like YOLOv8n (models/detector.py), random weights, exported by
    torch's legacy exporter at opset 17, batch 1 (how detector files are usually exported)."""
    from graphopt.models.detector import yolo_style

    return _torch_legacy(folder, yolo_style, "detector", "images")


def _ocr(folder: Path):
    """A CRNN text recognizer (models/ocr.py: convolutions, a bidirectional LSTM, a class head),
    random weights, exported by torch's legacy exporter at opset 17 on one 32 x 128 text line."""
    from graphopt.models.ocr import crnn

    return _torch_legacy(folder, crnn, "ocr-crnn", "images", size=(32, 128))


def _torch_legacy(folder: Path, make, stem: str, input_name: str, size: tuple[int, int] = (IMAGE, IMAGE)):
    """``make()``'s module with random weights, exported by torch's legacy exporter on one batch-1
    image of ``size`` (height, width): (file, inputs)."""
    import torch

    from graphopt.models.architectures import randomized
    from graphopt.models.export import export

    torch.manual_seed(0)
    model = randomized(make(), 0).eval()
    images = torch.randn(1, 3, *size)
    path = folder / f"{stem}.onnx"
    export(model, {input_name: images}, {input_name: {0: "batch"}}, path, exporter="legacy", dynamic=False)
    return path, {input_name: images.numpy()}


def _hard_swish(x):
    import torch.nn.functional as F

    return x * F.relu6(x + 3) / 6


def _hard_sigmoid(x):
    import torch.nn.functional as F

    return F.relu6(x + 3) / 6


def _MobileNetV3Written():
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, c_in, c_mid, c_out, stride):
            super().__init__()
            self.expand = nn.Sequential(nn.Conv2d(c_in, c_mid, 1, bias=False), nn.BatchNorm2d(c_mid))
            self.depthwise = nn.Sequential(
                nn.Conv2d(c_mid, c_mid, 3, stride, 1, groups=c_mid, bias=False), nn.BatchNorm2d(c_mid)
            )
            self.squeeze = nn.Sequential(nn.Conv2d(c_mid, c_mid // 4, 1), nn.ReLU(), nn.Conv2d(c_mid // 4, c_mid, 1))
            self.project = nn.Sequential(nn.Conv2d(c_mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
            self.residual = stride == 1 and c_in == c_out

        def forward(self, x):
            h = _hard_swish(self.depthwise(_hard_swish(self.expand(x))))
            h = h * _hard_sigmoid(self.squeeze(h.mean((2, 3), keepdim=True)))
            h = self.project(h)
            return x + h if self.residual else h

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16))
            self.blocks = nn.Sequential(
                Block(16, 64, 24, 2), Block(24, 72, 24, 1), Block(24, 96, 40, 2), Block(40, 120, 40, 1)
            )

        def forward(self, pixel_values):
            return self.blocks(_hard_swish(self.stem(pixel_values))).mean((2, 3))

    return Net()


def _keras(kind: str):
    def build(folder: Path):
        keras = _keras_on_tensorflow()
        keras.utils.set_random_seed(0)
        model, example = _KERAS_MODELS[kind](keras)
        model(example)  # Keras exports only models that have been called
        path = folder / f"keras-{kind}.onnx"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            model.export(str(path), format="onnx", verbose=False)
        import onnx

        (name,) = [i.name for i in onnx.load(str(path), load_external_data=False).graph.input]
        return path, {name: example}

    return build


def _keras_on_tensorflow():
    """Keras 3 with the TensorFlow backend (its ONNX export goes through tf2onnx); the backend is
    chosen once per process, at import."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"Keras was imported with the {keras.backend.backend()} backend; the Keras corpus entries need tensorflow"
        )
    return keras


def _keras_encoder(keras, layers: int = 2, width: int = 128):
    """A text encoder of Keras layers: embedding, MultiHeadAttention, post-LN, tanh-GELU MLP."""
    ids = keras.Input((16,), dtype="int32", name="ids")
    x = keras.layers.Embedding(1000, width)(ids)
    for _ in range(layers):
        x = keras.layers.LayerNormalization(epsilon=1e-6)(
            x + keras.layers.MultiHeadAttention(num_heads=4, key_dim=width // 4)(x, x)
        )
        hidden = keras.layers.Dense(4 * width, activation=lambda t: keras.activations.gelu(t, approximate=True))(x)
        x = keras.layers.LayerNormalization(epsilon=1e-6)(x + keras.layers.Dense(width)(hidden))
    logits = keras.layers.Dense(8)(keras.layers.GlobalAveragePooling1D()(x))
    example = np.random.default_rng(0).integers(0, 1000, (1, 16)).astype(np.int32)
    return keras.Model(ids, logits), example


def _keras_application(name: str, **kwargs):
    def make(keras):
        model = getattr(keras.applications, name)(input_shape=(IMAGE, IMAGE, 3), weights=None, classes=10, **kwargs)
        return model, np.random.default_rng(0).standard_normal((1, IMAGE, IMAGE, 3)).astype(np.float32)

    return make


_KERAS_MODELS = {
    "mobilenetv3": _keras_application("MobileNetV3Small"),
    "mobilenetv2": _keras_application("MobileNetV2", alpha=0.35),
    "efficientnetv2": _keras_application("EfficientNetV2B0", include_preprocessing=False),
    "encoder": _keras_encoder,
}


def paddle_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("paddle", "paddle2onnx"))


def _paddle(kind: str):
    def build(folder: Path):
        import paddle

        paddle.seed(0)
        model, spec, example, opset = _PADDLE_MODELS[kind](paddle)
        model.eval()
        for parameter in model.parameters():  # LayerNorm/BN start at 1 and 0: move every weight off its init
            parameter.set_value(parameter + 0.05 * paddle.randn(parameter.shape, dtype=parameter.dtype))
        stem = folder / f"paddle-{kind}"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            paddle.onnx.export(model, str(stem), input_spec=[spec], opset_version=opset)
        return stem.with_suffix(".onnx"), {spec.name: example}

    return build


def _paddle_svtr(paddle):
    """SVTR-style mixing blocks as PaddleOCR writes them (ppocr/modeling/backbones/rec_svtrnet.py)."""
    from graphopt.models.paddle_svtr import svtr_encoder

    model = svtr_encoder(paddle, dim=96, heads=4, depth=2, classes=40)
    spec = paddle.static.InputSpec([None, 40, 96], "float32", "x")
    return model, spec, np.random.default_rng(0).standard_normal((1, 40, 96)).astype(np.float32), 11


def _paddle_mobilenetv3(paddle):
    model = paddle.vision.models.mobilenet_v3_small(num_classes=10)
    spec = paddle.static.InputSpec([None, 3, IMAGE, IMAGE], "float32", "x")
    return model, spec, np.random.default_rng(0).standard_normal((1, 3, IMAGE, IMAGE)).astype(np.float32), 14


_PADDLE_MODELS = {"svtr": _paddle_svtr, "mobilenetv3": _paddle_mobilenetv3}


def _sklearn(kind: str):
    def build(folder: Path):
        from skl2onnx import to_onnx

        features, labels = _tabular()
        model = _sklearn_model(kind).fit(features, labels)
        onnx_model = to_onnx(
            model, features[:1], target_opset={"": 17, "ai.onnx.ml": 3}, options={"zipmap": False}
        )  # probabilities as a tensor
        path = folder / f"sklearn-{kind}.onnx"
        path.write_bytes(onnx_model.SerializeToString())
        return path, {onnx_model.graph.input[0].name: features[:64]}

    return build


def _tabular(rows: int = 512, columns: int = 32):
    rng = np.random.default_rng(0)
    features = rng.standard_normal((rows, columns)).astype(np.float32)
    labels = (features[:, :4].sum(axis=1) > 0).astype(np.int64) + (features[:, 4] > 1).astype(np.int64)
    return features, labels


def _sklearn_model(kind: str):
    from sklearn.decomposition import PCA
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "pipeline": lambda: make_pipeline(StandardScaler(), PCA(16), LogisticRegression(max_iter=500)),
        "forest": lambda: RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0),
        "boosting": lambda: GradientBoostingClassifier(n_estimators=50, max_depth=3, random_state=0),
        "mlp": lambda: MLPClassifier((128, 128), max_iter=50, random_state=0),
    }[kind]()


def _quantized(base: str, mode: str):
    def build(folder: Path):
        source, feeds = ENTRIES[base].build(folder)
        path = folder / f"{source.stem}-int8-{mode}.onnx"
        with contextlib.redirect_stdout(io.StringIO()):  # its pre-processing prints shape-inference details
            _quantize(source, path, feeds, mode)
        return path, feeds

    return build


def _quantize(source: Path, path: Path, feeds: dict, mode: str) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if mode == "dynamic":
        quantize_dynamic(str(source), str(path), weight_type=QuantType.QInt8)
    else:
        quantize_static(
            str(source),
            str(path),
            _Calibration(feeds),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )


class _Calibration:
    """onnxruntime.quantization's CalibrationDataReader over random inputs shaped like ``feeds``."""

    def __init__(self, feeds: dict[str, np.ndarray], batches: int = 8):
        rng = np.random.default_rng(1)
        self._batches = iter(
            [{k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in feeds.items()} for _ in range(batches)]
        )

    def get_next(self):
        return next(self._batches, None)


_VISION = [
    Entry(
        "convnext",
        "transformers-vision",
        "ConvNeXt (depthwise 7x7, LayerNorm over channels, GELU)",
        _vision(
            "ConvNextConfig", "ConvNextModel", depths=[1, 1, 2, 1], hidden_sizes=[24, 48, 96, 192], image_size=IMAGE
        ),
    ),
    Entry(
        "swin",
        "transformers-vision",
        "Swin (windowed attention, patch merging)",
        _vision(
            "SwinConfig",
            "SwinModel",
            image_size=IMAGE,
            patch_size=2,
            embed_dim=24,
            depths=[1, 1, 2, 1],
            num_heads=[1, 2, 3, 6],
            window_size=4,
        ),
    ),
    Entry(
        "mobilevit",
        "transformers-vision",
        "MobileViT (inverted residuals, SiLU, transformer blocks over unfolded patches)",
        _vision(
            "MobileViTConfig",
            "MobileViTModel",
            image_size=IMAGE,
            hidden_sizes=[48, 64, 80],
            neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320],
        ),
    ),
    Entry(
        "efficientnet",
        "transformers-vision",
        "EfficientNet (MBConv, squeeze-excitation, SiLU)",
        _vision(
            "EfficientNetConfig",
            "EfficientNetModel",
            image_size=IMAGE,
            width_coefficient=0.5,
            depth_coefficient=0.5,
            hidden_dim=640,
        ),
    ),
    Entry(
        "regnet",
        "transformers-vision",
        "RegNet (grouped convolutions, ReLU)",
        _vision(
            "RegNetConfig",
            "RegNetModel",
            embedding_size=16,
            hidden_sizes=[24, 56, 152, 368],
            depths=[1, 1, 2, 2],
            groups_width=8,
        ),
    ),
    Entry(
        "levit",
        "transformers-vision",
        "LeViT (conv stem, attention with Hardswish)",
        _vision(
            "LevitConfig",
            "LevitModel",
            image_size=IMAGE,
            hidden_sizes=[64, 96, 128],
            num_attention_heads=[2, 3, 4],
            depths=[1, 1, 1],
            key_dim=[16, 16, 16],
            down_ops=[["Subsample", 16, 64 // 16, 4, 2, 2], ["Subsample", 16, 96 // 16, 4, 2, 2]],
        ),
    ),
    Entry(
        "segformer",
        "transformers-vision",
        "SegFormer (efficient attention, Mix-FFN, a segmentation head)",
        _vision(
            "SegformerConfig",
            "SegformerForSemanticSegmentation",
            hidden_sizes=[16, 32, 64, 128],
            decoder_hidden_size=64,
            num_labels=8,
        ),
    ),
    Entry(
        "mobilenetv1",
        "transformers-vision",
        "MobileNetV1 (depthwise separable, ReLU6)",
        _vision("MobileNetV1Config", "MobileNetV1Model", image_size=IMAGE, depth_multiplier=0.5),
    ),
]
_VISION.append(
    Entry(
        "mobilenetv3-written",
        "torch-legacy",
        "MobileNetV3-style, hard-swish/hard-sigmoid written out (as Keras, Paddle and much model code)",
        _mobilenetv3_written,
    )
)
_VISION.append(
    Entry(
        "detector",
        "torch-legacy",
        "a YOLOv8-style detector (Conv-BN-SiLU, C2f split, SPPF max-pools, nearest upsample, DFL box head)",
        _detector,
    )
)
_VISION.append(
    Entry(
        "ocr-crnn",
        "torch-legacy",
        "a CRNN text recognizer (VGG-style convolutions, two bidirectional LSTM layers, a CTC class head)",
        _ocr,
    )
)
_SKLEARN = [
    Entry(f"sklearn-{k}", "skl2onnx", f"scikit-learn {k} converted by skl2onnx", _sklearn(k))
    for k in ("pipeline", "forest", "boosting", "mlp")
]
_KERAS = [
    Entry(f"keras-{k}", "keras-tf2onnx", f"Keras 3 {k} (TensorFlow backend, model.export to ONNX)", _keras(k))
    for k in _KERAS_MODELS
]
_PADDLE = [
    Entry(f"paddle-{k}", "paddle2onnx", f"PaddlePaddle {k} exported by paddle2onnx", _paddle(k)) for k in _PADDLE_MODELS
]
ENTRIES = {e.name: e for e in _VISION + _SKLEARN + _KERAS + _PADDLE}
ENTRIES.update(
    {
        f"{base}-int8-static": Entry(
            f"{base}-int8-static",
            "quantized",
            f"{base}, int8 QDQ (onnxruntime.quantization, static)",
            _quantized(base, "static"),
        )
        for base in ("convnext", "efficientnet", "regnet", "mobilenetv1")
    }
)
ENTRIES.update(
    {
        f"{base}-int8-dynamic": Entry(
            f"{base}-int8-dynamic",
            "quantized",
            f"{base}, int8 weights (onnxruntime.quantization, dynamic)",
            _quantized(base, "dynamic"),
        )
        for base in ("sklearn-mlp", "swin")
    }
)


def build(name: str, folder) -> tuple[Path, dict[str, np.ndarray]]:
    """Build corpus entry ``name`` into ``folder``: (model file, inputs)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return ENTRIES[name].build(folder)


def build_in_subprocess(name: str, folder) -> Path:
    """Build entry ``name`` into ``folder`` in a fresh Python process, its inputs saved beside the
    file as ``<file>.inputs.npz``; returns the file. TensorFlow and Paddle cannot share a
    process (importing paddle after tensorflow kills it), and each leaves threads and state
    behind that the bench's timing should not share."""
    import subprocess
    import sys

    folder = Path(folder)
    done = subprocess.run(
        [sys.executable, "-m", "graphopt.models.corpus", name, str(folder)], capture_output=True, text=True
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise RuntimeError(f"building corpus entry {name} failed: {last}")
    return folder / done.stdout.strip().splitlines()[-1]


def _main(argv: list[str]) -> None:
    name, folder = argv
    path, feeds = build(name, folder)
    np.savez(Path(folder) / f"{path.name}.inputs.npz", **feeds)
    print(path.name)


if __name__ == "__main__":
    import sys

    _main(sys.argv[1:])
