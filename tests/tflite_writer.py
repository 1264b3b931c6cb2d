"""Write a small TensorFlow Lite flatbuffer for tests: the convolutions of a truncated
MobileNetV2 with int8 weights (one scale per output channel) and int32 biases, so the
reader in training/mobilenet.py is tested on a file the test makes, with known values.

Only what the reader looks at is written (operator codes, tensors with shapes, types and
quantization, buffers, operators with their inputs); the file is not meant to run in an
interpreter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def conv_shapes(net) -> list[tuple[str, tuple[int, ...]]]:
    """(op kind, TFLite weight shape) of every convolution of a training.mobilenet network, in order."""
    from torch import nn

    out = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            o, i, kh, kw = m.weight.shape
            if m.groups > 1:
                out.append(("DEPTHWISE_CONV_2D", (1, kh, kw, o)))
            else:
                out.append(("CONV_2D", (o, kh, kw, i)))
    return out


def write_tflite(path: Path, shapes: list[tuple[str, tuple[int, ...]]], seed: int = 0) -> list[dict]:
    """Write the file; return, per convolution, its int8 weights, scales, zero points and the
    float bias, to compare with what the reader makes of it."""
    import importlib

    import flatbuffers
    import tflite

    # the package re-exports each table's class under its module's name: take the modules
    # (their builder functions) from importlib
    def mod(name):
        return importlib.import_module(f"tflite.{name}")

    Buffer, Model, Operator, OperatorCode = mod("Buffer"), mod("Model"), mod("Operator"), mod("OperatorCode")
    QuantizationParameters, SubGraph, Tensor = mod("QuantizationParameters"), mod("SubGraph"), mod("Tensor")

    rng = np.random.default_rng(seed)
    b = flatbuffers.Builder(1024)
    truth, buffers, tensors, ops = [], [b""], [], []  # buffer 0 is empty by convention
    codes = {"CONV_2D": tflite.BuiltinOperator.CONV_2D, "DEPTHWISE_CONV_2D": tflite.BuiltinOperator.DEPTHWISE_CONV_2D}
    code_index = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 1}
    for kind, shape in shapes:
        axis = 3 if kind == "DEPTHWISE_CONV_2D" else 0
        n_out = shape[axis]
        q = rng.integers(-127, 128, size=shape, dtype=np.int8)
        scale = rng.uniform(0.001, 0.02, size=n_out).astype(np.float32)
        zero = rng.integers(-3, 4, size=n_out).astype(np.int64)  # 0 in real int8 files; tests the formula
        bias_q = rng.integers(-5000, 5000, size=n_out, dtype=np.int32)
        bias_scale = rng.uniform(1e-5, 1e-4, size=n_out).astype(np.float32)
        zshape = [1] * len(shape)
        zshape[axis] = -1
        weight = (q.astype(np.float64) - zero.reshape(zshape)) * scale.astype(np.float64).reshape(zshape)
        truth.append({"kind": kind, "weight": weight, "bias": bias_q * bias_scale.astype(np.float64)})
        w_buf, b_buf = len(buffers), len(buffers) + 1
        buffers += [q.tobytes(), bias_q.tobytes()]
        tensors.append(("w", shape, tflite.TensorType.INT8, w_buf, scale, zero, axis))
        tensors.append(("b", (n_out,), tflite.TensorType.INT32, b_buf, bias_scale, np.zeros(n_out, np.int64), 0))
        # inputs: activation (tensor -1: none, the reader ignores it), weight, bias
        ops.append((code_index[kind], [-1, len(tensors) - 2, len(tensors) - 1]))

    def vec(start, items, add):
        start(b, len(items))
        for it in reversed(items):
            add(it)
        return b.EndVector()

    buf_offsets = []
    for data in buffers:
        data_off = b.CreateByteVector(data) if data else None
        Buffer.BufferStart(b)
        if data_off is not None:
            Buffer.BufferAddData(b, data_off)
        buf_offsets.append(Buffer.BufferEnd(b))
    tensor_offsets = []
    for i, (name, shape, ttype, buf, scale, zero, axis) in enumerate(tensors):
        name_off = b.CreateString(f"{name}{i}")
        shape_off = vec(Tensor.TensorStartShapeVector, list(shape), b.PrependInt32)
        scale_off = vec(QuantizationParameters.QuantizationParametersStartScaleVector, list(scale), b.PrependFloat32)
        zero_off = vec(QuantizationParameters.QuantizationParametersStartZeroPointVector, list(zero), b.PrependInt64)
        QuantizationParameters.QuantizationParametersStart(b)
        QuantizationParameters.QuantizationParametersAddScale(b, scale_off)
        QuantizationParameters.QuantizationParametersAddZeroPoint(b, zero_off)
        QuantizationParameters.QuantizationParametersAddQuantizedDimension(b, axis)
        quant_off = QuantizationParameters.QuantizationParametersEnd(b)
        Tensor.TensorStart(b)
        Tensor.TensorAddShape(b, shape_off)
        Tensor.TensorAddType(b, ttype)
        Tensor.TensorAddBuffer(b, buf)
        Tensor.TensorAddName(b, name_off)
        Tensor.TensorAddQuantization(b, quant_off)
        tensor_offsets.append(Tensor.TensorEnd(b))
    op_offsets = []
    for code, inputs in ops:
        in_off = vec(Operator.OperatorStartInputsVector, inputs, b.PrependInt32)
        out_off = vec(Operator.OperatorStartOutputsVector, [], b.PrependInt32)
        Operator.OperatorStart(b)
        Operator.OperatorAddOpcodeIndex(b, code)
        Operator.OperatorAddInputs(b, in_off)
        Operator.OperatorAddOutputs(b, out_off)
        op_offsets.append(Operator.OperatorEnd(b))
    tensors_vec = vec(SubGraph.SubGraphStartTensorsVector, tensor_offsets, b.PrependUOffsetTRelative)
    ops_vec = vec(SubGraph.SubGraphStartOperatorsVector, op_offsets, b.PrependUOffsetTRelative)
    SubGraph.SubGraphStart(b)
    SubGraph.SubGraphAddTensors(b, tensors_vec)
    SubGraph.SubGraphAddOperators(b, ops_vec)
    graph = SubGraph.SubGraphEnd(b)
    code_offsets = []
    for kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        OperatorCode.OperatorCodeStart(b)
        OperatorCode.OperatorCodeAddDeprecatedBuiltinCode(b, codes[kind])
        OperatorCode.OperatorCodeAddBuiltinCode(b, codes[kind])
        OperatorCode.OperatorCodeAddVersion(b, 1)
        code_offsets.append(OperatorCode.OperatorCodeEnd(b))
    codes_vec = vec(Model.ModelStartOperatorCodesVector, code_offsets, b.PrependUOffsetTRelative)
    graphs_vec = vec(Model.ModelStartSubgraphsVector, [graph], b.PrependUOffsetTRelative)
    bufs_vec = vec(Model.ModelStartBuffersVector, buf_offsets, b.PrependUOffsetTRelative)
    Model.ModelStart(b)
    Model.ModelAddVersion(b, 3)
    Model.ModelAddOperatorCodes(b, codes_vec)
    Model.ModelAddSubgraphs(b, graphs_vec)
    Model.ModelAddBuffers(b, bufs_vec)
    b.Finish(Model.ModelEnd(b), file_identifier=b"TFL3")
    Path(path).write_bytes(b.Output())
    return truth
