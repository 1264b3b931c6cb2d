"""ONNX Runtime: the default engine, on the CPU (or CUDA with onnxruntime-gpu).

Takes x: (N, 1, h, w) float32 normalised L (see ModelCard) and returns
(N, 2, h / stride, w / stride) float32 network output, as every engine does.
"""

from __future__ import annotations

import os

import numpy as np

from streamcolor.errors import ConfigError
from streamcolor.model import ModelCard


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
        self.hints = card.hints
        # hint planes the model takes: 3, or 4 with the locality plane (ModelCard.hint_locality)
        self.hint_planes = 4 if card.hint_locality else 3
        self.provider = self.session.get_providers()[0]

    def run(self, x: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        """hints: (N, 3 or 4, h, w) for a hint model (zeros when None: no hints)."""
        if not self.hints:
            if hints is not None:
                raise ConfigError("this model takes no hints (its card has no 'hints' entry)")
            return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return self.run_features(x, hints)[0]

    def run_features(self, x: np.ndarray, hints: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A hint model: -> (ab (N, 2, h/4, w/4), features (N, C, h/16, w/16)), float32."""
        if not self.hints:
            raise ConfigError("this model has no hint inputs; hints and reference photos need one (student_hints.onnx)")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if hints is None:
            hints = np.zeros((x.shape[0], self.hint_planes, *x.shape[2:]), np.float32)
        ab, feats = self.session.run(None, {"l": x, "hints": np.ascontiguousarray(hints, dtype=np.float32)})
        return ab, feats
