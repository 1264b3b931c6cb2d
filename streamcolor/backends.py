"""Inference backends, created by name from an explicit registry.

Every backend takes x: (N, 1, h, w) float32 normalised L (see ModelCard) and returns
(N, 2, h / stride, w / stride) float32 network output.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

import numpy as np

from streamcolor.errors import ConfigError
from streamcolor.model import ModelCard


class Engine(Protocol):
    name: str

    def run(self, x: np.ndarray) -> np.ndarray: ...


class OnnxEngine:
    """ONNX Runtime; the CPU provider unless onnxruntime-gpu offers CUDA."""

    name = "onnx"

    def __init__(self, card: ModelCard, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(os.cpu_count() or 1, 8)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Spinning workers burn the cores that decode and encode share with us; measured
        # in benchmarks/video_speed.py on 2 cores.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The annealed mean's far-off classes underflow to denormal floats, which cost x86 CPUs
        # dearly (student 3.9 -> 6.1 ms); flushed to zero they change nothing visible.
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(str(card.path), opts, providers=providers)
        except Exception as e:  # onnxruntime raises its own untyped errors for bad files
            raise ConfigError(f"cannot load model {card.path}: {str(e).splitlines()[0]}") from None
        self.input_name = self.session.get_inputs()[0].name
        self.provider = self.session.get_providers()[0]

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def _torch(card: ModelCard, threads: int | None = None, precision: str | None = None) -> Engine:
    from streamcolor.engines.torch_engine import TorchEngine

    return TorchEngine(card, threads, precision=precision or "fp16")


def _tensorrt(card: ModelCard, threads: int | None = None, precision: str | None = None) -> Engine:
    from streamcolor.engines.tensorrt_engine import TensorRTEngine

    return TensorRTEngine(card, threads, precision=precision or "fp16")


def _onnx(card: ModelCard, threads: int | None = None, precision: str | None = None) -> Engine:
    if precision not in (None, "fp32"):
        raise ConfigError("ONNX Runtime runs the FP32 model; for FP16 use --backend torch or tensorrt (NVIDIA GPU)")
    return OnnxEngine(card, threads)


BACKENDS: dict[str, Callable[..., Engine]] = {
    "onnx": _onnx,
    "torch": _torch,
    "tensorrt": _tensorrt,
}


def pick_auto() -> str:
    """TensorRT when importable with a GPU, else PyTorch on CUDA, else ONNX Runtime."""
    from streamcolor.engines.tensorrt_engine import tensorrt_available
    from streamcolor.engines.torch_engine import cuda_available

    if tensorrt_available():
        return "tensorrt"
    if cuda_available():
        return "torch"
    return "onnx"


def create_engine(name: str, card: ModelCard, threads: int | None = None, precision: str | None = None) -> Engine:
    """name: 'auto' or a key of BACKENDS; the engine's .name and .provider say what runs."""
    if name == "auto":
        name = pick_auto()
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend '{name}'; choose one of: auto, {', '.join(BACKENDS)}")
    return BACKENDS[name](card, threads, precision)
