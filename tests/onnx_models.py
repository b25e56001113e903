"""Tiny ONNX models built by hand, as a user might bring: a projection of the pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def projection_model(
    path: Path, weights: np.ndarray, *, input_shape: list[int | str], bias: float = 0.1
) -> Path:
    """``features = relu(flatten(x) @ weights + bias * [1, 2, ...])`` and softmax ``probabilities``.

    Outputs: ``probabilities`` (2-D, last) and ``features`` is an inner tensor, so the
    default (the last 2-D output) reads probabilities and ``output="features"`` the inside.
    """
    width = weights.shape[1]
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["projected"]),
        helper.make_node("Add", ["projected", "b"], ["shifted"]),
        helper.make_node("Relu", ["shifted"], ["features"]),
        helper.make_node("Softmax", ["features"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "projection",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", width])],
        [
            numpy_helper.from_array(weights.astype(np.float32), "w"),
            numpy_helper.from_array(bias * np.arange(1, width + 1, dtype=np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path
