"""A YOLOv8-style detector in plain torch: the block structure of ultralytics' YOLOv8n at a small
width, for the corpus's detection entry (ultralytics itself is not a dependency).

Backbone and neck of Conv-BN-SiLU blocks, C2f blocks (``chunk`` into two halves, a chain of
bottlenecks, ``cat`` of every stage), SPPF (three chained 5x5 max-pools, concatenated),
nearest-neighbour upsampling and concatenation across scales, and a decoupled head whose box
branch is a distribution over 16 bins per side read out by a softmax and a fixed 1x1 projection
(DFL), as ultralytics exports it. Weights are random; the graph is what matters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int = 3, s: int = 1):
        super().__init__(nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False), nn.BatchNorm2d(c_out), nn.SiLU())


class Bottleneck(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.cv1, self.cv2 = ConvBlock(c, c), ConvBlock(c, c)

    def forward(self, x):
        return x + self.cv2(self.cv1(x))


class C2f(nn.Module):
    def __init__(self, c_in: int, c_out: int, n: int = 1):
        super().__init__()
        self.hidden = c_out // 2
        self.cv1, self.cv2 = ConvBlock(c_in, 2 * self.hidden, 1), ConvBlock((2 + n) * self.hidden, c_out, 1)
        self.blocks = nn.ModuleList(Bottleneck(self.hidden) for _ in range(n))

    def forward(self, x):
        parts = list(self.cv1(x).chunk(2, 1))
        for block in self.blocks:
            parts.append(block(parts[-1]))
        return self.cv2(torch.cat(parts, 1))


class SPPF(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.cv1, self.cv2 = ConvBlock(c, c // 2, 1), ConvBlock(c * 2, c, 1)

    def forward(self, x):
        x = self.cv1(x)
        y1 = F.max_pool2d(x, 5, 1, 2)
        y2 = F.max_pool2d(y1, 5, 1, 2)
        return self.cv2(torch.cat([x, y1, y2, F.max_pool2d(y2, 5, 1, 2)], 1))


class DetectHead(nn.Module):
    def __init__(self, channels: tuple[int, ...], classes: int, bins: int = 16):
        super().__init__()
        self.bins = bins
        self.box = nn.ModuleList(
            nn.Sequential(ConvBlock(c, 32), ConvBlock(32, 32), nn.Conv2d(32, 4 * bins, 1)) for c in channels
        )
        self.cls = nn.ModuleList(
            nn.Sequential(ConvBlock(c, 32), ConvBlock(32, 32), nn.Conv2d(32, classes, 1)) for c in channels
        )
        self.register_buffer("project", torch.arange(bins, dtype=torch.float32).view(1, bins, 1, 1))

    def forward(self, features):
        boxes = torch.cat([b(f).flatten(2) for b, f in zip(self.box, features)], 2)  # [N, 4*bins, anchors]
        scores = torch.cat([c(f).flatten(2) for c, f in zip(self.cls, features)], 2)
        n, _, anchors = boxes.shape
        dist = boxes.view(n, 4, self.bins, anchors).transpose(2, 1).softmax(1)  # DFL: expected bin per side
        sides = F.conv2d(dist, self.project.view(1, self.bins, 1, 1)).view(n, 4, anchors)
        return torch.cat([sides, scores.sigmoid()], 1)


class YoloStyle(nn.Module):
    def __init__(self, width: int = 16, classes: int = 8):
        super().__init__()
        w = width
        self.stem = nn.Sequential(ConvBlock(3, w, 3, 2), ConvBlock(w, 2 * w, 3, 2), C2f(2 * w, 2 * w))
        self.p3 = nn.Sequential(ConvBlock(2 * w, 4 * w, 3, 2), C2f(4 * w, 4 * w))
        self.p4 = nn.Sequential(ConvBlock(4 * w, 8 * w, 3, 2), C2f(8 * w, 8 * w), SPPF(8 * w))
        self.up = C2f(12 * w, 4 * w)
        self.down_conv, self.down = ConvBlock(4 * w, 4 * w, 3, 2), C2f(12 * w, 8 * w)
        self.head = DetectHead((4 * w, 8 * w), classes)

    def forward(self, images):
        p3 = self.p3(self.stem(images))
        p4 = self.p4(p3)
        n3 = self.up(torch.cat([F.interpolate(p4, scale_factor=2.0, mode="nearest"), p3], 1))
        n4 = self.down(torch.cat([self.down_conv(n3), p4], 1))
        return self.head([n3, n4])


def yolo_style(width: int = 16, classes: int = 8) -> YoloStyle:
    return YoloStyle(width, classes)
