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
    from streamcolor.source import nvidia_driver_present

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
    shape then takes a while)."""

    name = "torch"

    def __init__(
        self,
        card: ModelCard,
        threads: int | None = None,
        precision: str = "fp16",
        device: str = "cuda",
        compile: bool | None = None,
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
            torch.set_flush_denormal(True)  # as ONNX Runtime's session (backends.py): denormals are slow on x86
        self.torch = torch
        self.device = torch.device(device)
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.precision = precision
        module = OnnxModule(card.path).eval().to(self.device, self.dtype)
        self.module = module.to(memory_format=torch.channels_last)
        compile = self.device.type == "cuda" if compile is None else compile
        self.fn = torch.compile(self.module, mode="reduce-overhead", dynamic=False) if compile else self.module
        self.provider = f"{self.device.type}:{precision}{':compiled' if compile else ''}"

    def run_tensor(self, x):
        """x: (N, 1, h, w) tensor of normalised L, any device/dtype -> (N, 2, h', w') float32 on the device."""
        torch = self.torch
        x = x.to(self.device, self.dtype, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            # float() copies out of the CUDA graph's static output before the next replay reuses it
            return self.fn(x).float()

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.run_tensor(self.torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).cpu().numpy()
