"""Gradient buckets: several gradients reduced by one allreduce of a flat buffer.

`BucketPlanner` groups gradients, in the order the backward pass completes them (last
layers first), into buckets of about `bucket_bytes` (one dtype per bucket). Each bucket is
three kinds of nodes:

- `AllreduceStart(share, g1, ..., gk)`: copies share * g_i into one new contiguous buffer
  and starts the in-place sum over the ranks on the communication thread; it is built as
  soon as the bucket's last gradient exists, so it runs while the backward pass goes on;
- `AllreduceWait(start)`: waits for that sum (with the communicator's deadline);
- `BucketSlice(wait)`: each gradient's part of the summed buffer, in its shape.

With share = (examples on this rank) / (examples in the global batch), the sum over ranks
is the gradient of the global batch's mean loss, whatever the split.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, ClassVar, List, Optional, Tuple

import numpy as np

from ..errors import ShapeError
from ..graph import Node
from ..op import Op, apply
from ..spec import Spec, fmt
from .comm import Communicator

DEFAULT_BUCKET_BYTES = 4 << 20  # 4 MiB


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


@dataclasses.dataclass(frozen=True)
class AllreduceStart(Op):
    """(share, grads...) -> a flat buffer of share * grads that is being summed over the ranks."""

    kind: ClassVar[str] = "allreduce_start"
    pure: ClassVar[bool] = False  # its result depends on the other ranks
    deterministic: ClassVar[bool] = False
    foldable: ClassVar[bool] = False
    comm: Communicator = dataclasses.field(compare=False, repr=False)
    bucket: int = 0

    def infer(self, share: Spec, *grads: Spec) -> Spec:
        if share.shape != () or share.dtype.kind != "f":
            raise ShapeError(f"share must be a float scalar, got {fmt(share.shape)} {share.dtype}")
        if not grads:
            raise ShapeError("a bucket needs at least one gradient")
        dtypes = {g.dtype for g in grads}
        if len(dtypes) > 1 or grads[0].dtype.kind != "f":
            raise ShapeError("a bucket holds gradients of one float dtype, got " + ", ".join(str(d) for d in dtypes))
        if any(d is None for g in grads for d in g.shape):
            raise ShapeError("bucketed gradients need fully known shapes")
        return Spec((sum(_size(g.shape) for g in grads),), grads[0].dtype)

    def run(self, ctx, node, arrays):
        xp = ctx.xp
        share, grads = float(arrays[0]), arrays[1:]
        buf = xp.empty(node.shape, dtype=node.dtype)
        offset = 0
        for g in grads:
            part = buf[offset:offset + g.size].reshape(g.shape)
            if share == 1.0:
                xp.copyto(part, g)
            else:
                xp.multiply(g, node.dtype.type(share), out=part)
            offset += g.size
        handle = self.comm.allreduce_async(buf, what=f"allreduce of {node.name} ({buf.nbytes:,} bytes)")
        self.comm.hold(buf, handle)
        return buf

    def gradient(self, node, out_grad):
        raise NotImplementedError(f"{node.name!r}: an allreduce of gradients is not differentiable")


@dataclasses.dataclass(frozen=True)
class AllreduceWait(Op):
    """The bucket's buffer once the sum over the ranks has arrived (deadline: comm.timeout)."""

    kind: ClassVar[str] = "allreduce_wait"
    pure: ClassVar[bool] = False
    deterministic: ClassVar[bool] = False
    foldable: ClassVar[bool] = False
    comm: Communicator = dataclasses.field(compare=False, repr=False)

    def infer(self, buf: Spec) -> Spec:
        return buf

    def run(self, ctx, node, arrays):
        (buf,) = arrays
        return self.comm.release(buf).wait()

    def gradient(self, node, out_grad):
        raise NotImplementedError(f"{node.name!r}: an allreduce of gradients is not differentiable")


@dataclasses.dataclass(frozen=True)
class BucketSlice(Op):
    """buf[offset : offset + prod(shape)] reshaped to `shape` (a view)."""

    kind: ClassVar[str] = "bucket_slice"
    view: ClassVar[bool] = True
    offset: int
    shape: Tuple[int, ...]

    def infer(self, buf: Spec) -> Spec:
        if len(buf.shape) != 1 or self.offset + _size(self.shape) > buf.shape[0]:
            raise ShapeError(f"slice [{self.offset}, +{_size(self.shape)}) does not fit a buffer {fmt(buf.shape)}")
        return Spec(self.shape, buf.dtype)

    def forward(self, xp, buf):
        return buf[self.offset:self.offset + _size(self.shape)].reshape(self.shape)

    def gradient(self, node, out_grad):
        raise NotImplementedError(f"{node.name!r}: a bucket slice is not differentiable")


@dataclasses.dataclass
class Bucket:
    """The gradients of one allreduce and the node that starts it."""

    dtype: np.dtype
    pairs: List[Tuple[Node, Node]] = dataclasses.field(default_factory=list)  # (grad, var)
    start: Optional[Node] = None

    @property
    def nbytes(self) -> int:
        return sum(_size(g.shape) for g, _ in self.pairs) * self.dtype.itemsize


class BucketPlanner:
    """Collects (grad, var) pairs as the backward pass completes them and starts a bucket's
    allreduce once it holds `bucket_bytes` or more. `finish()` closes the open buckets and
    returns every bucket's averaged gradients."""

    def __init__(self, comm: Communicator, share: Node, bucket_bytes: int = DEFAULT_BUCKET_BYTES,
                 scope: Callable = None):
        if int(bucket_bytes) < 1:
            raise ValueError(f"bucket_bytes must be >= 1, got {bucket_bytes}")
        self.comm, self.share, self.bucket_bytes = comm, share, int(bucket_bytes)
        self.scope = scope
        self.open: dict = {}
        self.buckets: List[Bucket] = []

    def add(self, var: Node, grad: Node) -> None:
        bucket = self.open.setdefault(grad.dtype, Bucket(grad.dtype))
        bucket.pairs.append((grad, var))
        if bucket.nbytes >= self.bucket_bytes:
            self._start(self.open.pop(grad.dtype))

    def _start(self, bucket: Bucket) -> None:
        index = len(self.buckets)
        with self.scope():
            bucket.start = apply(AllreduceStart(self.comm, index), [self.share] + [g for g, _ in bucket.pairs],
                                 f"allreduce_start_{index}")
        self.buckets.append(bucket)

    def finish(self) -> dict:
        """{var: averaged gradient node} over every bucket."""
        for dtype in list(self.open):
            self._start(self.open.pop(dtype))
        averaged = {}
        with self.scope():
            for i, bucket in enumerate(self.buckets):
                done = apply(AllreduceWait(self.comm), [bucket.start], f"allreduce_wait_{i}")
                offset = 0
                for g, v in bucket.pairs:
                    averaged[v] = apply(BucketSlice(offset, tuple(g.shape)), [done], "grad_" + v.name.replace("/", "."))
                    offset += _size(g.shape)
        return averaged
