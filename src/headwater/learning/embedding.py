"""Feature vectors from an ONNX model's penultimate layer, run by ONNX Runtime in batches.

An image's embedding is what the network knows about it just before it decides:
the activations feeding the last linear layer. Headwater's own models (a run's
``model.onnx``) output probabilities only, so :func:`penultimate_graph` exposes the
input of the graph's last ``Gemm``/``MatMul`` as an extra output. A model a user
brings names the output to read (``output=``), or gives its last 2-D output.

Images go in as float32 in 0..1 (uint8 pixels divided by 255, the scale Headwater's
models train on), shaped for the model's input: flat rows ``(n, h*w*c)``, or
channels-first / channels-last 4-D tensors, grey or RGB converted as the model asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort

from headwater.errors import ConfigError, FormatError

__all__ = ["PENULTIMATE", "FeatureModel", "feature_model", "penultimate_graph"]

PENULTIMATE = "headwater_penultimate"
"""The output :func:`penultimate_graph` adds."""

_LINEAR = ("Gemm", "MatMul")
Pixels = npt.NDArray[np.generic]


def penultimate_graph(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto`` with the input of its last linear node exposed as output ``PENULTIMATE``."""
    linear = [node for node in proto.graph.node if node.op_type in _LINEAR]
    if not linear:
        raise FormatError("the model has no Gemm or MatMul node: no penultimate layer to read")
    return _expose(proto, linear[-1].input[0])


def _expose(proto: onnx.ModelProto, tensor: str) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    out.graph.node.append(onnx.helper.make_node("Identity", [tensor], [PENULTIMATE]))
    out.graph.output.append(
        onnx.helper.make_tensor_value_info(PENULTIMATE, onnx.TensorProto.FLOAT, None)
    )
    return out


def _chosen_output(proto: onnx.ModelProto, output: str | None) -> tuple[onnx.ModelProto, str]:
    """The output named (a graph output or any tensor inside), else the last 2-D output."""
    outputs = [o.name for o in proto.graph.output]
    if output is not None:
        if output in outputs:
            return proto, output
        inside = {name for node in proto.graph.node for name in node.output}
        if output not in inside:
            known = ", ".join(outputs + sorted(inside)[:20])
            raise ConfigError(f"the model has no tensor {output!r}; it has: {known}")
        exposed = _expose(proto, output)
        return exposed, PENULTIMATE
    flat = [o.name for o in proto.graph.output if len(o.type.tensor_type.shape.dim) == 2]
    if not flat:
        raise ConfigError(
            f"the model has no 2-D output (it has {', '.join(outputs)}); name the "
            "penultimate tensor to read with --output NAME"
        )
    return proto, flat[-1]


@dataclass
class FeatureModel:
    """An ONNX Runtime session and the one output read from it, fed images in batches."""

    session: ort.InferenceSession
    output: str
    batch_rows: int = 256

    @property
    def input_shape(self) -> list[int | str | None]:
        return list(self.session.get_inputs()[0].shape)

    def features(self, images: Pixels) -> npt.NDArray[np.float32]:
        """``(n, width)`` float32 vectors for images ``(n, h, w, c)``, ``batch_rows`` at a time."""
        name = self.session.get_inputs()[0].name
        parts = []
        for start in range(0, len(images), self.batch_rows):
            batch = model_input(images[start : start + self.batch_rows], self.input_shape)
            (out,) = self.session.run([self.output], {name: batch})
            parts.append(np.asarray(out, dtype=np.float32).reshape(len(batch), -1))
        if not parts:
            return np.zeros((0, 0), np.float32)
        return np.concatenate(parts)


def feature_model(
    data: bytes, *, output: str | None = None, own: bool = False, batch_rows: int = 256
) -> FeatureModel:
    """A `FeatureModel` over ONNX bytes; ``own``: a Headwater run's graph (penultimate found)."""
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends share no base class
        raise FormatError(f"not an ONNX model: {exc}") from exc
    if own and output is None:
        proto, chosen = penultimate_graph(proto), PENULTIMATE
    else:
        proto, chosen = _chosen_output(proto, output)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            proto.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped Fail/InvalidGraph
        raise FormatError(f"ONNX Runtime cannot load the model: {exc}") from exc
    return FeatureModel(session, chosen, batch_rows)


def model_input(images: Pixels, shape: Sequence[int | str | None]) -> npt.NDArray[np.float32]:
    """Images ``(n, h, w, c)`` as the float32 tensor a model of input ``shape`` takes."""
    scaled = images.astype(np.float32)
    if np.issubdtype(images.dtype, np.integer):
        scaled /= np.float32(255.0)
    n, height, width, colours = scaled.shape
    dims = [d if isinstance(d, int) else None for d in shape[1:]]
    if len(dims) == 1:
        want = dims[0]
        if want in (None, height * width * colours):
            return scaled.reshape(n, -1)
        if want == height * width * (4 - colours):  # the other of grey (1) and RGB (3)
            return _colours(scaled, 4 - colours).reshape(n, -1)
    elif len(dims) == 3:
        first = dims[0] in (1, 3) and dims[1:] in ([height, width], [None, None])
        if first:
            return np.ascontiguousarray(_colours(scaled, dims[0] or 3).transpose(0, 3, 1, 2))
        if dims[2] in (1, 3) and dims[:2] in ([height, width], [None, None]):
            return _colours(scaled, dims[2] or 3)
    raise ConfigError(
        f"the model takes input {list(shape)}; the dataset holds {height}x{width} images "
        f"with {colours} channel(s). Ingest the images at the model's size "
        "(headwater images ingest --size N) or bring a model for this size"
    )


def _colours(images: npt.NDArray[np.float32], wanted: int) -> npt.NDArray[np.float32]:
    have = images.shape[-1]
    if have == wanted:
        return images
    if wanted == 1:  # ITU-R 601 luma, as Pillow's convert("L")
        weights = np.array([0.299, 0.587, 0.114], np.float32)
        return (images @ weights)[..., None].astype(np.float32)
    return np.repeat(images, wanted, axis=-1)
