"""Localization: an INT8 model with a deliberately broken node is localized to that node."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from optieval.parity.localize import (
    Localization,
    expose_intermediates,
    localize_models,
    map_tensors,
)
from optieval.parity.tolerances import ToleranceSet
from tests.parity.parity_helpers import break_weight, make_deep_mlp, quantize_int8


@pytest.fixture(scope="module")
def int8_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("loc")
    fp32 = make_deep_mlp(folder / "m.onnx")
    return fp32, quantize_int8(fp32, folder / "m.int8.onnx")


def _batches() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(5)
    return [{"x": rng.normal(size=(8, 8)).astype(np.float32)} for _ in range(2)]


def test_healthy_int8_has_no_breaking_node(int8_pair: tuple[Path, Path]) -> None:
    fp32, int8 = int8_pair
    loc = localize_models(
        onnx.load(fp32), onnx.load(int8), _batches(), tolerances=ToleranceSet("int8")
    )
    assert loc.first_bad_nodes == () and loc.compared == 7 and loc.unmatched == 0
    assert loc.samples == 16


@pytest.mark.parametrize("broken", ["fc1", "fc2"])
def test_broken_node_is_localized(
    int8_pair: tuple[Path, Path], tmp_path: Path, broken: str
) -> None:
    fp32, int8 = int8_pair
    weight = f"w{broken[-1]}_quantized"
    bad = break_weight(int8, weight, tmp_path / "bad.onnx")
    loc = localize_models(
        onnx.load(fp32), onnx.load(bad), _batches(), tolerances=ToleranceSet("int8")
    )
    assert loc.first_bad_nodes == (broken,)
    assert loc.exclude == (broken,)
    assert loc.exclude_args() == f"--exclude {broken}"
    by_node = {n.node: n for n in loc.nodes}
    assert by_node[broken].breaks and not by_node[broken].passed
    # Downstream nodes inherit the error: they fail but do not break.
    assert not by_node["fc3"].passed and not by_node["fc3"].breaks
    assert Localization.from_json(loc.to_json()) == loc


def test_expose_and_map_see_through_qdq(int8_pair: tuple[Path, Path]) -> None:
    fp32, int8 = int8_pair
    ref, cand = onnx.load(fp32), onnx.load(int8)
    exposed = expose_intermediates(cand)
    names = {o.name for o in exposed.graph.output}
    assert "h0" in names and not any(n.endswith("_QuantizeLinear_Output") for n in names)
    mapping = map_tensors(ref, cand)
    assert mapping["h0"] == "h0" and mapping["logits"] == "logits"


def test_cast_is_seen_through() -> None:
    from onnx import TensorProto, helper

    def model(nodes: list[onnx.NodeProto]) -> onnx.ModelProto:
        g = helper.make_graph(
            nodes,
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        )
        return helper.make_model(g)

    ref = model(
        [
            helper.make_node("Relu", ["x"], ["h"], name="r"),
            helper.make_node("Neg", ["h"], ["y"], name="n"),
        ]
    )
    # The candidate renamed h: a Cast chain from it stands for it.
    cand = model(
        [
            helper.make_node("Relu", ["x"], ["h"], name="r"),
            helper.make_node("Cast", ["h"], ["h16"], to=TensorProto.FLOAT16),
            helper.make_node("Cast", ["h16"], ["h32"], to=TensorProto.FLOAT),
            helper.make_node("Neg", ["h32"], ["y"], name="n"),
        ]
    )
    assert map_tensors(ref, cand) == {"h": "h", "y": "y"}
    cand2 = model(
        [
            helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16),
            helper.make_node("Relu", ["x16"], ["h_"], name="r"),
            helper.make_node("Cast", ["h_"], ["y"], to=TensorProto.FLOAT),
        ]
    )
    assert map_tensors(ref, cand2)["y"] == "y"
    assert map_tensors(ref, cand2)["x"] == "x16"
