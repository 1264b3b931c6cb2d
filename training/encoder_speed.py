"""CPU speed of the pretrained encoders (MobileNetV2, EfficientNet-Lite0, Lite2) on gray input.

    python -m training.encoder_speed --mobilenet ../shared/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite \
        --out runs/encoder_speed.json

Two figures per encoder, both on one thread (the other core runs a training job):
- PyTorch `forward_stages` up to stride 16 and up to stride 32 on a batch of 64 gray 128x128
  inputs, images per second (what computing a feature cache costs), one warm-up batch excluded;
  the same in batches of 8; and the multiply-adds per image (independent of the machine's load);
- ONNX Runtime, one 1x1x160x288 gray frame up to stride 16 (the runtime's input size),
  milliseconds after warm-up, as exported and with SAME's Pads fused into the convolutions, and
  each graph's max abs difference from PyTorch.
Median and fastest of the timed runs: on a shared machine the fastest is the better estimate.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def build_encoder(name: str, stages: int, mobilenet: Path | None) -> torch.nn.Module:
    """A pretrained 1-channel encoder up to `stride` `stages`, in eval mode, by name."""
    if name == "mobilenet_v2":
        from training.mobilenet import pretrained_mobilenet_v2

        if mobilenet is None:
            raise ValueError("mobilenet_v2 needs --mobilenet (the TFLite file)")
        return pretrained_mobilenet_v2(mobilenet, stages=stages, head=False, in_channels=1)
    if name in ("lite0", "lite2"):
        from training.efficientnet_lite import pretrained_efficientnet_lite

        return pretrained_efficientnet_lite(name, stages=stages, head=False, in_channels=1)
    raise ValueError(f"unknown encoder '{name}'; choose mobilenet_v2, lite0 or lite2")


class _StageTuple(torch.nn.Module):
    """forward_stages as a tuple (stride order), for the ONNX exporter."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f = self.net.forward_stages(x)
        return tuple(f[s] for s in sorted(f))


def torch_images_per_second(net: torch.nn.Module, batch: int = 64, side: int = 128, reps: int = 5) -> dict:
    """Images/s of forward_stages, from the median and the fastest of `reps` batches (the
    fastest is the better estimate when other jobs share the machine)."""
    x = torch.rand(batch, 1, side, side) * 2 - 1
    times = []
    with torch.inference_mode():
        net.forward_stages(x)  # warm-up
        for _ in range(reps):
            t = time.perf_counter()
            net.forward_stages(x)
            times.append(time.perf_counter() - t)
    return {"median": round(batch / float(np.median(times)), 1), "best": round(batch / min(times), 1)}


def onnx_frame_ms(net: torch.nn.Module, h: int = 160, w: int = 288, reps: int = 60) -> dict:
    """One 1x1xhxw frame in ONNX Runtime on one thread, as exported and with F.pad's Pads fused
    into the convolutions (efficientnet_lite.fuse_pads_into_convs; MobileNetV2 has none after
    fold_same_padding), timed interleaved: median and fastest ms, and max |ORT - PyTorch|."""
    import onnxruntime as ort

    from training.efficientnet_lite import fuse_pads_into_convs

    if hasattr(net, "fold_same_padding"):  # MobileNetV2: exported the way the runtime's models are
        net = copy.deepcopy(net)
        net.fold_same_padding()
    model = _StageTuple(net).eval()
    x = torch.rand(1, 1, h, w) * 2 - 1
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    sessions, fused = {}, 0
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "encoder.onnx"
        torch.onnx.export(model, x, str(path), opset_version=17, input_names=["x"], dynamo=False)
        sessions["exported"] = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        fused = fuse_pads_into_convs(path, Path(d) / "fused.onnx")
        if fused:
            sessions["pads_fused"] = ort.InferenceSession(
                str(Path(d) / "fused.onnx"), so, providers=["CPUExecutionProvider"]
            )
    with torch.inference_mode():
        ref = model(x)
    feed = {"x": x.numpy()}
    res: dict = {"pads_fused": fused}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for k, sess in sessions.items():
        out = sess.run(None, feed)
        res[f"{k}_max_abs_diff"] = max(float(np.abs(a - b.numpy()).max()) for a, b in zip(out, ref))
        for _ in range(10):
            sess.run(None, feed)
    for _ in range(reps):
        for k, sess in sessions.items():
            t = time.perf_counter()
            sess.run(None, feed)
            times[k].append(1000 * (time.perf_counter() - t))
    for k, ts in times.items():
        res[f"{k}_ms"] = {"median": round(float(np.median(ts)), 2), "best": round(min(ts), 2)}
    return res


def mega_macs(net: torch.nn.Module, h: int, w: int) -> float:
    """Multiply-adds of forward_stages per 1-channel hxw image, in millions (load-independent)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        net.forward_stages(torch.zeros(1, 1, h, w))
    return round(counter.get_total_flops() / 2e6, 1)


def measure(names: list[str], mobilenet: Path | None) -> dict:
    torch.set_num_threads(1)
    res = {}
    for name in names:
        to16 = build_encoder(name, 16, mobilenet)
        to32 = build_encoder(name, 32, mobilenet)
        res[name] = {
            "torch_to16_img_s": torch_images_per_second(to16),
            "torch_to32_img_s": torch_images_per_second(to32),
            # the same images in batches of 8: on one thread much faster per image (cache-sized
            # activations; batch 64's expanded tensors are ~100 MB each)
            "torch_to16_img_s_batch8": torch_images_per_second(to16, batch=8, reps=24),
            "torch_to32_img_s_batch8": torch_images_per_second(to32, batch=8, reps=24),
            "ort_to16_160x288": onnx_frame_ms(to16),
            "mmacs_to16_128x128": mega_macs(to16, 128, 128),
            "mmacs_to32_128x128": mega_macs(to32, 128, 128),
            "mmacs_to16_160x288": mega_macs(to16, 160, 288),
            "params_to16": sum(p.numel() for p in to16.parameters()),
            "params_to32": sum(p.numel() for p in to32.parameters()),
        }
    return res


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> None:
    import onnxruntime

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoders", nargs="+", default=["mobilenet_v2", "lite0", "lite2"])
    ap.add_argument("--mobilenet", type=Path, help="the MobileNetV2 TFLite file (for mobilenet_v2)")
    ap.add_argument("--out", type=Path, help="write the figures as JSON")
    a = ap.parse_args(argv)
    res = {
        "encoders": measure(a.encoders, a.mobilenet),
        "setup": "1 thread; torch: batch 64 gray 128x128, 1 warm-up + 5 timed batches (batch 8: + 24); "
        "ORT: 1x1x160x288 to stride 16, 60 interleaved runs after 10 warm-up",
        "load_average_before": os.getloadavg(),
        "machine": {
            "cpu": _cpu_name(),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
    }
    print(json.dumps(res, indent=2))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
