"""An SVTR-style text-recognition encoder in PaddlePaddle, written as PaddleOCR writes it.

PaddleOCR's recognizers (ppocr/modeling/backbones/rec_svtrnet.py) mix the feature sequence with
attention blocks whose attention is one qkv Linear reshaped into heads with ``reshape((0, -1, 3,
heads, head_dim))`` and ``transpose((2, 0, 3, 1, 4))``, q scaled by ``paddle.scale`` (exported
as a Mul and an Add of 0), LayerNorm before each half (pre-LN) and an exact-GELU MLP. paddle2onnx
writes this with an Identity after most ops and Softmax's axis as a positive index: the forms the
corpus entry ``paddle-svtr`` exists to exercise. paddle is imported by the caller (an optional
dependency) and passed in.
"""

from __future__ import annotations


def svtr_encoder(paddle, dim: int = 96, heads: int = 4, depth: int = 2, classes: int = 40):
    nn = paddle.nn

    class Attention(nn.Layer):
        def __init__(self):
            super().__init__()
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            qkv = self.qkv(x).reshape((0, -1, 3, heads, dim // heads)).transpose((2, 0, 3, 1, 4))
            q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
            attention = nn.functional.softmax(q.matmul(k.transpose((0, 1, 3, 2))), axis=-1)
            return self.proj(attention.matmul(v).transpose((0, 2, 1, 3)).reshape((0, -1, dim)))

    class Block(nn.Layer):
        def __init__(self):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(dim, epsilon=1e-6), nn.LayerNorm(dim, epsilon=1e-6)
            self.mixer = Attention()
            self.fc1, self.fc2, self.act = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim), nn.GELU()

        def forward(self, x):
            x = x + self.mixer(self.norm1(x))
            return x + self.fc2(self.act(self.fc1(self.norm2(x))))

    class Encoder(nn.Layer):
        def __init__(self):
            super().__init__()
            self.blocks = nn.LayerList([Block() for _ in range(depth)])
            self.norm = nn.LayerNorm(dim, epsilon=1e-6)
            self.head = nn.Linear(dim, classes)

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm(x))

    return Encoder()
