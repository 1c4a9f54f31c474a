"""ONNX graphs written layer by layer from numpy weight arrays (onnx.helper), for networks whose
weights facepipe reads itself: no exporter, no torch. Only a build needs the onnx package;
running a built model needs onnxruntime alone (base/onnx_models.py).

`Graph` names every tensor itself; each layer method takes the name of its input and returns its
output's. Convolutions and pools are NCHW, as ONNX defines them.
"""

from __future__ import annotations

import numpy as np

OPSET = 17  # the operator set the graphs use; IR version 8 is its pairing
IR_VERSION = 8


class Graph:
    def __init__(self):
        import onnx
        from onnx import helper, numpy_helper

        self._onnx, self._helper, self._numpy = onnx, helper, numpy_helper
        self.nodes: list = []
        self.weights: list = []
        self.inputs: list = []
        self._count = 0

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{kind}_{self._count}"

    def const(self, array: np.ndarray, kind: str = "w") -> str:
        name = self._name(kind)
        self.weights.append(self._numpy.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], outputs: int = 1, **attrs) -> str | list[str]:
        names = [self._name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self._helper.make_node(op_type, inputs, names, **attrs))
        return names[0] if outputs == 1 else names

    def input(self, name: str, dtype, shape: list) -> str:
        """A graph input of `dtype` (numpy) and `shape` (ints, or names for dimensions left open)."""
        elem = self._helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        self.inputs.append(self._helper.make_tensor_value_info(name, elem, shape))
        return name

    # --- layers ---------------------------------------------------------------------------

    def conv(self, x: str, weight: np.ndarray, bias: np.ndarray, stride: int = 1, pad: int = 0) -> str:
        k = weight.shape[2:]
        return self.op("Conv", [x, self.const(weight.astype(np.float32)), self.const(bias.astype(np.float32))],
                       kernel_shape=list(k), strides=[stride, stride], pads=[pad] * 4)

    def prelu(self, x: str, slope: np.ndarray, spatial: bool) -> str:
        """PReLU with one slope per channel: of (n, c, h, w) when `spatial`, else of (n, c)."""
        slope = slope.astype(np.float32)
        return self.op("PRelu", [x, self.const(slope.reshape(-1, 1, 1) if spatial else slope)])

    def relu(self, x: str) -> str:
        return self.op("Relu", [x])

    def max_pool(self, x: str, size: int, stride: int, ceil: bool = False) -> str:
        return self.op("MaxPool", [x], kernel_shape=[size, size], strides=[stride, stride], ceil_mode=int(ceil))

    def avg_pool(self, x: str, size: int, stride: int) -> str:
        return self.op("AveragePool", [x], kernel_shape=[size, size], strides=[stride, stride])

    def dense(self, x: str, weight: np.ndarray, bias: np.ndarray | None = None) -> str:
        """x @ weight.T (+ bias): weight (outputs, inputs), as torch's Linear holds it."""
        w = self.const(weight.astype(np.float32))
        if bias is None:
            return self.op("Gemm", [x, w], transB=1)
        return self.op("Gemm", [x, w, self.const(bias.astype(np.float32))], transB=1)

    def pad_end(self, x: str, rank_pads: list[int]) -> str:
        """Zeros added at the end of each dimension (`rank_pads`: how many per dimension)."""
        pads = np.asarray([0] * len(rank_pads) + list(rank_pads), np.int64)
        return self.op("Pad", [x, self.const(pads, "pads")])

    # --- the model ------------------------------------------------------------------------

    def model(self, outputs: dict[str, tuple[str, list]], metadata: dict[str, str], doc: str) -> bytes:
        """The serialized, checked model: float32 outputs {public name: (tensor, shape)}, the shape
        as for `input`."""
        helper = self._helper
        for public, (inner, _shape) in outputs.items():
            self.nodes.append(helper.make_node("Identity", [inner], [public]))
        outs = [helper.make_tensor_value_info(name, self._onnx.TensorProto.FLOAT, shape)
                for name, (_inner, shape) in outputs.items()]
        graph = helper.make_graph(self.nodes, "facepipe", self.inputs, outs, initializer=self.weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                                  producer_name="facepipe", doc_string=doc)
        helper.set_model_props(model, metadata)
        self._onnx.checker.check_model(model)
        return model.SerializeToString()
