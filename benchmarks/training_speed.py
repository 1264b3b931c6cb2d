"""Training throughput on this CPU: the student's photo loop against decoders on cached features.

    python -m benchmarks.training_speed --pack PACK.npz --cache CACHE --val-cache VAL_CACHE --minutes 2

Runs, one after the other on the same machine and thread count, (1) training.train_student as
the shipped default was trained (the MobileNetV2 student, its encoder fixed up to stride 4 and
fine-tuned above, archival degradations, L*a*b* pack, batch 32) and (2) training.train_cached
on the frozen encoder's cached features (the same decoder, batch 64, bfloat16), each for
--minutes, and reports photos (crops) per second from each run's own report (warm-up included
in both: the first steps are a small share of a run of minutes). Issue 22.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from benchmarks.common import RESULTS, machine

WEIGHTS = Path(__file__).resolve().parents[1].parent / "shared" / "weights" / "tf2_mobilenet_v2_1.0_224_ptq.tflite"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", type=Path, required=True, help="training.pack output (the old loop's data)")
    ap.add_argument("--cache", type=Path, required=True, help="training.feature_cache build output")
    ap.add_argument("--val-cache", type=Path, required=True)
    ap.add_argument("--weights", type=Path, default=WEIGHTS)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--decoder", default="96,64,48")
    ap.add_argument("--out", type=Path, help="JSON file (default: benchmarks/results/training_speed_<date>.json)")
    a = ap.parse_args(argv)
    from training import train_cached, train_student

    d16, d8, d4 = a.decoder.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        old_out, new_out = Path(tmp) / "old", Path(tmp) / "new"
        train_student.main(["--pack", str(a.pack), "--out", str(old_out), "--variants", "m16a0.5c1",
                            "--backbone", str(a.weights), "--degrade", "0.6", "--freeze-stride", "4",
                            "--lab-cache", "--threads", str(a.threads), "--batch", "32", "--lr", "1e-3",
                            "--decoder", a.decoder, "--minutes", str(a.minutes), "--save-minutes", "1000",
                            "--val-minutes", "1000", "--device", "cpu"])  # fmt: skip
        old = json.loads((old_out / "report.json").read_text())
        train_cached.main(["--cache", str(a.cache), "--val-cache", str(a.val_cache), "--weights", str(a.weights),
                           "--variants", f"d{d16}.{d8}.{d4}a0.5c1", "--threads", str(a.threads), "--batch", "64",
                           "--minutes", str(a.minutes), "--out", str(new_out), "--save-minutes", "1000",
                           "--val-minutes", "1000"])  # fmt: skip
        new = json.loads((new_out / "report.json").read_text())
    old_rate = old["steps"] * old["batch"] / old["seconds"]
    result = {
        "machine": machine(),
        "threads": a.threads,
        "minutes_each": a.minutes,
        "photo_loop": {"photos_per_second": round(old_rate, 1), "steps": old["steps"], "batch": old["batch"]},
        "cached_features": {
            "crops_per_second": new["crops_per_second"],
            "steps": new["steps"],
            "batch": new["batch"],
            "bf16": True,
        },
        "ratio": round(new["crops_per_second"] / old_rate, 2),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))
    out = a.out or RESULTS / f"training_speed_{result['machine']['date'][:10]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
