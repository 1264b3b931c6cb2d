"""The shipped ONNX model as a PyTorch module: one model file for every backend.

The graph is walked node by node in its (topological) order with torch.nn.functional ops,
so the weights and the arithmetic are exactly the exported ones, and torch.compile or
CUDA graphs can capture the whole forward pass. Only the operators our exported
networks use (and a few common ones) are implemented; any other is refused by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from streamcolor.errors import ConfigError, NotAvailableError


def _attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _const(t) -> torch.Tensor:
    from onnx import numpy_helper

    return torch.from_numpy(np.array(numpy_helper.to_array(t)))


def _conv(env, ins, a, transpose=False):
    x, w = env[ins[0]], env[ins[1]].to(env[ins[0]].dtype)
    b = env[ins[2]].to(x.dtype) if len(ins) > 2 and ins[2] else None
    pads = a.get("pads", [0, 0, 0, 0])
    if pads[0] != pads[2] or pads[1] != pads[3]:
        x = F.pad(x, (pads[1], pads[3], pads[0], pads[2]))
        pads = [0, 0]
    else:
        pads = pads[:2]
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise NotAvailableError("the torch backend does not support Conv auto_pad SAME; use --backend onnx")
    kw = dict(stride=a.get("strides", [1, 1]), dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))
    if transpose:
        return F.conv_transpose2d(x, w, b, padding=pads, output_padding=a.get("output_padding", [0, 0]), **kw)
    return F.conv2d(x, w, b, padding=pads, **kw)


def _resize(env, ins, a):
    x = env[ins[0]]
    scales = env[ins[2]] if len(ins) > 2 and ins[2] else None
    sizes = env[ins[3]] if len(ins) > 3 and ins[3] else None
    mode = a.get("mode", "nearest")
    if sizes:
        kw = {"size": [int(v) for v in sizes[2:]]}
    else:
        kw = {"scale_factor": [float(v) for v in scales[2:]]}
    if mode == "nearest":
        return F.interpolate(x, mode="nearest", **kw)  # floor + asymmetric, ONNX's default nearest
    if mode == "linear":
        align = a.get("coordinate_transformation_mode", "half_pixel") == "align_corners"
        return F.interpolate(x, mode="bilinear", align_corners=align, **kw)
    raise NotAvailableError(f"the torch backend does not support Resize mode '{mode}'")


def _slice(env, ins, a):
    x = env[ins[0]]
    starts, ends = env[ins[1]], env[ins[2]]
    axes = env[ins[3]] if len(ins) > 3 and ins[3] else list(range(len(starts)))
    steps = env[ins[4]] if len(ins) > 4 and ins[4] else [1] * len(starts)
    idx = [slice(None)] * x.dim()
    for s, e, ax, st in zip(starts, ends, axes, steps):
        idx[ax] = slice(int(s), min(int(e), 2**62), int(st))
    return x[tuple(idx)]


def _clip(env, ins, a):
    x = env[ins[0]]
    lo = env[ins[1]] if len(ins) > 1 and ins[1] else a.get("min")
    hi = env[ins[2]] if len(ins) > 2 and ins[2] else a.get("max")
    lo = float(lo[0] if isinstance(lo, list) else lo) if lo is not None else None
    hi = float(hi[0] if isinstance(hi, list) else hi) if hi is not None else None
    return torch.clamp(x, min=lo, max=hi)


def _reduce(fn):
    def op(env, ins, a):
        x = env[ins[0]]
        axes = a.get("axes") or (env[ins[1]] if len(ins) > 1 and ins[1] else list(range(x.dim())))
        keep = bool(a.get("keepdims", 1))
        return fn(x, dim=tuple(int(v) for v in axes), keepdim=keep)

    return op


def _amax(x, dim, keepdim):
    return torch.amax(x, dim=dim, keepdim=keepdim)


def _unsqueeze(env, ins, a):
    x = env[ins[0]]
    axes = a.get("axes") or env[ins[1]]
    for ax in sorted(int(v) % (x.dim() + len(axes)) for v in axes):
        x = x.unsqueeze(ax)
    return x


def _gemm(env, ins, a):
    """Y = alpha * A' B' + beta * C (ONNX Gemm; the students' fusion layer)."""
    x, w = env[ins[0]], env[ins[1]].to(env[ins[0]].dtype)
    x = x.t() if a.get("transA", 0) else x
    w = w.t() if a.get("transB", 0) else w
    y = a.get("alpha", 1.0) * (x @ w)
    if len(ins) > 2 and ins[2]:
        y = y + a.get("beta", 1.0) * env[ins[2]].to(y.dtype)
    return y


_SHAPE_ARGS = {"Resize", "Slice", "ReduceMax", "ReduceSum", "ReduceMean", "Clip", "Unsqueeze"}

OPS = {
    "Conv": lambda env, ins, a: _conv(env, ins, a),
    "ConvTranspose": lambda env, ins, a: _conv(env, ins, a, transpose=True),
    "Relu": lambda env, ins, a: F.relu(env[ins[0]]),
    "LeakyRelu": lambda env, ins, a: F.leaky_relu(env[ins[0]], a.get("alpha", 0.01)),
    "Sigmoid": lambda env, ins, a: torch.sigmoid(env[ins[0]]),
    "Tanh": lambda env, ins, a: torch.tanh(env[ins[0]]),
    "Exp": lambda env, ins, a: torch.exp(env[ins[0]]),
    "Clip": lambda env, ins, a: _clip(env, ins, a),
    "Add": lambda env, ins, a: env[ins[0]] + env[ins[1]],
    "Sub": lambda env, ins, a: env[ins[0]] - env[ins[1]],
    "Mul": lambda env, ins, a: env[ins[0]] * env[ins[1]],
    "Div": lambda env, ins, a: env[ins[0]] / env[ins[1]],
    "Concat": lambda env, ins, a: torch.cat([env[i] for i in ins], dim=a["axis"]),
    "Identity": lambda env, ins, a: env[ins[0]],
    "Softmax": lambda env, ins, a: torch.softmax(env[ins[0]], dim=a.get("axis", -1)),
    "GlobalAveragePool": lambda env, ins, a: env[ins[0]].mean(dim=(2, 3), keepdim=True),
    "ReduceMax": _reduce(_amax),
    "ReduceSum": _reduce(torch.sum),
    "ReduceMean": _reduce(torch.mean),
    "Resize": _resize,
    "Slice": _slice,
    # the MobileNetV2 student: L* -> gray sRGB (Pow, Greater, Where) and its fusion layer
    "Pow": lambda env, ins, a: torch.pow(env[ins[0]], env[ins[1]].to(env[ins[0]].dtype)),
    "Greater": lambda env, ins, a: env[ins[0]] > env[ins[1]].to(env[ins[0]].dtype),
    "Where": lambda env, ins, a: torch.where(env[ins[0]], env[ins[1]], env[ins[2]].to(env[ins[1]].dtype)),
    "Unsqueeze": _unsqueeze,
    "Gemm": _gemm,
    "Flatten": lambda env, ins, a: env[ins[0]].flatten(a.get("axis", 1)),
    # the hint-trained student's hint grids
    "AveragePool": lambda env, ins, a: F.avg_pool2d(
        env[ins[0]], a["kernel_shape"], a.get("strides", a["kernel_shape"]), ceil_mode=bool(a.get("ceil_mode", 0))
    ),
    "Sqrt": lambda env, ins, a: torch.sqrt(env[ins[0]]),
}


class OnnxModule(torch.nn.Module):
    """forward(x: (N, 1, h, w)) -> the graph's first output, computed with torch ops;
    forward_all(x, hints) -> every output, for a hint model (inputs l and hints)."""

    def __init__(self, path: Path):
        super().__init__()
        try:
            import onnx
        except ImportError:
            raise NotAvailableError(
                "the torch backend reads the ONNX model with the onnx package: pip install onnx"
            ) from None
        try:
            model = onnx.load(str(path))
        except Exception as e:  # onnx raises DecodeError and others for a bad file
            raise ConfigError(f"cannot read model {path}: {e}") from None
        g = model.graph
        unknown = sorted({n.op_type for n in g.node} - set(OPS) - {"Constant"})
        if unknown:
            raise NotAvailableError(
                f"the torch backend does not implement ONNX op(s) {', '.join(unknown)} used by {path.name}; "
                "use --backend onnx or tensorrt"
            )
        self.input_name = g.input[0].name
        self.input_names = [i.name for i in g.input if i.name not in {t.name for t in g.initializer}]
        # a hint model's planes (3, or 4 with the locality plane), from the graph's hints input
        hint_inputs = [i for i in g.input if i.name in self.input_names[1:2]]
        dims = hint_inputs[0].type.tensor_type.shape.dim if hint_inputs else []
        self.hint_planes = dims[1].dim_value if len(dims) > 1 and dims[1].dim_value else 3
        self.output_name = g.output[0].name
        self.output_names = [o.name for o in g.output]
        self.nodes = []
        consts: dict[str, torch.Tensor] = {t.name: _const(t) for t in g.initializer}
        for n in g.node:
            if n.op_type == "Constant":
                consts[n.output[0]] = _const(_attrs(n)["value"])
            else:
                self.nodes.append((n.op_type, list(n.input), n.output[0], _attrs(n)))
        # Constants read as shapes (Resize scales, Slice bounds, Reduce axes) become Python
        # lists, so the forward pass never syncs with the GPU to read them; every other
        # float constant is a buffer and follows .to(device, dtype).
        shape_args = {i for op, ins, _, _ in self.nodes if op in _SHAPE_ARGS for i in ins[1:] if i}
        self.lists: dict[str, list] = {}
        self.buffers_by_name: dict[str, str] = {}
        for i, (name, t) in enumerate(consts.items()):
            if name in shape_args:
                self.lists[name] = t.reshape(-1).tolist()
            else:
                self.register_buffer(f"c{i}", t if t.is_floating_point() else t.float())
                self.buffers_by_name[name] = f"c{i}"

        self.fp32_from = fp32_tail_start([(op, ins, out) for op, ins, out, _ in self.nodes])

    def forward(self, x: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_all(x, hints)[0]

    def forward_all(self, x: torch.Tensor, hints: torch.Tensor | None = None) -> list[torch.Tensor]:
        env: dict = {self.input_name: x, **self.lists}
        if len(self.input_names) > 1:  # a hint model: no hints is all-zero hints
            planes = self.hint_planes
            env[self.input_names[1]] = hints if hints is not None else x.new_zeros((x.shape[0], planes, *x.shape[2:]))
        for name, buf in self.buffers_by_name.items():
            env[name] = getattr(self, buf)
        for i, (op, ins, out, a) in enumerate(self.nodes):
            if i >= self.fp32_from:  # the softmax tail in FP32, whatever the module's dtype
                for k in ins:
                    v = env.get(k)
                    if isinstance(v, torch.Tensor) and v.is_floating_point() and v.dtype != torch.float32:
                        env[k] = v.float()
            env[out] = OPS[op](env, ins, a)
        return [env[name].float() for name in self.output_names]


def fp32_tail_start(nodes: list[tuple[str, list[str], str]]) -> int:
    """Index of the first node to run in FP32 in a reduced-precision engine: the logits
    convolution that feeds the first Exp (the annealed mean's softmax: its exponent spans
    about -75..5, beyond FP16's range once exponentiated and too coarse before). len(nodes)
    when there is no Exp."""
    producer = {out: i for i, (_, _, out) in enumerate(nodes)}
    first_exp = next((i for i, (op, _, _) in enumerate(nodes) if op == "Exp"), None)
    if first_exp is None:
        return len(nodes)
    i = first_exp
    while nodes[i][0] != "Conv":  # walk back through the elementwise ops (Clip...) to the Conv
        src = [producer[k] for k in nodes[i][1] if k in producer]
        if not src:
            return first_exp
        i = src[0]
    return i
