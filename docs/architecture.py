"""Draws the pictures of docs/architecture.md (run: .venv/bin/python docs/architecture.py).

- architecture.png/svg: the four layers of the runtime and what lives in each (Graphviz);
- optimize_before.png / optimize_after.png: a small conv layer as built and as a session runs
  it after `mg.optimize` (drawn by minigraph itself).
"""
import html
import pathlib

import graphviz
import numpy as np

import minigraph as mg
from minigraph import ops

HERE = pathlib.Path(__file__).resolve().parent

LAYERS = [
    ("build", "build the graph", "graph.py, op.py, ops/*",
     ["Graph / Node (Node.inputs = the edges)", "ops: one class per op, registered by kind",
      "declarations: pure, deterministic, foldable,", "view, side_effects, category, role, labels",
      "mg.gradients adds gradient nodes"]),
    ("passes", "passes (rewrite)", "minigraph/passes/",
     ["Program -> (Program, mapping), via rebuild", "eliminate_dead_nodes", "fold_constants",
      "eliminate_common_subexpressions", "fuse_conv_bias_relu (activation='relu')", "mg.optimize shows the result"]),
    ("select", "kernel selection", "minigraph/dispatch.py",
     ["register_kernel(kind, backend, algorithm, score)", "op.forward(xp, ...) = reference and fallback",
      "chosen once per node and input shapes", "forced: op attribute, Session(algorithms=),",
      "MINIGRAPH_ALGORITHMS"]),
    ("execute", "schedule + execute", "plan.py, session.py, runtime.py",
     ["Plan: order, releases, kernel tables", "Session: plans (LRU), variables, state,",
      "shared lock for reads, exclusive for writes", "Runtime: thread pool, BLAS at one thread",
      "fetches never alias state"]),
]


def layers_diagram() -> graphviz.Digraph:
    dot = graphviz.Digraph("architecture")
    dot.attr("graph", rankdir="LR", fontname="Helvetica", nodesep="0.3", ranksep="0.45", pad="0.2",
             bgcolor="white")
    dot.attr("node", shape="plain", fontname="Helvetica")
    fills = ["#cfe2f3", "#fff2cc", "#d9ead3", "#f4cccc"]
    for (key, title, where, lines), fill in zip(LAYERS, fills):
        rows = "".join(f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="10">{html.escape(line)}</FONT></TD></TR>'
                       for line in lines)
        label = (f'<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="4" BGCOLOR="{fill}" STYLE="ROUNDED">'
                 f'<TR><TD><B>{title}</B></TD></TR><TR><TD><FONT POINT-SIZE="9" COLOR="#555555">{where}</FONT></TD></TR>'
                 f"{rows}</TABLE>>")
        dot.node(key, label)
    for a, b in zip(LAYERS, LAYERS[1:]):
        dot.edge(a[0], b[0], color="#555555", arrowsize="0.7")
    return dot


def example_graph():
    rng = np.random.default_rng(0)
    with mg.Graph():
        x = mg.placeholder((None, 3, 32, 32), name="image")
        with mg.name_scope("layer"):
            w = mg.variable(rng.standard_normal((16, 3, 3, 3)).astype("float32"), name="weights")
            b = mg.variable(np.zeros((16, 1, 1), "float32"), name="bias")
            h = ops.relu(ops.conv2d(x, w, padding=1) + b)  # fused into one conv node
        twice = ops.max_pool(h, 2, name="pool") + ops.max_pool(h, 2, name="pool")  # merged
        out = twice * ops.sqrt(mg.constant(np.float32(0.25), name="quarter"))  # folded to 0.5
    return out


def main() -> None:
    dot = layers_diagram()
    for fmt in ("png", "svg"):
        (HERE / f"architecture.{fmt}").write_bytes(dot.pipe(format=fmt))
    out = example_graph()
    mg.viz.render(out, HERE / "optimize_before.png", show_variables=True, title="as built")
    mg.viz.render(mg.optimize(out).outputs, HERE / "optimize_after.png", show_variables=True,
                  title="after mg.optimize (what a session runs)")
    print("wrote", ", ".join(p.name for p in sorted(HERE.glob("*.png"))))


if __name__ == "__main__":
    main()
