"""`broadcast_variables`: make every rank's session a copy of the root's."""
from __future__ import annotations

import numpy as np

from ..session import Session
from .comm import Communicator, DistributedError


def broadcast_variables(sess: Session, comm: Communicator, root: int = 0) -> None:
    """Copy `root`'s variables, its `sess.state` (optimizer moments, step counts, dropout
    key and draw counts) and its random generator's state into every rank's session.

    Call it on every rank after building the session, and again after `mg.restore` on the
    root (the others then need no checkpoint file), so that all ranks start identical.
    Every rank must have built the same graph: variable names, shapes and dtypes are
    compared first, and a difference is a `DistributedError` on every rank.
    """
    variables = sess.variables
    layout = [[v.name, list(v.shape), str(v.dtype)] for v in variables]
    root_layout = comm.broadcast_object(layout if comm.rank == root else None, root, "broadcast of the variable list")
    if root_layout != layout:
        diff = next((f"{a} vs {b}" for a, b in zip(root_layout, layout) if a != b),
                    f"{len(root_layout)} variables vs {len(layout)}")
        raise DistributedError(f"rank {comm.rank} built another graph than rank {root}: {diff}")
    for v in variables:
        value = np.array(sess.get_value(v), order="C")
        comm.broadcast_host(value, root, f"broadcast of variable {v.name!r}")
        if comm.rank != root:
            sess.set_value(v, value)

    state = {}
    if comm.rank == root:
        state = {k: np.array(sess.backend.to_host(a), order="C") for k, a in sess.state.items()}
        bad = [k for k in state if not isinstance(k, str)]
        if bad:
            raise DistributedError(f"cannot broadcast session state key {bad[0]!r}: state keys must be strings")
    specs = comm.broadcast_object([[k, list(a.shape), a.dtype.str] for k, a in state.items()], root,
                                  "broadcast of the session state's keys")
    received = {}
    for key, shape, dtype in specs:
        value = state[key] if comm.rank == root else np.empty(shape, np.dtype(dtype))
        comm.broadcast_host(value, root, f"broadcast of session state {key!r}")
        received[key] = value
    if comm.rank != root:
        sess.state.clear()
        for key, value in received.items():
            sess.state[key] = sess.backend.asarray(value)

    if isinstance(sess.rng, np.random.Generator):
        rng_state = comm.broadcast_object(sess.rng.bit_generator.state if comm.rank == root else None, root,
                                          "broadcast of the session generator")
        if comm.rank != root:
            sess.rng.bit_generator.state = rng_state
