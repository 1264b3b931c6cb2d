"""Model-only latency of the shipped student beside the published colorization networks.

    python -m benchmarks.model_speed                 # all networks, 2 threads
    python -m benchmarks.model_speed --nets student zhang2016 --threads 2

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


def session(model: bytes | str, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    rows = {}
    for net in a.nets:
        if net == "student":
            card = load_card(DEFAULT_MODEL)
            h, w = card.input_size(480, 854)
            sess = session(str(DEFAULT_MODEL), a.threads)
            rows[net] = {"what": f"streamcolor default ({card.name}) at 854x480's input size"}
            for batch in (1, 4):
                rows[net][f"batch{batch}"] = time_session(sess, (batch, 1, h, w), a.warmup, a.repeats, a.budget)
        elif net in PUBLISHED:
            build, (h, w), what = PUBLISHED[net]
            sess = session(build().SerializeToString(), a.threads)
            rows[net] = {"what": what, "batch1": time_session(sess, (1, 1, h, w), a.warmup, a.repeats, a.budget)}
        else:
            raise SystemExit(f"unknown net '{net}'; choose from: student, {', '.join(PUBLISHED)}")
        r = rows[net]["batch1"]
        print(
            f"{net:<16}{str(r['input']):<20}{r['median_ms']:>9.2f} ms  p99 {r['p99_ms']:>8.2f} ms"
            f"  {r['fps']:>8.1f} fps",
            flush=True,
        )
    if "student" in rows and "zhang2016" in rows:
        rows["student_speedup_vs_zhang2016"] = round(
            rows["zhang2016"]["batch1"]["median_ms"] / rows["student"]["batch1"]["median_ms"], 1
        )
        print(f"student is {rows['student_speedup_vs_zhang2016']}x faster per frame than zhang2016")
    result = {"threads": a.threads, "nets": rows}
    print(f"wrote {save_result('model_speed', result, a.out)}")
    return result


if __name__ == "__main__":
    main()
