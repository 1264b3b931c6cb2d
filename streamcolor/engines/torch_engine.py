"""`--backend torch`: the ONNX model run by PyTorch on CUDA in FP16, channels-last,
compiled with torch.compile (CUDA graphs: mode 'reduce-overhead')."""

from __future__ import annotations

import sys

import numpy as np

from streamcolor.errors import ConfigError, NotAvailableError
from streamcolor.model import ModelCard

PRECISIONS = ("fp16", "fp32")


def import_torch():
    try:
        import torch
    except ImportError:
        raise NotAvailableError("this backend needs PyTorch: pip install 'streamcolor[gpu]'") from None
    return torch


def cuda_available() -> bool:
    """A CUDA GPU PyTorch can use. Without an NVIDIA driver (Linux) torch is not even
    imported: importing it costs a second or two on every CPU run."""
    from streamcolor.probe import nvidia_driver_present

    if sys.platform.startswith("linux") and not nvidia_driver_present():
        return False
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


class TorchEngine:
    """device: 'cuda' (default; refused without a GPU) or 'cpu' (tests, FP32 or FP16).
    compile: torch.compile the module (default on CUDA; the first batch of each input
    shape then takes a while; smaller batches are padded to the largest seen, so a video's
    last short batch does not compile again).
    cuda_graphs: compile with CUDA graphs (mode 'reduce-overhead'). Off by default: a graph
    captured while the pipeline's other stages use the GPU from their threads fails
    (cudaErrorStreamCaptureInvalidated, seen on an H200), and for batches of frames the
    launch overhead it removes is small; the model-only benchmark measures both."""

    name = "torch"

    def __init__(
        self,
        card: ModelCard,
        threads: int | None = None,
        precision: str = "fp16",
        device: str = "cuda",
        compile: bool | None = None,
        cuda_graphs: bool = False,
    ):
        torch = import_torch()
        from streamcolor.engines.onnx_torch import OnnxModule

        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise NotAvailableError("backend 'torch' needs an NVIDIA GPU with CUDA (none found); use --backend onnx")
        if device == "cpu":
            if threads:
                torch.set_num_threads(threads)
            torch.set_flush_denormal(
                True
            )  # as ONNX Runtime's session (engines/onnx_engine.py): denormals are slow on x86
        self.torch = torch
        self.device = torch.device(device)
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.precision = precision
        module = OnnxModule(card.path).eval().to(self.device, self.dtype)
        self.module = module.to(memory_format=torch.channels_last)
        compile = self.device.type == "cuda" if compile is None else compile
        mode = "reduce-overhead" if cuda_graphs else None
        self.fn = torch.compile(self.module, mode=mode, dynamic=False) if compile else self.module
        self.compiled = bool(compile)
        self._batch = 0  # the largest batch seen: compiled shapes are padded to it
        flags = (":compiled" if compile else "") + (":graphs" if compile and cuda_graphs else "")
        self.provider = f"{self.device.type}:{precision}{flags}"

    def run_tensor(self, x):
        """x: (N, 1, h, w) tensor of normalised L, any device/dtype -> (N, 2, h', w') float32 on the device."""
        torch = self.torch
        x = x.to(self.device, self.dtype, non_blocking=True).contiguous(memory_format=torch.channels_last)
        n = x.shape[0]
        if self.compiled:
            self._batch = max(self._batch, n)
            if n < self._batch:
                pad = x.new_zeros((self._batch - n, *x.shape[1:])).contiguous(memory_format=torch.channels_last)
                x = torch.cat([x, pad]).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            # float() copies out of a CUDA graph's static output before the next replay reuses it
            return self.fn(x)[:n].float()

    def run(self, x: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        if hints is not None:
            return self.run_features(x, hints)[0]
        return self.run_tensor(self.torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).cpu().numpy()

    def run_features(self, x: np.ndarray, hints: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A hint model (streamcolor/hints/planes.py): -> (ab, features) float32 numpy. Not compiled:
        hints and reference photos run the module as it is."""
        torch = self.torch
        if len(self.module.input_names) < 2:
            raise ConfigError("this model has no hint inputs; hints and reference photos need one (student_hints.onnx)")
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device, self.dtype)
        ht = (
            None
            if hints is None
            else torch.from_numpy(np.ascontiguousarray(hints, dtype=np.float32)).to(self.device, self.dtype)
        )
        with torch.inference_mode():
            ab, feats = self.module.forward_all(xt.contiguous(memory_format=torch.channels_last), ht)[:2]
        return ab.cpu().numpy(), feats.cpu().numpy()
