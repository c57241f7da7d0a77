"""Optimizers as graph nodes: `opt.minimize(loss)` returns an update node.

Fetching the update node applies one step to the session's variables. Each variable
gets its own update node (`<scope>/update_<var>`, like TensorFlow's ApplyAdam) that
reads the variable, its gradient and the learning rate; a final `<scope>/step` node
groups them and evaluates to the number of steps taken so far.

Optimizer state (momentum buffers, Adam moments and step counts) lives in the session's
`state` dict under string keys `<scope>/<variable name>/<slot>`, so `mg.save` writes it
next to the variables and a restored run continues exactly. Each update op declares its
entries (`state_slots`: shape and dtype, or an integer step count), and `mg.restore`
checks a checkpoint's state against them.

The learning rate is a float or a scalar float node, e.g. `mg.optim.learning_rate(0.1)`
(a placeholder with a default): feed it a new value each step or epoch to follow a
schedule (`step_schedule`, `cosine_schedule`) without rebuilding the graph. A value that is
negative, NaN or infinite is refused with a `FeedError` before any variable changes.

Update rules (g is the gradient, w the variable, as in PyTorch):

- SGD: g += weight_decay * w; with momentum, buf = momentum * buf + g (buf starts at 0)
  and g = buf (or g + momentum * buf with nesterov); w -= lr * g.
- Adam: g += weight_decay * w; t += 1; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
  w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, ClassVar, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .autodiff import gradients
from .checks import as_bool, as_float
from .errors import ArgumentError, FeedError, GraphError, ShapeError
from .graph import Graph, Node
from .op import STEP_COUNT, StateSlot, Op, Variable, apply, placeholder_with_default
from .spec import Spec, fmt

__all__ = ["SGD", "Adam", "Optimizer", "StateSlot", "learning_rate", "step_schedule", "cosine_schedule",
           "trainable_variables"]


# ---------------------------------------------------------------------------------
# update ops


@dataclasses.dataclass(frozen=True)
class ApplyUpdate(Op):
    """Shared shape rule and plumbing of the per-variable update ops.

    Inputs: (variable, gradient, lr); output: the variable's new value. `slot` is the
    prefix of this variable's state keys in `session.state`.
    """

    side_effects: ClassVar[bool] = True
    pure: ClassVar[bool] = False
    returns_state: ClassVar[bool] = True
    slot: str

    def slot_names(self) -> Tuple[str, ...]:
        """The names of the arrays this op keeps per variable (each shaped like the variable)."""
        return ()

    def count_names(self) -> Tuple[str, ...]:
        """The names of the step counts this op keeps per variable."""
        return ()

    def state_slots(self, node) -> Dict[str, StateSlot]:
        """{session.state key: StateSlot} of the entries `node` writes; they appear together."""
        var = StateSlot(tuple(node.shape), node.dtype)
        slots = {f"{self.slot}/{name}": var for name in self.slot_names()}
        slots.update({f"{self.slot}/{name}": STEP_COUNT for name in self.count_names()})
        return slots

    def infer(self, var: Spec, grad: Spec, lr: Spec) -> Spec:
        if tuple(grad.shape) != tuple(var.shape) or grad.dtype != var.dtype:
            raise ShapeError(f"gradient {fmt(grad.shape)} {grad.dtype} does not match the variable's "
                             f"{fmt(var.shape)} {var.dtype}")
        if lr.shape != () or lr.dtype.kind != "f":
            raise ShapeError(f"the learning rate must be a float scalar, got {fmt(lr.shape)} {lr.dtype}")
        return var

    def run(self, ctx, node, arrays):
        _, g, lr = arrays
        # the value now, not the one read at the start of the run: another update of this
        # variable in the same run (a second optimizer) may have written it, and is kept
        w = ctx.read_variable(node.inputs[0])
        lr = float(lr)
        if not lr >= 0 or not math.isfinite(lr):  # NaN fails the first test
            raise FeedError(f"{self.kind} {node.name!r}: the learning rate {node.inputs[2].name!r} must be "
                            f"a finite number >= 0, got {lr}")
        new = self.step(ctx.xp, ctx.state, w, g, lr)
        ctx.write_variable(node.inputs[0], new)
        return new

    def step(self, xp, state: dict, w, g, lr: float):
        """The variable's new value (a new array); updates this variable's slots in `state`."""
        raise NotImplementedError

    def slot_value(self, xp, state: dict, name: str, like):
        """The slot `name` of this variable, zeros shaped like `like` on first use."""
        value = state.get(f"{self.slot}/{name}")
        return xp.zeros_like(like) if value is None else value


@dataclasses.dataclass(frozen=True)
class ApplySGD(ApplyUpdate):
    """w -= lr * g, with optional weight decay, momentum and Nesterov momentum."""

    kind: ClassVar[str] = "apply_sgd"
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def slot_names(self):
        return ("momentum",) if self.momentum else ()

    def step(self, xp, state, w, g, lr):
        if self.weight_decay:
            g = g + self.weight_decay * w
        if self.momentum:
            buf = self.momentum * self.slot_value(xp, state, "momentum", w) + g
            state[f"{self.slot}/momentum"] = buf
            g = g + self.momentum * buf if self.nesterov else buf
        return w - lr * g


@dataclasses.dataclass(frozen=True)
class ApplyAdam(ApplyUpdate):
    """One bias-corrected Adam step (Kingma & Ba 2015, Algorithm 1) with L2 weight decay."""

    kind: ClassVar[str] = "apply_adam"
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0

    def slot_names(self):
        return ("m", "v")

    def count_names(self):
        return ("t",)

    def step(self, xp, state, w, g, lr):
        if self.weight_decay:
            g = g + self.weight_decay * w
        t = int(state.get(f"{self.slot}/t", 0)) + 1
        m = self.beta1 * self.slot_value(xp, state, "m", w) + (1 - self.beta1) * g
        v = self.beta2 * self.slot_value(xp, state, "v", w) + (1 - self.beta2) * (g * g)
        state[f"{self.slot}/m"], state[f"{self.slot}/v"] = m, v
        state[f"{self.slot}/t"] = xp.asarray(t, dtype=np.int64)
        m_hat = m / (1 - self.beta1 ** t)
        v_hat = v / (1 - self.beta2 ** t)
        return w - lr * m_hat / (xp.sqrt(v_hat) + self.eps)


@dataclasses.dataclass(frozen=True)
class GroupSteps(Op):
    """Runs after all its inputs (the update nodes); counts the steps taken in `counter`."""

    kind: ClassVar[str] = "group_steps"
    side_effects: ClassVar[bool] = True
    pure: ClassVar[bool] = False
    counter: str

    def infer(self, *updates: Spec) -> Spec:
        return Spec((), np.dtype(np.int64))

    def state_slots(self, node) -> Dict[str, StateSlot]:
        return {self.counter: STEP_COUNT}

    def run(self, ctx, node, arrays):
        step = int(ctx.state.get(self.counter, 0)) + 1
        value = ctx.xp.asarray(step, dtype=np.int64)
        ctx.state[self.counter] = value
        return value.copy()


# ---------------------------------------------------------------------------------
# optimizers


def trainable_variables(loss: Node) -> List[Node]:
    """The trainable variables `loss` depends on, in creation order."""
    return [n for n in loss.graph.ancestors([loss])
            if isinstance(n.op, Variable) and n.op.trainable]


class Optimizer:
    """Base class: `minimize(loss, var_list=None)` builds the update node; it is
    `apply_gradients(compute_gradients(loss, var_list))`, the two halves that a wrapper such
    as `mg.distributed.DistributedOptimizer` changes the gradients between."""

    def __init__(self, lr, name: str):
        if not isinstance(lr, Node):
            lr = as_float(lr, f"{name}: the learning rate", positive=True)
        elif lr.shape != () or lr.dtype.kind != "f":
            raise ShapeError(f"{name}: the learning rate node {lr.name!r} must be a float scalar, "
                             f"got {fmt(lr.shape)} {lr.dtype}")
        self.lr = lr
        self.name = name

    def __repr__(self) -> str:
        lr = self.lr.name if isinstance(self.lr, Node) else self.lr
        return f"<{type(self).__name__} lr={lr}>"

    def update_op(self, slot: str) -> ApplyUpdate:
        raise NotImplementedError

    def compute_gradients(self, loss: Node, var_list: Optional[Sequence[Node]] = None) -> List[Tuple[Node, Node]]:
        """[(gradient node, variable)] of the scalar `loss` for every variable of `var_list`
        (default: all trainable variables it depends on), in `var_list`'s order.

        The pairs can be changed (averaged over ranks, clipped, ...) before `apply_gradients`.
        """
        if not isinstance(loss, Node):
            raise TypeError(f"minimize: loss must be a node, got {type(loss).__name__}")
        if loss.shape != () or loss.dtype.kind != "f":
            raise ShapeError(f"minimize: loss {loss.name!r} must be a float scalar, got "
                             f"{fmt(loss.shape)} {loss.dtype}")
        var_list = self.check_var_list(loss, var_list)
        with loss.graph:
            grads = gradients(loss, var_list)
        return list(zip(grads, var_list))

    def apply_gradients(self, grads_and_vars: Sequence[Tuple[Node, Node]], name: Optional[str] = None) -> Node:
        """An update node: fetching it moves each variable one step along minus its gradient
        (one `update_<var>` node per pair, then a `step` node that evaluates to the number of
        steps this update has taken in the session)."""
        pairs = list(grads_and_vars)
        if not pairs:
            raise ValueError("apply_gradients: no (gradient, variable) pairs")
        for g, v in pairs:
            if not isinstance(v, Node) or not isinstance(v.op, Variable):
                raise TypeError(f"apply_gradients: expected (gradient, variable) pairs, got a {v!r} for a variable")
            if not isinstance(g, Node) or g.graph is not v.graph:
                raise TypeError(f"apply_gradients: the gradient of {v.name!r} must be a node of its graph, got {g!r}")
        graph: Graph = pairs[0][1].graph
        with graph:
            with graph.name_scope(name or self.name) as scope:
                lr = self.lr
                if not isinstance(lr, Node):
                    lr = graph.add_node(_constant(lr), [], "lr")
                elif lr.graph is not graph:
                    raise ValueError(f"minimize: the learning rate node {lr.name!r} is in another graph")
                updates = [apply(self.update_op(f"{scope}/{v.name}"), [v, g, lr],
                                 "update_" + v.name.replace("/", "."))
                           for g, v in pairs]
                return apply(GroupSteps(f"{scope}/step"), updates, "step")

    def minimize(self, loss: Node, var_list: Optional[Sequence[Node]] = None,
                 name: Optional[str] = None) -> Node:
        """An update node: fetching it moves every variable of `var_list` one step down
        the gradient of the scalar `loss` (default: all trainable variables it depends on).
        `apply_gradients(compute_gradients(loss, var_list), name)`.

        The node evaluates to the number of steps this update has taken in the session.
        """
        return self.apply_gradients(self.compute_gradients(loss, var_list), name)

    def check_var_list(self, loss: Node, var_list) -> List[Node]:
        """`var_list` checked (variables of the loss's graph, float, no repeats), or by default
        the trainable variables `loss` depends on."""
        if var_list is None:
            var_list = trainable_variables(loss)
            if not var_list:
                raise ValueError(f"minimize: loss {loss.name!r} depends on no trainable variable")
            return var_list
        var_list = list(var_list)
        if not var_list:
            raise ValueError("minimize: var_list is empty")
        for v in var_list:
            if not isinstance(v, Node) or not isinstance(v.op, Variable):
                raise TypeError(f"minimize: var_list must hold variable nodes, got {v!r}")
            if v.graph is not loss.graph:
                raise ValueError(f"minimize: variable {v.name!r} is in another graph than the loss")
            if v.dtype.kind != "f":
                raise TypeError(f"minimize: variable {v.name!r} has non-float dtype {v.dtype}")
        if len(set(var_list)) != len(var_list):
            raise ValueError("minimize: var_list names a variable twice")
        used = {n.index for n in loss.graph.ancestors([loss])}
        if not any(v.index in used for v in var_list):  # every gradient zero: a step would do nothing
            names = ", ".join(repr(v.name) for v in var_list[:5]) + (", ..." if len(var_list) > 5 else "")
            raise GraphError(f"minimize: loss {loss.name!r} depends on none of the variables of var_list ({names})")
        return var_list


def _constant(value: float):
    from .op import Constant
    arr = np.array(value, dtype=np.float64)
    arr.setflags(write=False)
    return Constant(arr)


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum and L2 weight decay.

    >>> train_op = mg.optim.SGD(0.1, momentum=0.9).minimize(loss)
    """

    def __init__(self, lr, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
                 name: str = "SGD"):
        super().__init__(lr, name)
        momentum = as_float(momentum, "SGD: momentum", minimum=0.0)
        nesterov = as_bool(nesterov, "SGD: nesterov")
        weight_decay = as_float(weight_decay, "SGD: weight_decay")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"SGD: momentum must lie in [0, 1), got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov momentum needs momentum > 0")
        if weight_decay < 0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay}")
        self.momentum, self.nesterov, self.weight_decay = float(momentum), bool(nesterov), float(weight_decay)

    def update_op(self, slot):
        return ApplySGD(slot, self.momentum, self.nesterov, self.weight_decay)


class Adam(Optimizer):
    """Adam with bias correction and L2 weight decay added to the gradient (not AdamW).

    >>> train_op = mg.optim.Adam(1e-3).minimize(loss)
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 name: str = "Adam"):
        super().__init__(lr, name)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ArgumentError(f"Adam: betas must be a pair of numbers, got {betas!r}")
        b1, b2 = (as_float(b, "Adam: betas") for b in betas)
        eps = as_float(eps, "Adam: eps")
        weight_decay = as_float(weight_decay, "Adam: weight_decay")
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {tuple(betas)}")
        if not eps > 0:
            raise ValueError(f"Adam: eps must be > 0, got {eps}")
        if weight_decay < 0:
            raise ValueError(f"Adam: weight_decay must be >= 0, got {weight_decay}")
        self.betas, self.eps, self.weight_decay = (b1, b2), float(eps), float(weight_decay)

    def update_op(self, slot):
        return ApplyAdam(slot, self.betas[0], self.betas[1], self.eps, self.weight_decay)


# ---------------------------------------------------------------------------------
# learning rates and schedules


def learning_rate(value: float, name: str = "learning_rate") -> Node:
    """A scalar float32 placeholder worth `value` unless fed: a learning rate to schedule.

    >>> lr = mg.optim.learning_rate(0.1)
    >>> train_op = mg.optim.SGD(lr, momentum=0.9).minimize(loss)
    >>> sess.run(train_op, feed={x: xb, y: yb, lr: schedule(epoch)})
    """
    return placeholder_with_default(np.float32(value), shape=(), name=name)


def step_schedule(base_lr: float, step_size: int, gamma: float = 0.1) -> Callable[[int], float]:
    """lr(i) = base_lr * gamma ** (i // step_size), for i = 0, 1, ... (epochs or steps)."""
    if step_size < 1:
        raise ValueError(f"step_schedule: step_size must be >= 1, got {step_size}")

    def schedule(i: int) -> float:
        return base_lr * gamma ** (int(i) // step_size)
    return schedule


def cosine_schedule(base_lr: float, total: int, min_lr: float = 0.0, warmup: int = 0) -> Callable[[int], float]:
    """Linear warm-up over `warmup` steps from base_lr/warmup, then a cosine from base_lr
    down to min_lr at i = total (and min_lr after):
    lr(i) = min_lr + (base_lr - min_lr) * (1 + cos(pi * (i - warmup) / (total - warmup))) / 2.
    """
    if total < 1 or not 0 <= warmup < total:
        raise ValueError(f"cosine_schedule: need total >= 1 and 0 <= warmup < total, got {total}, {warmup}")

    def schedule(i: int) -> float:
        i = int(i)
        if i < warmup:
            return base_lr * (i + 1) / warmup
        frac = min(1.0, (i - warmup) / (total - warmup))
        return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * frac)) / 2
    return schedule
