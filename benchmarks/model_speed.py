"""Model-only latency of the shipped student beside the published colorization networks.

    python -m benchmarks.model_speed                 # all networks, 2 threads
    python -m benchmarks.model_speed --nets student zhang2016 --threads 2 --spinning off

ONNX Runtime on the CPU, each network at its own native input size, random weights for
the published ones (benchmarks/published_nets.py; speed does not depend on the values).
Warm-up runs are excluded; median and p99 latency and frames/s are reported. Results go
to benchmarks/results/model_speed_<date>.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from benchmarks.common import save_result
from benchmarks.published_nets import PUBLISHED
from streamcolor.model import DEFAULT_MODEL, load_card


def session(model: bytes | str, threads: int, spinning: bool = False) -> ort.InferenceSession:
    """spinning False: the runtime's settings (idle workers sleep: decode and encode share
    the cores); True: ONNX Runtime's default (workers spin, lower latency for a model alone)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.add_session_config_entry("session.set_denormal_as_zero", "1")  # as the runtime's OnnxEngine
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def time_session(sess: ort.InferenceSession, shape: tuple, warmup: int, repeats: int, budget_s: float) -> dict:
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).random(shape, dtype=np.float32) * 2 - 1
    for _ in range(warmup):
        sess.run(None, {name: x})
    times = []
    start = time.perf_counter()
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() - start < budget_s):
        t = time.perf_counter()
        sess.run(None, {name: x})
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    return {
        "input": list(shape),
        "runs": len(times),
        "median_ms": round(float(np.median(ms)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "fps": round(shape[0] * 1000 / float(np.median(ms)), 2),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=["student", *PUBLISHED])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--budget", type=float, default=10.0, help="seconds per network at most (>= 3 runs)")
    ap.add_argument(
        "--spinning",
        nargs="+",
        type=lambda v: v == "on",
        default=[False, True],
        help="off (the runtime's setting) and/or on (ONNX Runtime's default)",
    )
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    rows = {}
    for spinning in a.spinning:
        tag = "spin" if spinning else "nospin"
        for net in a.nets:
            row = rows.setdefault(net, {})
            if net == "student":
                card = load_card(DEFAULT_MODEL)
                sess = session(str(DEFAULT_MODEL), a.threads, spinning)
                # 16:9 frames (480p to 4K alike: short side 192) and 4:3 frames
                for key, frame in (("student", (480, 854)), ("student_4x3", (480, 640))):
                    h, w = card.input_size(*frame)
                    row = rows.setdefault(key, {})
                    row["what"] = f"streamcolor default ({card.name}) at {frame[1]}x{frame[0]}'s input size"
                    for batch in (1, 4):
                        row[f"batch{batch}_{tag}"] = time_session(sess, (batch, 1, h, w), a.warmup, a.repeats, a.budget)
                row = rows["student"]
            elif net in PUBLISHED:
                build, (h, w), what = PUBLISHED[net]
                sess = session(build().SerializeToString(), a.threads, spinning)
                row["what"] = what
                row[f"batch1_{tag}"] = time_session(sess, (1, 1, h, w), a.warmup, a.repeats, a.budget)
            else:
                raise SystemExit(f"unknown net '{net}'; choose from: student, {', '.join(PUBLISHED)}")
            r = row[f"batch1_{tag}"]
            print(
                f"{tag:<7}{net:<16}{str(r['input']):<20}{r['median_ms']:>9.2f} ms  p99 {r['p99_ms']:>8.2f} ms"
                f"  {r['fps']:>8.1f} fps",
                flush=True,
            )
        if "student" in rows and "zhang2016" in rows:
            zhang = rows["zhang2016"][f"batch1_{tag}"]["median_ms"]
            b1 = rows["student"][f"batch1_{tag}"]["median_ms"]
            b4 = rows["student"][f"batch4_{tag}"]["median_ms"] / 4
            rows.setdefault("student_speedup_vs_zhang2016", {})[tag] = {
                "batch1": round(zhang / b1, 1),
                "per_frame_at_batch4": round(zhang / b4, 1),
            }
            print(
                f"{tag}: student is {zhang / b1:.1f}x faster than zhang2016 at batch 1, {zhang / b4:.1f}x per frame "
                "at batch 4 (the pipeline's default)"
            )
    result = {"threads": a.threads, "spinning": ["on" if v else "off" for v in a.spinning], "nets": rows}
    print(f"wrote {save_result('model_speed', result, a.out)}")
    return result


if __name__ == "__main__":
    main()
