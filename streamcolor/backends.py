"""Inference backends, created by name from an explicit registry.

Every backend takes x: (N, 1, h, w) float32 normalised L (see ModelCard) and returns
(N, 2, h / stride, w / stride) float32 network output.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

import numpy as np

from streamcolor.errors import ConfigError, NotAvailableError
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


def _not_yet(name: str) -> Callable[..., Engine]:
    def make(card: ModelCard, threads: int | None = None) -> Engine:
        raise NotAvailableError(
            f"backend '{name}' is not available in this version yet (GPU engines are planned); use --backend onnx"
        )

    return make


BACKENDS: dict[str, Callable[..., Engine]] = {
    "onnx": OnnxEngine,
    "torch": _not_yet("torch"),
    "tensorrt": _not_yet("tensorrt"),
}


def create_engine(name: str, card: ModelCard, threads: int | None = None) -> Engine:
    """name: 'auto' or a key of BACKENDS. 'auto' is ONNX Runtime until the GPU engines land."""
    if name == "auto":
        name = "onnx"
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend '{name}'; choose one of: auto, {', '.join(BACKENDS)}")
    return BACKENDS[name](card, threads)
