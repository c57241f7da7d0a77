"""mg.summary: rows per scope, params and MACs; Table 1 of Szegedy et al. 2014 and the seed's numbers.

Expected values are computed here from the channel columns of Table 1 with the formulas
params = weights + biases, MACs = output H x W x (weights of each conv): a k x k conv from C
to F channels has k*k*C*F weights and F biases, and does H*W*k*k*C*F multiply-adds per image.
"""
import json

import numpy as np
import pytest

import minigraph as mg
from minigraph import models

# Table 1: name -> (input channels, output H = W, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)
TABLE1 = {
    "inception_3a": (192, 28, 64, 96, 128, 16, 32, 32),
    "inception_3b": (256, 28, 128, 128, 192, 32, 96, 64),
    "inception_4a": (480, 14, 192, 96, 208, 16, 48, 64),
    "inception_4b": (512, 14, 160, 112, 224, 24, 64, 64),
    "inception_4c": (512, 14, 128, 128, 256, 24, 64, 64),
    "inception_4d": (512, 14, 112, 144, 288, 32, 64, 64),
    "inception_4e": (528, 14, 256, 160, 320, 32, 128, 128),
    "inception_5a": (832, 7, 256, 160, 320, 32, 128, 128),
    "inception_5b": (832, 7, 384, 192, 384, 48, 128, 128),
}
# The paper's printed columns: params in K (= 1024, weights only, no biases) and ops in M.
PAPER = {
    "conv2": (112, 360),
    "inception_3a": (159, 128), "inception_3b": (380, 304), "inception_4a": (364, 73),
    "inception_4b": (437, 88), "inception_4c": (463, 100), "inception_4d": (580, 119),
    "inception_4e": (840, 170), "inception_5a": (1072, 54), "inception_5b": (1388, 71),
    "fc": (1000, 1),
}
# Where the printed values are not what the channel columns give (slips in the paper):
#   params: 4a 364K (columns give 366.8K), 4c 463K (497.5K), 4d 580K (590.5K), 4e 840K (847.0K),
#           5a 1072K (1018.0K), 5b 1388K (1409.0K);
#   ops:    5a 54M (51.1M); conv1 prints 2.7K params and 34M ops where the columns give 9.4K and
#           118M, so conv1 is left out of the comparison with the paper.
# The paper rounds loosely (3a: 159.5K printed 159K, 3b: 379.0K printed 380K), so a printed
# value is matched within one unit of its last digit.
PARAM_SLIPS = {"inception_4a", "inception_4c", "inception_4d", "inception_4e", "inception_5a", "inception_5b"}
OPS_SLIPS = {"inception_5a"}


def conv_weights(k, c, f):
    return k * k * c * f


def inception_counts(c_in, c1, c3r, c3, c5r, c5, pp):
    """(weights, biases) of one Inception module from its channel columns."""
    weights = (conv_weights(1, c_in, c1) + conv_weights(1, c_in, c3r) + conv_weights(3, c3r, c3)
               + conv_weights(1, c_in, c5r) + conv_weights(5, c5r, c5) + conv_weights(1, c_in, pp))
    return weights, c1 + c3r + c3 + c5r + c5 + pp


def expected_rows():
    """name -> (params with biases, MACs per image, output (C, H, W)), from Table 1's columns."""
    rows = {
        "conv1": (conv_weights(7, 3, 64) + 64, 112 * 112 * conv_weights(7, 3, 64), (64, 112, 112)),
        "conv2": (conv_weights(1, 64, 64) + 64 + conv_weights(3, 64, 192) + 192,
                  56 * 56 * (conv_weights(1, 64, 64) + conv_weights(3, 64, 192)), (192, 56, 56)),
        "fc": (1024 * 1000 + 1000, 1024 * 1000, (1000,)),
    }
    for name, (c_in, hw, *cols) in TABLE1.items():
        weights, biases = inception_counts(c_in, *cols)
        out_c = cols[0] + cols[2] + cols[4] + cols[5]
        rows[name] = (weights + biases, hw * hw * weights, (out_c, hw, hw))
    return rows


@pytest.fixture(scope="module")
def googlenet_summary():
    with mg.Graph():
        net = models.googlenet()
        return mg.summary(net.outputs)


def test_every_recomputable_row_of_table1(googlenet_summary):
    for name, (params, macs, out) in expected_rows().items():
        row = googlenet_summary[name]
        assert (row.params, row.macs, row.output_shape[1:]) == (params, macs, out), name


def test_table1_output_sizes_and_row_order(googlenet_summary):
    s = googlenet_summary
    names = [r.name for r in s.rows]
    assert names == ["input", "conv1", "pool1", "norm1", "conv2", "norm2", "pool2", "inception_3a",
                     "inception_3b", "pool3", "inception_4a", "inception_4b", "inception_4c",
                     "inception_4d", "inception_4e", "pool4", "inception_5a", "inception_5b",
                     "avgpool", "dropout", "fc", "softmax"]
    sizes = {"pool1": (64, 56, 56), "pool2": (192, 28, 28), "pool3": (480, 14, 14),
             "pool4": (832, 7, 7), "avgpool": (1024, 1, 1), "dropout": (1024, 1, 1), "softmax": (1000,)}
    for name, shape in sizes.items():
        assert s[name].output_shape == (None, *shape)
        assert s[name].params == 0 and s[name].macs == 0
    kinds = {r.name: r.kind for r in s.rows}
    assert kinds["inception_4c"] == "inception" and kinds["pool1"] == "max_pool"
    assert kinds["conv1"] == kinds["conv2"] == "conv2d" and kinds["fc"] == "linear"
    assert kinds["norm1"] == "local_response_norm" and kinds["dropout"] == "dropout"


def test_against_the_papers_printed_columns(googlenet_summary):
    """Weights only (our params less one bias per filter), in K = 1024 and M = 10^6, within the
    paper's rounding (one unit of its last digit), except the slips listed above."""
    biases = {name: sum(cols) for name, (_, _, *cols) in TABLE1.items()}
    biases.update(conv2=64 + 192, fc=1000)
    for name, (k_params, m_ops) in PAPER.items():
        row = googlenet_summary[name]
        weights = row.params - biases[name]
        if name not in PARAM_SLIPS:
            assert abs(weights / 1024 - k_params) <= 1, name
        else:
            assert abs(weights / 1024 - k_params) > 1, name        # a slip indeed
        if name not in OPS_SLIPS:
            assert abs(row.macs / 1e6 - m_ops) <= 1, name
        else:
            assert abs(row.macs / 1e6 - m_ops) > 1, name


def test_totals(googlenet_summary):
    s = googlenet_summary
    assert s.total_params == sum(r.params for r in s.rows)
    assert s.total_macs == sum(r.macs for r in s.rows)
    rows = expected_rows()
    assert s.total_params == sum(p for p, _, _ in rows.values())   # only convs and fc have variables
    assert s.total_macs == sum(m for _, m, _ in rows.values())


def test_aux_classifiers_rows():
    with mg.Graph():
        net = models.googlenet(aux=True)
        s = mg.summary(net.outputs)
    names = [r.name for r in s.rows]
    assert names.index("aux1") == names.index("inception_4a") + 1
    assert names.index("aux2") == names.index("inception_4d") + 1
    # 5x5/3 avg pool: 14 -> 4; 1x1 conv 128 on 512 (4a) or 528 (4d) channels; fc 2048 -> 1024; fc 1024 -> 1000
    for name, c_in in (("aux1", 512), ("aux2", 528)):
        weights = c_in * 128 + 128 * 4 * 4 * 1024 + 1024 * 1000
        assert s[name].params == weights + 128 + 1024 + 1000
        assert s[name].macs == 4 * 4 * c_in * 128 + 2048 * 1024 + 1024 * 1000
        assert s[name].output_shape == (None, 1000)


def test_bottleneck_example_of_the_seed():
    """28x28x192 -> 5x5 conv, 32 filters: 120,422,400 MACs; through a 16-channel 1x1 reduction: 12,443,648."""
    with mg.Graph():
        x = mg.placeholder((None, 192, 28, 28), name="x")
        direct = mg.layers.conv2d(x, 32, 5, name="direct")
        with mg.name_scope("bottleneck"):
            r = mg.layers.conv1x1(x, 16, name="reduce")
            reduced = mg.layers.conv2d(r, 32, 5, name="conv")
        s1 = mg.summary(direct)
        s2 = mg.summary(reduced)
        s3 = mg.summary(reduced, depth=2)
    assert s1["direct"].macs == 28 * 28 * 32 * 5 * 5 * 192 == 120_422_400
    assert s2["bottleneck"].macs == 28 * 28 * 16 * 192 + 28 * 28 * 32 * 5 * 5 * 16 == 12_443_648
    assert s3["bottleneck/reduce"].macs == 2_408_448 and s3["bottleneck/conv"].macs == 10_035_200
    assert s3["bottleneck/reduce"].kind == "conv1x1"


def test_depth_two_splits_modules_into_branches():
    with mg.Graph():
        x = mg.placeholder((None, 192, 28, 28), name="x")
        y = models.inception_module(x, 64, 96, 128, 16, 32, 32, name="inception_3a")
        s = mg.summary(y, depth=2)
    names = [r.name for r in s.rows]
    assert names == ["x", "inception_3a/branch_1x1", "inception_3a/branch_3x3", "inception_3a/branch_5x5",
                     "inception_3a/branch_pool", "inception_3a"]
    assert s["inception_3a"].kind == "concat"
    assert s["inception_3a/branch_5x5"].params == 192 * 16 + 16 + 25 * 16 * 32 + 32
    assert s.total_params == inception_counts(192, 64, 96, 128, 16, 32, 32)[0] + 368


def test_gradient_nodes_and_constants_are_not_counted():
    with mg.Graph() as g:
        x = mg.placeholder((None, 8), name="x")
        y = mg.layers.dense(x, 4, activation="relu", name="fc")
        loss = mg.ops.sum(mg.ops.mul(y, 2.0, name="double"), name="loss")
        grads = mg.gradients(loss, [g.get("fc/weights")])
        s_fwd = mg.summary(loss)
        s_all = mg.summary(g)
        s_with_grads = mg.summary([loss, *grads])
    assert [r.name for r in s_fwd.rows] == ["x", "fc", "double", "loss"]
    for s in (s_all, s_with_grads):
        assert [r.name for r in s.rows] == ["x", "fc", "double", "loss"]
        assert s.total_macs == 8 * 4 and s.total_params == 36


def test_str_and_to_dict(googlenet_summary):
    text = str(googlenet_summary)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["name", "kind"]
    row = next(line for line in lines if line.startswith("inception_3a"))
    assert "256 x 28 x 28" in row and "163,696" in row and "128,049,152" in row
    assert lines[-1].startswith("total") and f"{googlenet_summary.total_macs:,}" in lines[-1]
    widths = {len(line) for line in lines if set(line) != {"-"}}
    assert max(widths) == len(lines[1])                       # rule as wide as the widest line
    d = json.loads(json.dumps(googlenet_summary.to_dict()))
    assert d["total_params"] == googlenet_summary.total_params
    assert d["rows"][1] == {"name": "conv1", "kind": "conv2d", "output_shape": [None, 64, 112, 112],
                            "params": 9472, "macs": 118_013_952, "unshared_params": 112 * 112 * 9472}
    assert d["total_unshared_params"] == googlenet_summary.total_unshared_params
    assert "unshared" not in lines[0]


def test_table_with_the_unshared_column(googlenet_summary):
    lines = googlenet_summary.table(unshared=True).splitlines()
    assert lines[0].split() == ["name", "kind", "output", "(C", "x", "H", "x", "W)", "params", "params",
                                "unshared", "MACs"]
    row = next(line for line in lines if line.startswith("conv1 "))
    assert row.split()[-3:] == ["9,472", f"{112 * 112 * 9472:,}", "118,013,952"]
    assert lines[-1].split() == ["total", "6,998,552", f"{googlenet_summary.total_unshared_params:,}",
                                 "1,582,671,872"]
    widths = {len(line) for line in lines if set(line) != {"-"}}
    assert max(widths) == len(lines[1])


def test_bad_arguments():
    with mg.Graph():
        x = mg.placeholder((None, 3))
        with pytest.raises(ValueError, match="depth"):
            mg.summary(x, depth=0)
    with pytest.raises(TypeError, match="summary expects a Graph, a node or a non-empty list of nodes"):
        mg.summary([])
    with pytest.raises(KeyError, match="no row named"):
        with mg.Graph():
            mg.summary(mg.placeholder((None, 3), name="x"))["nope"]


def test_numpy_free_ints(googlenet_summary):
    assert all(type(r.params) is int and type(r.macs) is int for r in googlenet_summary.rows)
    assert not isinstance(googlenet_summary.total_macs, np.generic)


class _Cells(__import__("html.parser").parser.HTMLParser):
    """The text of every <th>/<td>, row by row, and the style of each cell."""

    def __init__(self):
        super().__init__()
        self.rows, self.styles, self.cell = [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
            self.styles.append([])
        elif tag in ("td", "th"):
            self.cell = ""
            self.styles[-1].append(dict(attrs).get("style", ""))

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[-1].append(self.cell)
            self.cell = None


def expected_cells(s):
    return ([["name", "kind", "output (C x H x W)", "params", "MACs"]]
            + [[r.name, r.kind, " x ".join(map(str, r.output_shape[1:])) if len(r.output_shape) > 1
                else str(r.output_shape[0]), f"{r.params:,}", f"{r.macs:,}"] for r in s.rows]
            + [["total", "", "", f"{s.total_params:,}", f"{s.total_macs:,}"]])


def test_html_table_for_jupyter(googlenet_summary):
    parser = _Cells()
    parser.feed(googlenet_summary._repr_html_())
    assert parser.rows == expected_cells(googlenet_summary)
    assert all(styles[3:] == ["text-align: right"] * 2 and styles[0] == "" for styles in parser.styles)


def test_html_escapes_and_markdown_quotes_what_the_cells_hold():
    from minigraph.summary import Row, Summary
    s = Summary([Row("a<b>&c", "x|y", (None, 3), 1, 2, 5)])  # names from the graph never hold these; kinds may
    assert "| a&lt;b&gt;&amp;c | x\\|y |" in s.to_markdown()
    html = s.to_html()
    assert "a&lt;b&gt;&amp;c" in html and "a<b>" not in html
    parser = _Cells()
    parser.feed(html)
    assert parser.rows[1][0] == "a<b>&c"


def test_markdown_and_text_forms(googlenet_summary):
    md = googlenet_summary._repr_markdown_().splitlines()
    assert md[1] == "| --- | --- | --- | ---: | ---: |"
    cells = [[c.strip().strip("*") for c in line.strip("|").split(" | ")] for line in md[:1] + md[2:]]
    assert cells == expected_cells(googlenet_summary)

    class Printer:
        text_out = ""

        def text(self, t):
            self.text_out += t
    p = Printer()
    googlenet_summary._repr_pretty_(p, False)
    assert p.text_out == str(googlenet_summary)
# ---------------------------------------------------------------------------------
# parameters without weight sharing (the seed's section 5.4 / 5.5)


def seed_layer(padding):
    """The seed's example: 32x32x3 input, 20 filters of 8x8x3, stride 2, with `padding`."""
    with mg.Graph():
        x = mg.placeholder((None, 3, 32, 32), name="input")
        with mg.name_scope("conv"):
            w = mg.variable(np.zeros((20, 3, 8, 8), "float32"), name="weights")
            b = mg.variable(np.zeros(20, "float32"), name="bias")
            y = mg.ops.conv2d(x, w, b, stride=2, padding=padding)
        return y, mg.summary(y)


def test_the_seeds_sharing_example():
    """(32 - 8 + 2*1)/2 + 1 = 14: 14x14x20 outputs, each with 8*8*3 weights + 1 bias unshared."""
    y, s = seed_layer(1)
    assert y.shape == (None, 20, 14, 14)
    assert s["conv"].params == (8 * 8 * 3 + 1) * 20 == 3_860
    assert s["conv"].unshared_params == (8 * 8 * 3 + 1) * (14 * 14 * 20) == 756_560
    assert s["input"].unshared_params == 0
    assert (s.total_params, s.total_unshared_params) == (3_860, 756_560)
    assert y.op.cost(y).unshared_params == 756_560
    y, s = seed_layer("VALID")  # (32 - 8)/2 + 1 = 13
    assert y.shape == (None, 20, 13, 13)
    assert (s["conv"].params, s["conv"].unshared_params) == (3_860, (8 * 8 * 3 + 1) * 13 * 13 * 20) == (3_860, 652_340)


def unshared_conv(k, c, f, hw):
    """A k x k conv from c to f channels at an hw x hw output, without sharing: every output
    unit has its own k*k*c weights and bias."""
    return hw * hw * f * (k * k * c + 1)


def test_googlenet_total_with_and_without_sharing(googlenet_summary):
    expected = {
        "conv1": unshared_conv(7, 3, 64, 112),
        "conv2": unshared_conv(1, 64, 64, 56) + unshared_conv(3, 64, 192, 56),
        "fc": 1024 * 1000 + 1000,  # a dense layer shares nothing: the same both ways
    }
    for name, (c_in, hw, c1, c3r, c3, c5r, c5, pp) in TABLE1.items():
        expected[name] = (unshared_conv(1, c_in, c1, hw) + unshared_conv(1, c_in, c3r, hw)
                          + unshared_conv(3, c3r, c3, hw) + unshared_conv(1, c_in, c5r, hw)
                          + unshared_conv(5, c5r, c5, hw) + unshared_conv(1, c_in, pp, hw))
    s = googlenet_summary
    for row in s.rows:
        assert row.unshared_params == expected.get(row.name, 0), row.name
    assert s.total_params == 6_998_552
    assert s.total_unshared_params == sum(expected.values()) == 1_585_899_032


def test_unshared_counts_tied_filters_per_use_and_dense_weights_once():
    with mg.Graph():
        x = mg.placeholder((None, 2, 6, 6), name="x")
        w = mg.variable(np.zeros((3, 2, 3, 3), "float32"), name="w")      # one filter, two convs
        with mg.name_scope("a"):
            a = mg.ops.conv2d(x, w, padding="VALID")                          # 3 x 4 x 4
        with mg.name_scope("b"):
            b = mg.ops.conv2d(x, w, stride=2, padding="SAME")                 # 3 x 3 x 3
        with mg.name_scope("free"):
            f = mg.ops.conv2d(x, mg.placeholder((3, 2, 3, 3), name="k"))     # a fed filter: no parameters
        h = mg.layers.dense(mg.ops.concat([mg.ops.flatten(a), mg.ops.flatten(b)], axis=1), 5, name="fc")
        s = mg.summary([h, f])
    assert s["w"].params == 54 and s["w"].unshared_params == 0               # counted where it is used
    assert s["a"].unshared_params == 54 * 16 and s["b"].unshared_params == 54 * 9
    assert s["free"].params == s["free"].unshared_params == 0
    assert s["fc"].params == s["fc"].unshared_params == (48 + 27) * 5 + 5
    assert s.total_unshared_params == 54 * 25 + 380


def test_summary_unshared_command(capsys):
    from minigraph.cli import main
    assert main(["summary", "googlenet", "--unshared"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "params unshared" in lines[0]
    assert lines[-1].split()[-2] == "1,585,899,032"
