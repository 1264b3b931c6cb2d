"""Interpolate the weights of two students that share an initialisation (WiSE-FT).

    python -m training.wise A.pt B.pt --lam 0.35 --out C.pt

C = (1 - lam) x A + lam x B, parameter by parameter (Wortsman et al. 2022, "Robust
fine-tuning of zero-shot models"; the same arithmetic as a two-model soup). Both must be
train_student checkpoints of the same architecture and a*b* bins; the result is one too, with
where it came from, and exports like any other (training/export.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def interpolate(a: dict, b: dict, lam: float) -> dict:
    if not 0.0 <= lam <= 1.0:
        raise SystemExit(f"--lam must be in [0, 1], got {lam}")
    for key in ("width", "depth"):
        if a.get(key) != b.get(key):
            raise SystemExit(f"the checkpoints differ in {key}: {a.get(key)} vs {b.get(key)}")
    if a["bins"].shape != b["bins"].shape or not torch.allclose(a["bins"], b["bins"]):
        raise SystemExit("the checkpoints use different a*b* bins")
    sa, sb = a["state_dict"], b["state_dict"]
    if sa.keys() != sb.keys():
        raise SystemExit("the checkpoints have different parameters")
    state = {}
    for k, va in sa.items():
        vb = sb[k]
        state[k] = ((1 - lam) * va.float() + lam * vb.float()).to(va.dtype) if va.is_floating_point() else va
    out = dict(a)
    out["state_dict"] = state
    out["wise"] = {"a": a.get("name"), "b": b.get("name"), "lam": lam}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--lam", type=float, required=True, help="weight of B")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    a = torch.load(args.a, map_location="cpu", weights_only=False)
    b = torch.load(args.b, map_location="cpu", weights_only=False)
    a.setdefault("name", args.a.name)
    b.setdefault("name", args.b.name)
    out = interpolate(a, b, args.lam)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, args.out)
    print(f"wrote {args.out}: {1 - args.lam:g} x {args.a.name} + {args.lam:g} x {args.b.name}")


if __name__ == "__main__":
    main()
