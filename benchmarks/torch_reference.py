"""The benchmark networks of `networks.py` in PyTorch, on the same weights as minigraph.

`TorchNet(layers, weights)` reads the same layer list and the same canonical-order weights
as `networks.build_minigraph`, so both frameworks compute the same function:

- convs: SAME padding as TensorFlow (symmetric `padding=` where the rule is symmetric, an
  explicit `F.pad` for conv1's (2, 3) case), bias, in-place ReLU (as torchvision writes it);
- max pools: TensorFlow's SAME (padded cells never win): symmetric `padding=`, or for the
  odd extra cell at the bottom/right `ceil_mode=True`, which lets the last window hang over
  the edge exactly as TensorFlow pads it (checked against the SAME output size);
- LRN: `F.local_response_norm`, which is the Caffe form `x / (k + alpha/size * sum x^2)^beta`;
- dropout in inference mode (the identity), dense without activation.

Imported only by the benchmark: minigraph itself never needs torch.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import torch
import torch.nn.functional as F

import networks as nets


def _max_pool(x, size: int, stride: int):
    (t, b), (l, r) = (nets.same_pads(n, size, stride) for n in x.shape[2:])
    if (t, l) == (b, r):
        return F.max_pool2d(x, size, stride, padding=(t, l))
    out_hw = [-(-n // stride) for n in x.shape[2:]]
    ceil_hw = [-(-(n + 2 * p - size) // stride) + 1 for n, p in zip(x.shape[2:], (t, l))]
    if (b - t, r - l) in ((0, 1), (1, 0), (1, 1)) and ceil_hw == out_hw:
        return F.max_pool2d(x, size, stride, padding=(t, l), ceil_mode=True)
    return F.max_pool2d(F.pad(x, (l, r, t, b), value=float("-inf")), size, stride)


class TorchNet(torch.nn.Module):
    """The layer list `layers` with `weights` (numpy arrays, canonical order) as parameters."""

    def __init__(self, layers: Sequence, weights: Sequence[np.ndarray]):
        super().__init__()
        self.layers = list(layers)
        # dense matrices are (in, out) in minigraph, (out, in) in torch.nn.functional.linear
        self._dense = _dense_mask(self.layers)
        if len(self._dense) != len(weights):
            raise ValueError(f"the network has {len(self._dense)} parameter arrays, got {len(weights)} weights")
        self.params = torch.nn.ParameterList(
            torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(w.T if dense else w)).clone())
            for w, dense in zip(weights, self._dense))

    def _conv(self, x, stride: int = 1):
        w, b = self.params[self._next], self.params[self._next + 1]
        self._next += 2
        size = w.shape[-1]
        (t, bt), (l, r) = (nets.same_pads(n, size, stride) for n in x.shape[2:])
        if (t, l) != (bt, r):
            x, t, l = F.pad(x, (l, r, t, bt)), 0, 0
        return F.relu(F.conv2d(x, w, b, stride=stride, padding=(t, l)), inplace=True)

    def forward(self, x):
        self._next = 0
        for layer in self.layers:
            if isinstance(layer, nets.Conv):
                x = self._conv(x, layer.stride)
            elif isinstance(layer, nets.MaxPool):
                x = _max_pool(x, layer.size, layer.stride)
            elif isinstance(layer, nets.LRN):
                x = F.local_response_norm(x, layer.size, layer.alpha, layer.beta, layer.k)
            elif isinstance(layer, nets.Inception):
                b1 = self._conv(x)
                b2 = self._conv(self._conv(x))
                b3 = self._conv(self._conv(x))
                b4 = self._conv(_max_pool(x, 3, 1))
                x = torch.cat([b1, b2, b3, b4], dim=1)
            elif isinstance(layer, nets.GlobalAvgPool):
                x = x.mean(dim=(2, 3))
            elif isinstance(layer, nets.Dropout):
                x = F.dropout(x, layer.rate, training=False)
            elif isinstance(layer, nets.Dense):
                w, b = self.params[self._next], self.params[self._next + 1]
                self._next += 2
                x = F.linear(x.flatten(1), w, b)
            else:
                raise TypeError(f"unknown layer {layer!r}")
        return x

    def grads_canonical(self) -> List[np.ndarray]:
        """The parameter gradients as numpy arrays in canonical (minigraph) layout."""
        grads = [p.grad.detach().contiguous().numpy() for p in self.params]
        return [g.T if dense else g for g, dense in zip(grads, self._dense)]


def _dense_mask(layers: Sequence) -> List[bool]:
    """One flag per parameter array (canonical order): does it belong to a dense layer?"""
    mask = []
    for layer in layers:
        n = {nets.Conv: 2, nets.Inception: 12, nets.Dense: 2}.get(type(layer), 0)
        mask.extend([isinstance(layer, nets.Dense)] * n)
    return mask
