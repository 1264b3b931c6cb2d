"""NVIDIA GPU: FP16 against FP32, model-only frames/s and end-to-end frames/s, in one run.

    python -m benchmarks.gpu_speed                              # on a CUDA machine
    python -m benchmarks.gpu_speed --device cpu --heights 64 --clip tiny.mp4   # smoke test

Model only: the shipped model at the network input size of a 1080p frame, batch 1 and 8,
for FP32 eager, FP16 eager and FP16 compiled PyTorch (and TensorRT FP16 when importable),
median of --repeats after warm-up, timed with CUDA events. FP16 vs FP32: max |difference|
over the largest |FP32| value, on real pictures' L. End to end: benchmarks.video_speed's
run (same clip, decoder and encoder settings, transcode-only beside it) for each height,
with --backend torch --precision fp16 (and tensorrt when importable); it needs PyAV.
Results: benchmarks/results/gpu_speed_<date>.json with device, driver and versions.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import save_result
from benchmarks.video_speed import DEFAULT_CLIP
from streamcolor import color
from streamcolor.engines.onnx_engine import OnnxEngine
from streamcolor.model import DEFAULT_MODEL, load_card


def picture_inputs(card, n: int, hw: tuple[int, int]) -> np.ndarray:
    h, w = hw
    rng = np.random.default_rng(0)
    out = []
    for t in range(n):
        y = np.linspace(0, 1, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
        y = 0.3 + 0.5 * y + 0.05 * rng.standard_normal((h, w)).astype(np.float32)
        y[h // 3 : h // 2, (t * 13) % (w // 2) : (t * 13) % (w // 2) + w // 4] = 0.2
        gray = (np.clip(y, 0, 1) * 255).astype(np.uint8)
        out.append(((color.luma_lut(True)[gray] - card.l_offset) / card.l_scale)[None])
    return np.stack(out).astype(np.float32)


def device_info(device: str) -> dict:
    import torch

    info = {"torch": torch.__version__, "cuda": torch.version.cuda}
    if device == "cuda":
        info["device"] = torch.cuda.get_device_name(0)
        try:
            info["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True
            ).stdout.strip()
        except OSError:
            info["driver"] = "unknown"
    else:
        info["device"] = "cpu"
    try:
        import tensorrt

        info["tensorrt"] = tensorrt.__version__
    except ImportError:
        info["tensorrt"] = None
    return info


def model_only(card, device: str, repeats: int, frame_hw: tuple[int, int], only: list[str] | None = None) -> dict:
    import torch

    from streamcolor.engines.torch_engine import TorchEngine
    from training.gpu_model_speed import time_cuda  # CUDA events on a GPU, host clock on the CPU

    cuda = device == "cuda"
    hw = card.input_size(*frame_hw)
    engines = {
        "torch_fp32_eager": lambda: TorchEngine(card, precision="fp32", device=device, compile=False),
        "torch_fp16_eager": lambda: TorchEngine(card, precision="fp16", device=device, compile=False),
        "torch_fp16_compiled": lambda: TorchEngine(card, precision="fp16", device=device, compile=True),
        "torch_fp16_cudagraphs": lambda: TorchEngine(
            card, precision="fp16", device=device, compile=True, cuda_graphs=True
        ),
    }
    if info_has_tensorrt() and cuda:
        from streamcolor.engines.tensorrt_engine import TensorRTEngine

        engines["tensorrt_fp16"] = lambda: TensorRTEngine(card, precision="fp16", batch=8, log=print)
    if only:
        engines = {k: v for k, v in engines.items() if k in only}
    x8 = picture_inputs(card, 8, hw)
    ref = OnnxEngine(card).run(x8)
    rows = {}
    for name, make in engines.items():
        try:
            eng = make()
        except Exception as e:  # noqa: BLE001 - one engine failing must not lose the others' numbers
            rows[name] = {"error": f"{type(e).__name__}: {e}"}
            continue
        out = eng.run(x8)
        row = {"rel_error_vs_onnx_fp32": round(float(np.abs(out - ref).max() / np.abs(ref).max()), 5)}
        for batch in (1, 8):
            xt = torch.from_numpy(x8[:batch]).to(device)
            ms = time_cuda(eng.run_tensor, xt, repeats)
            row[f"batch{batch}"] = {"median_ms": round(ms, 4), "fps": round(batch * 1000 / ms, 1)}
        rows[name] = row
        print(name, row, flush=True)
    return {"input": list(hw), "frame": list(frame_hw), "engines": rows}


def info_has_tensorrt() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="a colour clip, or 'synthetic'")
    ap.add_argument("--heights", type=int, nargs="*", default=[480, 720, 1080])
    ap.add_argument("--video-repeats", type=int, default=1)
    ap.add_argument("--max-frames", type=int, default=300)
    ap.add_argument("--engines", nargs="*", help="only these model-only rows (default: all available)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    card = load_card(DEFAULT_MODEL)
    result = {
        "device_info": device_info(a.device),
        "model_only": model_only(card, a.device, a.repeats, (1080, 1920), a.engines),
    }
    e2e = []
    result["end_to_end"] = e2e
    save_result("gpu_speed", result, a.out)  # saved after each part: a run cut short keeps what it measured
    try:
        from benchmarks.video_speed import run
    except ImportError as e:  # no PyAV on this machine
        result["end_to_end_skipped"] = str(e)
    else:
        backends = [("torch", "fp16")] + ([("tensorrt", "fp16")] if info_has_tensorrt() else [])
        if a.device == "cpu":
            backends = [("onnx", None)]
        with tempfile.TemporaryDirectory() as tmp:
            clip = a.clip
            if str(clip) == "synthetic":  # no data on the machine: a textured, moving 1080p clip made here
                from streamcolor.bench import synthetic_clip

                clip = synthetic_clip(Path(tmp) / "synthetic.mp4", 1920, 1080, a.max_frames or 300)
            for backend, precision in backends:
                for h in a.heights:
                    # one row: the shipped model (run() gives one per --model)
                    (row,) = run(clip, h, a.video_repeats, a.max_frames, 8, "veryfast", Path(tmp), backend, precision)
                    e2e.append(row)
                    print(row, flush=True)
                    save_result("gpu_speed", result, a.out)
    path = save_result("gpu_speed", result, a.out)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
