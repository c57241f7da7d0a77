"""`minigraph render` and `minigraph summary`."""
import json
import os
import re
import subprocess
import sys

import pytest

from minigraph.cli import main


def test_render_inception_default_svg_in_the_current_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["render", "inception"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == "inception_3a.svg"
    text = (tmp_path / out).read_text()
    assert text.lstrip().startswith("<?xml") and "inception (3a)" in text and "filter concat" in text


def test_render_googlenet_collapsed_png(tmp_path, capsys):
    target = tmp_path / "g.png"
    assert main(["render", "googlenet", "--collapse", "--aux", "-o", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    assert target.read_bytes()[:4] == b"\x89PNG"


def test_render_optimized_draws_the_fused_graph(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["render", "inception", "--optimized", "-o", "opt.gv"]) == 0
    opt = (tmp_path / "opt.gv").read_text()
    assert main(["render", "inception", "-o", "plain.gv"]) == 0
    plain = (tmp_path / "plain.gv").read_text()
    assert "after mg.optimize" in opt and "after mg.optimize" not in plain
    # the fused convs carry their ReLU; the plain diagram folds a separate ReLU node into each box
    assert opt.count("+ReLU") == plain.count("+ReLU") == 6
    assert main(["render", "googlenet", "--optimized", "--collapse"]) == 0
    assert capsys.readouterr().out.strip().endswith("googlenet_collapsed_optimized.svg")


def test_render_googlenet_defaults_name_the_variant(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["render", "googlenet", "--collapse", "-o", "net.gv"]) == 0
    src = (tmp_path / "net.gv").read_text()
    assert "inception (5b)" in src and "aux1" not in src and "subgraph cluster" not in src
    capsys.readouterr()
    assert main(["render", "googlenet", "--collapse"]) == 0
    assert capsys.readouterr().out.strip() == "googlenet_collapsed.svg"


def test_summary_table_and_json(capsys):
    assert main(["summary", "googlenet"]) == 0
    table = capsys.readouterr().out
    assert "inception_3a" in table and "163,696" in table and table.splitlines()[-1].startswith("total")
    assert main(["summary", "googlenet", "--json", "--aux"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = [r["name"] for r in data["rows"]]
    assert "aux1" in names and "aux2" in names
    assert data["total_params"] == sum(r["params"] for r in data["rows"])
    assert data["rows"][1]["macs"] == 112 * 112 * 64 * 7 * 7 * 3


def test_render_without_dot_fails_cleanly(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert main(["render", "inception", "-o", str(tmp_path / "m.svg")]) == 2
    err = capsys.readouterr().err
    assert "install Graphviz" in err and str(tmp_path / "m.gv") in err
    assert (tmp_path / "m.gv").exists()


def test_the_installed_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "minigraph", "render", "inception", "-o", str(tmp_path / "i.svg")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "i.svg")


def test_render_inception_collapse_is_honoured_and_googlenet_flags_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["render", "inception", "--collapse", "-o", "c.gv"]) == 0
    assert main(["render", "inception", "-o", "full.gv"]) == 0
    collapsed, full = (tmp_path / "c.gv").read_text(), (tmp_path / "full.gv").read_text()
    assert "subgraph cluster" in full and "subgraph cluster" not in collapsed
    assert "3×3 max pool → 1×1" in collapsed and "filter concat" not in collapsed
    capsys.readouterr()
    assert main(["render", "inception", "--collapse"]) == 0
    assert capsys.readouterr().out.strip() == "inception_3a_collapsed.svg"
    for flag in ("--aux", "--batch-norm"):
        with pytest.raises(SystemExit) as stop:
            main(["render", "inception", flag])
        assert stop.value.code == 2
        assert f"{flag} is for googlenet" in capsys.readouterr().err


def test_collapsed_googlenet_svg_is_drawn_at_natural_size(tmp_path):
    """Readable at 100% zoom: the drawing is not scaled down to a page (dot's root transform
    says scale(1 1)) and the branch headings are 10-point text."""
    target = tmp_path / "g.svg"
    assert main(["render", "googlenet", "--collapse", "--aux", "-o", str(target)]) == 0
    svg = target.read_text()
    assert re.search(r'class="graph" transform="scale\(1 1\)', svg)
    sizes = {float(v) for v in re.findall(r'font-size="([0-9.]+)"', svg)}
    assert min(sizes) >= 8.5 and 10.0 in sizes


def test_render_and_summary_of_batch_normalised_googlenet(tmp_path, capsys):
    assert main(["render", "googlenet", "--batch-norm", "-o", str(tmp_path / "bn.gv")]) == 0
    src = (tmp_path / "bn.gv").read_text()
    assert src.count("+BN+ReLU") == 57 and "label=LRN" not in src
    capsys.readouterr()
    assert main(["summary", "googlenet", "--batch-norm", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["conv1"]["params"] == 64 * 3 * 7 * 7 + 4 * 64    # no bias; gamma, beta, two moving averages
    assert "norm1" not in rows


def test_demo_diagrams_draw_the_aux_classifiers_and_name_the_input_as_the_docs_do(tmp_path, capsys):
    from minigraph.demo import draw_diagrams
    files = dict(draw_diagrams(str(tmp_path)))
    module = open(files["Inception module diagram"]).read()
    net = open(files["GoogLeNet diagram"]).read()
    assert "previous layer" in module and ">input<" not in module
    assert "aux1" in net and "aux2" in net
    printed = capsys.readouterr().out
    assert "aux1" not in printed and "inception_5b" in printed   # Table 1 has no side classifiers


# --- any ONNX model, folding, diffs -------------------------------------------------------

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "onnx", "inception_torchscript.onnx")


def test_render_and_summary_of_an_onnx_file(tmp_path, capsys):
    pytest.importorskip("onnx")
    target = tmp_path / "m.gv"
    assert main(["render", FIXTURE, "-o", str(target)]) == 0
    src = target.read_text()
    assert "inception (a)" in src and "conv 3×3/1, 6, dilation 2" in src and "16×8×8" in src
    assert "tensor shape C×H×W" in src  # the legend
    capsys.readouterr()
    assert main(["summary", FIXTURE]) == 0
    table = capsys.readouterr().out
    lines = {line.split()[0]: line for line in table.splitlines()[2:-2]}
    assert lines["stem"].split()[-2:] == ["448", "110,592"] and "inception" in lines["inception_a"]
    assert table.splitlines()[-1].split()[-2:] == ["8,314", "573,760"]   # the batch norm: 4 x 32


def test_render_fold_repeats_and_default_name(tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnx")
    monkeypatch.chdir(tmp_path)
    assert main(["render", FIXTURE, "--collapse", "--fold-repeats"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.endswith("inception_torchscript_collapsed_folded.svg")
    assert "blocks.0 … blocks.2 ×3" in open(out).read()


def test_diff_of_two_models(tmp_path, capsys):
    pytest.importorskip("onnx")
    exported = str(tmp_path / "googlenet.onnx")
    assert main(["export", "googlenet", "-o", exported]) == 0
    capsys.readouterr()
    assert main(["diff", "googlenet", exported, "-o", str(tmp_path / "d.gv")]) == 0
    report = capsys.readouterr().out
    assert report.startswith("0 added, 3 removed, 1 changed") and "~ dropout/dropout: mul → identity" in report
    assert "- first_example" in report  # dropout's example index: a training input, not exported
    assert "googlenet → googlenet: 0 added" in (tmp_path / "d.gv").read_text()


def test_unknown_network_is_an_argument_error(capsys):
    with pytest.raises(SystemExit):
        main(["render", "resnet"])
    assert "choose one of inception, googlenet, mini_inception or an .onnx file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["summary", "missing.onnx"])
    assert "no ONNX file at missing.onnx" in capsys.readouterr().err


def test_bad_arguments_are_one_line_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["render", "inception", "-o", "x.bogus"]) == 2
    assert "cannot tell the format from 'x.bogus'" in capsys.readouterr().err
    import pytest
    with pytest.raises(SystemExit):
        main(["demo", "--epochs", "0"])
    assert "--epochs: must be a positive integer, got 0" in capsys.readouterr().err


def test_summary_and_render_of_a_file_with_a_negative_dimension_read_it_as_unknown(tmp_path, capsys):
    """`minigraph export --batch -1` used to write such a file (a ValueError traceback then)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="/relu")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 1, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "xm.onnx"
    onnx.save(model, str(path))
    for command in (["summary", str(path)], ["render", str(path), "-o", str(tmp_path / "xm.gv")]):
        assert main(command) == 0
        out, err = capsys.readouterr()
        assert err == "" and out
    assert "relu" in (tmp_path / "xm.gv").read_text().lower()


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_reader_that_went_away_does_not_stop_the_command(tmp_path, stream):
    """`minigraph ... | head -1`: once a BrokenPipeError traceback, and `evaluate --out` lost
    its picture. Here the reader is gone before the command starts."""
    read, write = os.pipe()
    os.close(read)
    out = tmp_path / "inception.svg"
    cmd = [sys.executable, "-m", "minigraph", "render", "inception", "-o", str(out)]
    if stream == "stderr":  # an error message to a closed stderr
        cmd = [sys.executable, "-m", "minigraph", "render", "inception", "-o", str(tmp_path / "x.bogus")]
    done = subprocess.run(cmd, stdout=write if stream == "stdout" else subprocess.PIPE,
                          stderr=write if stream == "stderr" else subprocess.PIPE, text=True, timeout=120)
    os.close(write)
    if stream == "stdout":
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
        assert out.read_text().lstrip().startswith("<?xml")
    else:
        assert done.returncode == 2 and "Traceback" not in done.stdout
