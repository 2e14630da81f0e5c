"""A CRNN text recognizer in plain torch: the shape of the OCR recognizers people deploy
(PaddleOCR's and EasyOCR's CRNN heads, the classic Shi et al. design), for the corpus's OCR
entry.

A VGG-style convolution stack (Conv-BN-ReLU, max-pools that halve the height faster than the
width) turns a text-line image into a sequence along its width; two bidirectional LSTM layers
read it, and a Linear layer gives per-step class scores, which a CTC decoder reads (outside the
graph). Exported to ONNX it holds Conv, MaxPool, Squeeze/Transpose to a sequence, the LSTM op and
a MatMul head. Weights are random; the graph is what matters.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class Crnn(nn.Module):
    """Text-line image (N, 3, 32, W) -> class scores (W / 4, N, classes)."""

    def __init__(self, width: int = 32, hidden: int = 64, classes: int = 40):
        super().__init__()
        self.features = nn.Sequential(
            _conv(3, width),
            nn.MaxPool2d(2, 2),  # 16 x W/2
            _conv(width, 2 * width),
            nn.MaxPool2d(2, 2),  # 8 x W/4
            _conv(2 * width, 4 * width),
            _conv(4 * width, 4 * width),
            nn.MaxPool2d((2, 1), (2, 1)),  # 4 x W/4
            _conv(4 * width, 4 * width),
            nn.MaxPool2d((4, 1), (4, 1)),  # 1 x W/4
        )
        self.sequence = nn.LSTM(4 * width, hidden, num_layers=2, bidirectional=True)
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        columns = self.features(images).squeeze(2).permute(2, 0, 1)  # (W/4, N, C)
        steps, _ = self.sequence(columns)
        return self.head(steps)


def crnn(width: int = 32, hidden: int = 64, classes: int = 40) -> Crnn:
    return Crnn(width, hidden, classes)
