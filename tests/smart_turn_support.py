"""Tiny synthetic Smart Turn models with the documented tensor names, shapes and dtypes.

Each model computes ``sigmoid(scale * mean(features[:, :, -frames:]) + bias)``
from ``input_features`` float32 ``[batch, 80, 800]`` and returns it as
``logits`` float32 ``[batch, 1]``, as the published v3 files do. ``scale=0``
makes a model that always answers ``sigmoid(bias)``. Nothing here is a real
turn model: the tests check the plumbing, not accuracy.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def logit(p: float) -> float:
    """The bias that makes a ``scale=0`` model answer ``p``."""
    return math.log(p / (1 - p))


def write_model(
    path: Path,
    *,
    frames: int = 800,
    scale: float = 1.0,
    bias: float = 0.0,
    input_name: str = "input_features",
    input_shape: tuple[str | int, ...] = ("batch", 80, 800),
) -> Path:
    """Write the model to ``path`` and return it."""
    consts = [
        numpy_helper.from_array(np.array([-frames], dtype=np.int64), "starts"),
        numpy_helper.from_array(np.array([800], dtype=np.int64), "ends"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axes"),
        numpy_helper.from_array(np.array(scale, dtype=np.float32), "scale"),
        numpy_helper.from_array(np.array(bias, dtype=np.float32), "bias"),
    ]
    nodes = [
        helper.make_node("Slice", [input_name, "starts", "ends", "axes"], ["tail"]),
        helper.make_node("ReduceMean", ["tail"], ["mean"], axes=[1, 2], keepdims=1),
        helper.make_node("Mul", ["mean", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "bias"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["p"]),
        helper.make_node("Flatten", ["p"], ["logits"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "smart_turn_stand_in",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1])],
        consts,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def sigmoid(x: float) -> float:
    """The logistic function."""
    return 1.0 / (1.0 + math.exp(-x))
