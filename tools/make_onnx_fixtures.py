"""Write the ONNX fixtures of tests/onnx/ from a small Inception-style PyTorch network.

    .venv/bin/pip install torch==2.13.0 onnxscript    # torch is not needed by the tests
    .venv/bin/python tools/make_onnx_fixtures.py      # writes tests/fixtures/onnx/*

The network (`InceptionNet`, random weights and batch-norm statistics from seed 0) has
what the import must handle in real exporter output: convolutions with batch norm (both
exporters fold those into the conv), a batch norm after a channel concat (kept as a
BatchNormalization node), ceil_mode max and average pooling (the average pool with
count_include_pad, PyTorch's default), a dilated conv, three identical Inception blocks
in a row, global average pooling, dropout and a Linear head (Gemm). Written files:

- inception_torchscript.onnx: torch.onnx.export(dynamo=False), opset 17, dynamic batch;
- inception_dynamo.onnx: torch.onnx.export(dynamo=True), opset 18, dynamic batch;
- inception_reference.npz: an input batch `x` and PyTorch's logits `y` for it.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "onnx")


class BasicConv(nn.Module):
    """conv (no bias) -> batch norm -> ReLU."""

    def __init__(self, cin, cout, k, stride=1, padding=0, dilation=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four branches joined by a channel concat: 1x1 | 1x1 -> 3x3 | 1x1 -> dilated 3x3 | pool -> 1x1."""

    def __init__(self, cin, c1, c3r, c3, c5r, c5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv(cin, c1, 1)
        self.branch2 = nn.Sequential(BasicConv(cin, c3r, 1), BasicConv(c3r, c3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv(cin, c5r, 1), BasicConv(c5r, c5, 3, padding=2, dilation=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv(cin, pool_proj, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = BasicConv(3, 16, 3, stride=2, padding=1)             # 16 x 16 x 16
        self.pool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)            # 16 x 8 x 8 (floor: 7)
        self.inception_a = Inception(16, 8, 8, 12, 4, 6, 6)              # 32 x 8 x 8
        self.blocks = nn.Sequential(*[Inception(32, 8, 8, 12, 4, 6, 6) for _ in range(3)])
        self.norm = nn.BatchNorm2d(32)                                    # after a concat: not folded
        self.pool2 = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True)  # 32 x 5 x 5, count_include_pad
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.inception_a(self.pool1(self.stem(x)))
        x = torch.relu(self.norm(self.blocks(x)))
        x = torch.flatten(self.gap(self.pool2(x)), 1)
        return self.fc(self.dropout(x))


def build(seed: int = 0) -> InceptionNet:
    torch.manual_seed(seed)
    net = InceptionNet()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):  # statistics that do something
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=OUT, help="output folder (default: tests/fixtures/onnx)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    net = build()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    with torch.no_grad():
        y = net(x)
    torch.onnx.export(net, (x,), os.path.join(args.out, "inception_torchscript.onnx"), dynamo=False,
                      opset_version=17, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    torch.onnx.export(net, (x,), os.path.join(args.out, "inception_dynamo.onnx"), dynamo=True,
                      opset_version=18, input_names=["x"], output_names=["logits"],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False)
    np.savez(os.path.join(args.out, "inception_reference.npz"), x=x.numpy(), y=y.numpy())
    for name in sorted(os.listdir(args.out)):
        print(f"{os.path.getsize(os.path.join(args.out, name)):>9,}  {os.path.join(args.out, name)}")


if __name__ == "__main__":
    main()
