"""Choose a model among exported candidates, on a validation folder only.

    python -m training.select --data VALIDATION_FOLDER --models runs/sel/*.onnx --json runs/selection.json

Each candidate (an ONNX model with its card: a checkpoint exported at some temperature and
input size) is evaluated with training.evaluate on the same photos; the pick is the highest
PSNR among those with colourfulness >= --min-colourfulness x the truth and CIEDE2000 below
the gray baseline's (the rule the defaults have been chosen by). Never give it the eval set:
choosing on the set you report is how a +0.7 dB became -0.2 dB on photos nobody had seen.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.evaluate import evaluate


def pick(rows: list[dict], min_colourfulness: float) -> dict | None:
    ok = [
        r
        for r in rows
        if r["ours"]["colourfulness_ratio"] >= min_colourfulness and r["ours"]["ciede2000"] < r["gray"]["ciede2000"]
    ]
    return max(ok, key=lambda r: r["ours"]["psnr"]) if ok else None


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="validation photos (never the eval set)")
    ap.add_argument("--models", type=Path, nargs="+", required=True)
    ap.add_argument("--min-colourfulness", type=float, default=0.8)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    rows = []
    for m in a.models:
        s = evaluate(a.data, m, threads=a.threads)
        rows.append({"model": str(m), "ours": s["ours"], "gray": s["gray"], "images": s["images"]})
        o, g = s["ours"], s["gray"]
        print(
            f"{m.name}: PSNR {o['psnr']:.3f} (gray {g['psnr']:.3f}), CIEDE2000 {o['ciede2000']:.3f} "
            f"(gray {g['ciede2000']:.3f}), colourfulness {o['colourfulness_ratio']:.3f}x, cast {o['cast']:.2f}, "
            f"false colour {o['false_colour']:.3f}",
            flush=True,
        )
    best = pick(rows, a.min_colourfulness)
    out = {
        "data": str(a.data),
        "rule": f"highest PSNR with colourfulness >= {a.min_colourfulness}x and CIEDE2000 below gray",
        "candidates": rows,
        "pick": best["model"] if best else None,
    }
    print(f"pick: {out['pick']}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
