"""How much `--deflicker` steadies the brightness of real black-and-white film.

    python -m benchmarks.deflicker_archival

For each archival clip: the mean frame-to-frame change of mean luma (codes), before and
after the filter, and its cost per frame. Results: benchmarks/results/deflicker_<date>.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import av
import numpy as np

from benchmarks.common import SHARED, save_result
from streamcolor.deflicker import Deflicker

DEFAULT_CLIPS = [SHARED / "archival" / "street_film_early.mp4", SHARED / "archival" / "civil_defence_1950s.mp4"]


def measure(clip: Path) -> dict:
    flt = Deflicker()
    raw, out, cost = [], [], 0.0
    with av.open(str(clip)) as c:
        for f in c.decode(video=0):
            y = f.to_ndarray(format="gray")
            t = time.perf_counter()
            steady = flt(y)
            cost += time.perf_counter() - t
            raw.append(float(y.mean()))
            out.append(float(steady.mean()))
    return {
        "frames": len(raw),
        "mean_abs_luma_step_raw": float(np.abs(np.diff(raw)).mean()),
        "mean_abs_luma_step_deflickered": float(np.abs(np.diff(out)).mean()),
        "ms_per_frame": 1000 * cost / len(raw),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=Path, nargs="+", default=DEFAULT_CLIPS)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    rows = {c.name: measure(c) for c in a.clips}
    for name, r in rows.items():
        print(
            f"{name}: luma step {r['mean_abs_luma_step_raw']:.3f} -> {r['mean_abs_luma_step_deflickered']:.3f} "
            f"codes/frame, {r['ms_per_frame']:.2f} ms/frame"
        )
    result = {"clips": rows}
    print(f"wrote {save_result('deflicker', result, a.out)}")
    return result


if __name__ == "__main__":
    main()
