"""`minigraph export`: GoogLeNet, and mini_inception trained by `minigraph train`, checked in onnxruntime."""
import os
import re

import numpy as np
import pytest

import minigraph as mg
from minigraph.cli import main
from minigraph.train import build_digits_model

onnx = pytest.importorskip("onnx")


def test_export_mini_inception_trained_by_minigraph_train(tmp_path, kit, capsys):
    run = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--train-limit", "96", "--batch-size", "32", "--out", str(run),
                 "--no-progress"]) == 0
    target = tmp_path / "digits.onnx"
    assert main(["export", "mini_inception", "--checkpoint", str(run / "checkpoint.npz"), "-o", str(target)]) == 0
    assert capsys.readouterr().out.strip().endswith(str(target))
    model = build_digits_model(0)
    sess = mg.Session(model.logits.graph)
    mg.restore(sess, str(run / "checkpoint.npz"))
    x = mg.data.digits().x_test[:64]
    expected = sess.run(model.logits, {model.x: x})
    logits, probs = kit.run(str(target), x)
    assert kit.rel_err(logits, expected) <= 1e-5
    np.testing.assert_array_equal(probs.argmax(axis=1), expected.argmax(axis=1))
    fresh = mg.Session(build_digits_model(0).logits.graph)
    assert not np.allclose(expected, fresh.run(fresh.graph.get("fc/add"), {fresh.graph.get("x"): x}), atol=1e-4), \
        "the checkpoint's trained weights were exported, not the initial ones"


def test_a_checkpoint_of_another_network_is_a_short_error_naming_the_model_it_was_trained_as(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--train-limit", "32", "--batch-size", "32", "--out", str(run),
                 "--no-progress"]) == 0
    capsys.readouterr()
    checkpoint = str(run / "checkpoint.npz")
    assert main(["export", "googlenet", "--checkpoint", checkpoint, "-o", str(tmp_path / "g.onnx")]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) <= 2 + 3 * 6 and "Traceback" not in err, err  # headline, 5 + "... and N more" of each kind, hint
    assert re.match(rf"minigraph: error: {re.escape(checkpoint)} does not match the session's variables "
                    r"\(\d+ differences: \d+ missing from the checkpoint, .*\d+ not in the graph\):$", lines[0]), lines[0]
    assert "  missing from the checkpoint: 'conv1/weights' (64, 3, 7, 7) float32" in lines
    assert any(re.fullmatch(r"  \.\.\. and \d+ more missing from the checkpoint", line) for line in lines)
    assert lines[-1] == ("this checkpoint was written by `minigraph train --model mini_inception`, not for googlenet "
                         "(try `mini_inception` instead of `googlenet`)")
    assert not os.path.exists(tmp_path / "g.onnx")
    # a checkpoint of the right network that does not match (no model named in its metadata) gets no hint
    sess = mg.Session(build_digits_model(1).logits.graph)
    mg.save(sess, tmp_path / "plain.npz", metadata={"epoch": 1})
    assert main(["export", "googlenet", "--checkpoint", str(tmp_path / "plain.npz"), "-o", str(tmp_path / "g.onnx")]) == 2
    assert "minigraph train --model" not in capsys.readouterr().err


@pytest.mark.parametrize("config, hint", [
    ({"model": "googlenet", "data": "/photos"}, "this checkpoint was written by `minigraph train --model googlenet "
     "--data /photos`; the built-in networks are sized for the digits (mini_inception) and ImageNet (inception, "
     "googlenet), so its weights fit none of them"),
    ({"model": "googlenet", "data": None}, "this checkpoint was written by `minigraph train --model googlenet`, "
     "not for inception"),  # no "try googlenet": the built-in one is ImageNet's, not the digits'
])
def test_the_hint_suggests_a_network_only_when_it_would_fit(tmp_path, capsys, config, hint):
    sess = mg.Session(build_digits_model(1).logits.graph)
    mg.save(sess, tmp_path / "c.npz", metadata={"config": config})
    target = "googlenet" if config["data"] else "inception"
    assert main(["export", target, "--checkpoint", str(tmp_path / "c.npz"), "-o", str(tmp_path / "g.onnx")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == hint


def test_export_googlenet_default_name_and_fixed_batch(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "googlenet", "--batch", "4", "--opset", "18"]) == 0
    assert capsys.readouterr().out.strip() == "googlenet.onnx"
    model = onnx.load(str(tmp_path / "googlenet.onnx"))
    assert model.opset_import[0].version == 18
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4
    assert [o.name for o in model.graph.output] == ["logits", "probs"]


def test_export_errors_are_clean(tmp_path, capsys):
    assert main(["export", "googlenet", "--checkpoint", str(tmp_path / "none.npz"), "-o", str(tmp_path / "g.onnx")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "g.onnx")
    newest = onnx.defs.onnx_opset_version()
    for flags, message in ((["--opset", "9"], f"argument --opset: opset must be an int from 13 .* to {newest} "),
                           (["--opset", "99"], f"argument --opset: opset must be an int from 13 .* to {newest} "),
                           (["--opset", "x"], "argument --opset: must be an integer, got x"),
                           (["--batch", "-1"], "argument --batch: must be a positive integer, got -1"),
                           (["--batch", "0"], "argument --batch: must be a positive integer, got 0")):
        with pytest.raises(SystemExit) as info:
            main(["export", "mini_inception", *flags, "-o", str(tmp_path / "g.onnx")])
        err = capsys.readouterr().err
        assert info.value.code == 2 and re.search(message, err) and "Traceback" not in err, (flags, err)
    assert not os.path.exists(tmp_path / "g.onnx")


def test_opset_flag_without_the_onnx_package_checks_the_lower_bound(tmp_path, monkeypatch, capsys):
    from minigraph.onnx import exporter

    def missing():
        raise mg.onnx.OnnxUnavailableError("ONNX support needs the onnx package: pip install 'minigraph[onnx]'")
    monkeypatch.setattr(exporter, "require_onnx", missing)
    with pytest.raises(SystemExit) as info:
        main(["export", "mini_inception", "--opset", "9", "-o", str(tmp_path / "g.onnx")])
    assert info.value.code == 2 and "argument --opset: must be >= 13" in capsys.readouterr().err
    assert main(["export", "mini_inception", "--opset", "99", "-o", str(tmp_path / "g.onnx")]) == 2
    assert "minigraph: error: ONNX support needs the onnx package" in capsys.readouterr().err
