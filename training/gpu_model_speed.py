"""Model-only speed of trained students in PyTorch on a CUDA GPU (FP32, FP16, FP16 compiled).

    python -m training.gpu_model_speed --ckpt-dir runs/student --out speed.json

Timed with CUDA events after warm-up, median of repeated runs, on random L inputs at the
size the runtime feeds the network. Also reports the FP16 output's error against FP32.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import time
from pathlib import Path

import torch

from training.student import StudentUNet


def time_cuda(fn, x: torch.Tensor, reps: int = 50) -> float:
    """Median milliseconds per call, CUDA events, after 10 warm-up calls (host clock on CPU)."""
    for _ in range(10):
        fn(x)
    times = []
    if x.device.type == "cpu":
        for _ in range(reps):
            t = time.perf_counter()
            fn(x)
            times.append(1000 * (time.perf_counter() - t))
        return sorted(times)[len(times) // 2]
    torch.cuda.synchronize()
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn(x)
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--height", type=int, default=224)
    ap.add_argument("--width", type=int, default=400)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seconds", type=float, default=60, help="stop starting new measurements after this")
    a = ap.parse_args(argv)
    start = time.time()
    dev = torch.device(a.device)
    try:
        drv = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        drv = "none"
    res = {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "driver": drv,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "date": datetime.datetime.now(datetime.UTC).isoformat(),
        "input": [a.height, a.width],
        "method": "CUDA events, median of 50 after 10 warm-up",
        "models": {},
    }
    for ck in sorted(a.ckpt_dir.glob("student_*.pt")):
        c = torch.load(ck, map_location="cpu")
        m = StudentUNet(c["bins"], width=c["width"], depth=c.get("depth", 4))
        m.load_state_dict(c["state_dict"])
        m = m.to(dev).eval().to(memory_format=torch.channels_last)
        entry = {}
        for batch in (1, 8):
            x = torch.randn(batch, 1, a.height, a.width, device=dev).contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                ref = m(x)
                ms32 = time_cuda(m, x)
                half = torch.float16 if dev.type == "cuda" else torch.bfloat16
                m16 = m.to(half)
                x16 = x.to(half)
                out16 = m16(x16).float()
                ms16 = time_cuda(m16, x16)
                rel = float((out16 - ref).norm() / ref.norm())
                row = {
                    "fp32_eager_fps": batch * 1000 / ms32,
                    "fp16_eager_fps": batch * 1000 / ms16,
                    "fp16_rel_err": rel,
                    "fp16_max_abs_err_ab": float((out16 - ref).abs().max()),
                }
                if time.time() - start < a.seconds:
                    try:
                        mc = torch.compile(m16, mode="max-autotune-no-cudagraphs")
                        row["fp16_compiled_fps"] = batch * 1000 / time_cuda(mc, x16)
                    except Exception as e:  # report, do not lose the other numbers
                        row["fp16_compiled_error"] = repr(e)[:300]
                m = m16.float()
            entry[f"batch{batch}"] = row
            print(ck.name, batch, json.dumps(row), flush=True)
        res["models"][ck.stem] = entry
    a.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
