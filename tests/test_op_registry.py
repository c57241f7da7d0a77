"""The op registry and what ops declare about themselves (metadata other layers read)."""
import ast
import dataclasses
import pathlib
from typing import ClassVar

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops
from minigraph.op import Op
from minigraph.viz import styles

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_op_class_is_registered_under_its_kind():
    reg = ops.registry()
    for kind in ["conv2d", "conv1x1", "max_pool", "avg_pool", "concat", "relu", "matmul", "placeholder",
                 "variable", "constant", "dropout_mask", "apply_adam", "assign", "local_response_norm"]:
        assert reg[kind].kind == kind
    assert list(reg) == sorted(reg)
    assert all(issubclass(cls, Op) and cls.kind == kind for kind, cls in reg.items())
    assert ops.op_class("conv2d") is reg["conv2d"]
    with pytest.raises(KeyError, match=r"no op of kind 'conv2' .*did you mean 'conv2d'"):
        ops.op_class("conv2")


def test_a_second_class_claiming_a_kind_fails_when_it_is_defined():
    with pytest.raises(TypeError, match="op kind 'relu' of .*Impostor is already registered by minigraph.ops.elementwise.Relu"):
        @dataclasses.dataclass(frozen=True)
        class Impostor(Op):
            kind: ClassVar[str] = "relu"


def test_a_user_op_registers_with_one_class_and_runs():
    @dataclasses.dataclass(frozen=True)
    class Cube(Op):
        kind: ClassVar[str] = "test_registry_cube"

        def infer(self, x):
            return x

        def forward(self, xp, x):
            return x * x * x

        def gradient(self, node, g):
            x = node.inputs[0]
            return [g * x * x * 3.0]

    assert ops.registry()["test_registry_cube"] is Cube
    node, value = mg.testing.evaluate(lambda x: mg.apply(Cube(), [x]), np.array([1.0, 2.0]))
    np.testing.assert_array_equal(value, [1.0, 8.0])
    mg.testing.gradcheck(lambda x: mg.apply(Cube(), [x]), [np.array([0.5, -1.5])])


def test_declarations_are_consistent():
    for kind, cls in ops.registry().items():
        assert cls.category in styles.CATEGORIES, kind
        assert cls.role in {"compute", "activation", "bias", "reshape", "identity", "helper", "param"}, kind
        if cls.side_effects:
            assert not cls.pure, kind
        if not cls.deterministic:
            assert not cls.pure, kind  # a random op reads the generator: never merged or folded
        if cls.fusable_activation:
            assert cls.role == "activation", kind
        if cls.state_slots is not Op.state_slots:  # it writes session state
            assert cls.side_effects, kind


def _kind_tests(path: pathlib.Path, kinds):
    """Comparisons of something's `.kind` with an op kind's name (or a collection holding one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        names = {c.value for s in sides for c in ast.walk(s) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
        if any(isinstance(s, ast.Attribute) and s.attr == "kind" for s in sides) and names & kinds:
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_module_outside_ops_decides_behaviour_by_testing_kinds(tmp_path):
    """Layers outside ops/ read what ops declare (role, category, flags), never `node.kind == ...`."""
    offenders = []
    kinds = set(ops.registry())
    for folder in ("minigraph", "viz"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            offenders += _kind_tests(path, kinds)
    assert offenders == []
    assert _kind_tests(ROOT / "tests" / "test_op_registry.py", {"relu"}) == []  # the check itself
    probe = tmp_path / "probe.py"
    probe.write_text("def f(node):\n    return node.kind == 'relu' or node.kind in ('conv2d', 'x')\n")
    assert len(_kind_tests(probe, kinds)) == 2  # and it finds what it must
