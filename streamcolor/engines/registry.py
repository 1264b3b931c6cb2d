"""Inference engines, created by name from an explicit registry (timm's `_factory.py`).

Every backend takes x: (N, 1, h, w) float32 normalised L (see ModelCard) and returns
(N, 2, h / stride, w / stride) float32 network output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from streamcolor.errors import ConfigError
from streamcolor.model import ModelCard


class Engine(Protocol):
    name: str

    def run(self, x: np.ndarray) -> np.ndarray: ...


def _torch(card: ModelCard, threads: int | None = None, precision: str | None = None) -> Engine:
    from streamcolor.engines.torch_engine import TorchEngine

    return TorchEngine(card, threads, precision=precision or "fp16")


def _tensorrt(card: ModelCard, threads: int | None = None, precision: str | None = None) -> Engine:
    from streamcolor.engines.tensorrt_engine import TensorRTEngine

    return TensorRTEngine(card, threads, precision=precision or "fp16")


def _onnx(card: ModelCard, threads: int | None = None, precision: str | None = None) -> Engine:
    from streamcolor.engines.onnx_engine import OnnxEngine

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
