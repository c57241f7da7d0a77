"""GoogLeNet's parameters and multiply-adds per layer, as in Table 1 of Szegedy et al. 2014.

    python examples/googlenet_summary.py

prints the table, then the 1x1 bottleneck argument of the paper: a 5x5 convolution from
28x28x192 to 32 channels costs 120,422,400 multiply-adds, and 12,443,648 through a
16-channel 1x1 reduction.
"""
import _venv  # noqa: F401,I001  (first: re-runs this script with the project's .venv if needed)
import minigraph as mg
from minigraph import models


def main() -> None:
    with mg.Graph():
        net = models.googlenet()
        table = mg.summary(net.outputs)
    print(table)
    print(f"\n{table.total_params / 1e6:.2f} M parameters, {table.total_macs / 1e9:.2f} G multiply-adds per image")

    with mg.Graph():
        x = mg.placeholder((None, 192, 28, 28), name="x")
        direct = mg.layers.conv2d(x, 32, 5, name="conv5x5")
        with mg.name_scope("bottleneck"):
            reduced = mg.layers.conv2d(mg.layers.conv1x1(x, 16, name="reduce"), 32, 5, name="conv5x5")
        print(f"\n28x28x192 -> 5x5 conv, 32 filters:      {mg.summary(direct)['conv5x5'].macs:>12,} MACs")
        print(f"  with a 16-channel 1x1 reduction first:  {mg.summary(reduced)['bottleneck'].macs:>12,} MACs")


if __name__ == "__main__":
    main()
