"""Draw the Inception module (Figure 2(b) of Szegedy et al. 2014) and GoogLeNet (Figure 3).

    python examples/render_inception.py [OUT_DIR]

writes inception_module.svg/.png (module 3a, every op) and googlenet.svg/.png (one box per
module, with the auxiliary classifiers) into OUT_DIR (default: docs/). Needs Graphviz's `dot`.
"""
import _venv  # noqa: F401,I001  (first: re-runs this script with the project's .venv if needed)
import os
import sys

import minigraph as mg
from minigraph import models


def main(out: str = "docs") -> None:
    with mg.Graph():
        x = mg.placeholder((None, 192, 28, 28), name="previous_layer")
        module = models.inception_module(x, *models.GOOGLENET_INCEPTION["3a"], name="inception_3a")
        for suffix in ("svg", "png"):
            print(mg.viz.render(module, os.path.join(out, f"inception_module.{suffix}")))

    with mg.Graph():
        net = models.googlenet(aux=True)
        for suffix in ("svg", "png"):
            print(mg.viz.render(net.outputs, os.path.join(out, f"googlenet.{suffix}"), collapse=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
