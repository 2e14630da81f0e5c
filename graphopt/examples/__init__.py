"""Models shipped inside the package, so `graphopt optimize --example NAME` needs no download.

tiny-bert.onnx: a 2-layer BERT (hidden 64, vocab 1000, random weights) exported by torch 2.13's
dynamo exporter with dynamic batch/sequence axes: `graphopt zoo build bert --size tiny --dynamic`.
"""
