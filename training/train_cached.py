"""Train colour decoders on cached encoder features (training/feature_cache.py).

    python -m training.train_cached --cache /work/cache/feat_mnv2 --val-cache /work/cache/feat_mnv2_val \\
        --variants d96.64.48a0.5,d96.64.48a0.5c1 --minutes 60 --out /work/runs/cached

The pretrained encoder is fixed, so a training step is the decoder's forward and backward on
stored float16 features: no photo decoding, no augmentation, no encoder pass (issue 22: the
student's old loop ran about 26 photos/s on the 2-core CPU, most of it in the encoder). The
decoder is MobileStudent's (training/student.py: lateral 1x1 convolutions from strides 16/8/4,
3x3 conv-BN-ReLU, a*b* classification head at stride 4), so the saved checkpoint is a whole
MobileStudent (the encoder's pretrained weights included) that training.export and the runtime
take unchanged.

Loss (as training/train_student.py): cross-entropy against soft-encoded targets (Zhang et al.
2016: 5 nearest bins, sigma 5), each pixel weighted by the rebalancing weight of exponent alpha,
optionally plus the whole-image cast loss (c<weight>). Distillation: --teacher-ab gives a
teacher's a*b* for every cache row (the same crops, see feature_cache); the target becomes
(1 - k) truth + k teacher (k: the variant's t<weight>), the teacher alone where a row has no
truth (unlabelled gray frames).

A cache of another encoder (EfficientNet-Lite) trains a teacher decoder, saved with kind
"cached_decoder"; `python -m training.train_cached predict --ckpt T.pt --cache LITE_CACHE
--student-cache MNV2_CACHE --out teacher_ab.npy` writes its a*b* for every row, which the
student's cache lines up with (the same crops), for --teacher-ab.

Variants: `d<w16>.<w8>.<w4>` decoder widths, `a<alpha>`, optional `c<cast weight>`,
`t<distill weight>`; several train side by side on the same batches. Resumable: `--resume`
continues from OUT/last.pt with the time already spent counted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from training.feature_cache import DEFAULT_WEIGHTS, Cache
from training.student import MobileStudent, ab_bins
from training.train_student import cast_loss, class_prior, rebalance_weights, soft_targets

VARIANT = re.compile(
    r"^d(?P<d16>\d+)\.(?P<d8>\d+)\.(?P<d4>\d+)a(?P<alpha>[0-9.]+)(?:c(?P<cast>[0-9.]+))?(?:t(?P<distill>[0-9.]+))?$"
)


def parse_variants(spec: str) -> list[dict]:
    """'d96.64.48a0.5c1,...' -> [{name, decoder, alpha, cast, distill}]; SystemExit naming a bad one."""
    out = []
    for item in spec.split(","):
        m = VARIANT.match(item.strip())
        if not m:
            raise SystemExit(f"bad variant '{item}': write d<w16>.<w8>.<w4>a<alpha>[c<cast>][t<distill>]")
        out.append(
            {
                "name": item.strip(),
                "decoder": (int(m["d16"]), int(m["d8"]), int(m["d4"])),
                "alpha": float(m["alpha"]),
                "cast": float(m["cast"] or 0.0),
                "distill": float(m["distill"] or 0.0),
            }
        )
    return out


class SparseTargets:
    """Soft-encoded a*b* targets (Zhang et al. 2016: the 5 nearest bins, Gaussian sigma 5) kept
    sparse: indices (N, 5, h, w) and weights (N, 5, h, w) instead of a dense (N, Q, h, w) tensor.
    The bins are cells of the regular ab_bins() grid, so a pixel's 5 nearest lie among the 3 x 3
    grid points around it (a 10-unit grid: the 6th nearest of those 9 is farther than any bin
    outside them); cells the data never uses are skipped. On the 2-core CPU this replaced a cdist
    to all bins that cost as much as the decoder's forward pass."""

    def __init__(self, bins: torch.Tensor, grid: float = 10.0, limit: float = 110.0, k: int = 5, sigma: float = 5.0):
        self.bins, self.grid, self.limit, self.k, self.sigma = bins, grid, limit, k, sigma
        self.g = int(round(2 * limit / grid)) + 1
        cell = ((bins + limit) / grid).round().long()
        self.lookup = torch.full((self.g * self.g,), -1, dtype=torch.long)
        self.lookup[cell[:, 0] * self.g + cell[:, 1]] = torch.arange(bins.shape[0])
        d = torch.tensor([-1, 0, 1])
        self.offsets = torch.stack(torch.meshgrid(d, d, indexing="ij"), dim=-1).reshape(9, 2)

    def __call__(self, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ab (N, 2, h, w) -> (indices (N, k, h, w) long, weights (N, k, h, w), nearest (N, h, w))."""
        n, _, h, w = ab.shape
        flat = ab.permute(0, 2, 3, 1).reshape(-1, 1, 2)
        centre = ((flat + self.limit) / self.grid).round().long()
        cand = (centre + self.offsets[None]).clamp(0, self.g - 1)  # (P, 9, 2)
        idx = self.lookup[cand[..., 0] * self.g + cand[..., 1]]  # (P, 9), -1: unused cell
        d2 = ((cand.float() * self.grid - self.limit - flat) ** 2).sum(-1)
        d2 = torch.where(idx >= 0, d2, torch.full_like(d2, float("inf")))
        dk, order = d2.topk(self.k, dim=1, largest=False)
        ik = idx.gather(1, order)
        wk = torch.exp(-dk / (2 * self.sigma**2))
        wk = wk / wk.sum(dim=1, keepdim=True).clamp_min(1e-12)
        ik = ik.clamp_min(0)  # weight 0 where fewer than k cells are in use
        shape = (n, h, w, self.k)
        return (ik.reshape(shape).permute(0, 3, 1, 2), wk.reshape(shape).permute(0, 3, 1, 2), ik[:, 0].reshape(n, h, w))


def data_bins(
    cache: Cache, rng: np.random.Generator, samples: int = 4096, rows: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The a*b* bins the data uses (of ab_bins()) and their empirical prior, from `samples` of
    `rows` (default: every row)."""
    rows = np.arange(len(cache)) if rows is None else rows
    idx = rows[rng.choice(len(rows), min(samples, len(rows)), replace=False)]
    ab = torch.from_numpy(np.asarray(cache.ab[np.sort(idx)], dtype=np.float32))
    ab = ab[torch.isfinite(ab).all(dim=3).all(dim=2).all(dim=1)]
    prior = class_prior(ab.permute(0, 2, 3, 1).reshape(-1, 2))
    keep = prior > 0
    return ab_bins()[keep], prior[keep] / prior[keep].sum()


def predict(argv: list[str]) -> None:
    """A decoder's a*b* (annealed mean at --temperature) for every row of its cache, as the
    (rows, 2, h, w) float16 .npy that --teacher-ab takes. --student-cache: the cache the student
    trains on, checked to hold the same crops (photos, size, views, seed, degradations)."""
    ap = argparse.ArgumentParser(prog="python -m training.train_cached predict", description=predict.__doc__)
    ap.add_argument("--ckpt", type=Path, required=True)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--student-cache", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--temperature", type=float, default=0.6)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    cache, student = Cache(a.cache), Cache(a.student_cache)
    same = ("photos", "size", "views", "seed", "degrade", "chunk")
    if any(cache.meta.get(k) != student.meta.get(k) for k in same) or cache.names != student.names:
        raise SystemExit(f"{a.cache} and {a.student_cache} hold different crops: build both with the same settings")
    c = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    if c.get("encoder", "mobilenet_v2") != cache.meta["encoder"]:
        raise SystemExit(
            f"{a.ckpt} was trained on {c.get('encoder')} features, {a.cache} holds {cache.meta['encoder']}"
        )
    m = MobileStudent(c["bins"], stages=16, decoder=tuple(c["decoder"]), channels=c.get("channels"))
    m.load_state_dict(c["state_dict"])
    m.eval()
    out = np.lib.format.open_memmap(a.out, mode="w+", dtype=np.float16, shape=cache.ab.shape)
    with torch.no_grad():
        for i in range(0, len(cache), 256):
            idx = np.arange(i, min(i + 256, len(cache)))
            e, _, _ = cache.batch(idx)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = m.decode(e).float()
            out[idx] = m.annealed_mean(logits, a.temperature).half().numpy()
    out.flush()
    print(f"wrote {a.out}: {len(cache)} rows of the teacher's a*b* at T {a.temperature}")


def main(argv: list[str] | None = None) -> None:
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["predict"]:
        predict(argv[1:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True, help="training.feature_cache build's OUT")
    ap.add_argument("--val-cache", type=Path, required=True, help="the same, built with --split val")
    ap.add_argument(
        "--weights", type=Path, default=DEFAULT_WEIGHTS, help="the encoder's TFLite file (exported with it)"
    )
    ap.add_argument("--variants", default="d96.64.48a0.5")
    ap.add_argument("--out", type=Path, default=Path("runs/cached"))
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--teacher-ab", type=Path, help="(rows, 2, h, w) float16 .npy of a teacher's a*b* per cache row")
    ap.add_argument("--cast-temperature", type=float, default=0.6)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-minutes", type=float, default=2.0)
    ap.add_argument("--save-minutes", type=float, default=10.0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument(
        "--hold-out-sources",
        default="",
        help="extra sources (folders, comma-separated) never trained on: the validation that chooses "
        "between models is made of them (issue 22: a random share of a source is not held out)",
    )
    ap.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the decoder's forward and backward in bfloat16 (loss in float32); on this CPU's AMX units with "
        "channels-last features: 90 crops/s on one thread against 42 in float32 (decoder 96/64/48, batch 64)",
    )
    a = ap.parse_args(argv)

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    cache, val = Cache(a.cache), Cache(a.val_cache)
    # MobileNetV2 features: the student (a whole MobileStudent, exportable). Another encoder's:
    # a teacher decoder, run on its own cache only (`predict` writes its a*b* for distillation)
    is_student = cache.meta["encoder"] == "mobilenet_v2"
    channels = None if is_student else {int(k): v for k, v in cache.meta["channels"].items()}
    variants = parse_variants(a.variants)
    teacher = np.load(a.teacher_ab, mmap_mode="r") if a.teacher_ab else None
    if teacher is not None and teacher.shape != cache.ab.shape:
        raise SystemExit(f"--teacher-ab has shape {teacher.shape}, the cache's a*b* {cache.ab.shape}")
    if any(v["distill"] for v in variants) and teacher is None:
        raise SystemExit("a t<weight> variant distils: give --teacher-ab")
    held = tuple(x for x in a.hold_out_sources.split(",") if x)
    pool = cache.rows_without(held)  # the rows trained on: whole held-out sources never
    bins, prior = data_bins(cache, rng, rows=pool)
    sparse = SparseTargets(bins)
    print(
        f"{len(pool)} training crops ({len(cache) - len(pool)} of held-out sources left out), "
        f"{len(val)} validation crops, {bins.shape[0]} a*b* bins",
        flush=True,
    )

    models, opts, weights = [], [], []
    for v in variants:
        m = MobileStudent(
            bins, stages=16, decoder=v["decoder"], weights=a.weights if is_student else None, channels=channels
        )
        m.encoder.requires_grad_(False)
        models.append(m)
        params = [p for p in m.parameters() if p.requires_grad]
        opts.append(torch.optim.AdamW(params, lr=a.lr, weight_decay=1e-4))
        weights.append(rebalance_weights(prior, bins, v["alpha"]))

    vidx = rng.choice(len(val), min(1024, len(val)), replace=False)
    ev, abv, _ = val.batch(vidx)
    tv, _ = soft_targets(abv, bins)

    def val_figures(m: MobileStudent) -> dict[str, float]:
        m.eval()
        with torch.no_grad():
            logits = torch.cat([m.decode({s: t[i : i + 256] for s, t in ev.items()}) for i in range(0, len(vidx), 256)])
            pred = m.annealed_mean(logits, a.cast_temperature)
        m.train()
        return {
            "ce": round(float((-(tv * F.log_softmax(logits, 1)).sum(1)).mean()), 4),
            "ab_rmse": round(float(((pred - abv) ** 2).mean().sqrt()), 3),
            "chroma_ratio": round(float(pred.norm(dim=1).mean() / abv.norm(dim=1).mean()), 3),
            "cast": round(float((pred.mean(dim=(2, 3)) - abv.mean(dim=(2, 3))).norm(dim=1).mean()), 3),
        }

    a.out.mkdir(parents=True, exist_ok=True)
    last_path = a.out / "last.pt"
    step, history, start = 0, [], time.time()
    losses = [0.0] * len(models)
    if a.resume and last_path.exists():
        st = torch.load(last_path, map_location="cpu", weights_only=False)
        if st["variants"] != [v["name"] for v in variants]:
            raise SystemExit(f"{last_path} trained {st['variants']}, not {[v['name'] for v in variants]}")
        for m, o, sd, osd in zip(models, opts, st["models"], st["opts"]):
            m.load_state_dict(sd)
            o.load_state_dict(osd)
        step, history, losses = st["step"], st["history"], st["losses"]
        rng.bit_generator.state = st["rng"]
        start = time.time() - st["elapsed"]
        print(f"resumed at step {step} ({st['elapsed'] / 60:.1f} min done)", flush=True)

    def save_state() -> None:
        tmp = last_path.with_suffix(".tmp")
        torch.save(
            {
                "variants": [v["name"] for v in variants],
                "models": [m.state_dict() for m in models],
                "opts": [o.state_dict() for o in opts],
                "step": step,
                "history": history,
                "losses": losses,
                "rng": rng.bit_generator.state,
                "elapsed": time.time() - start,
            },
            tmp,
        )
        os.replace(tmp, last_path)

    budget = a.minutes * 60.0
    last_log = last_val = last_save = time.time()
    data_time = 0.0
    while (frac := (time.time() - start) / budget) < 1.0:
        lr = a.lr * min(1.0, frac / 0.02) * 0.5 * (1 + math.cos(math.pi * frac))
        t_data = time.time()
        idx = pool[rng.choice(len(pool), a.batch, replace=len(pool) < a.batch)]  # tiny caches (tests): repeats
        e, ab, _ = cache.batch(idx)
        e = {s: t.contiguous(memory_format=torch.channels_last) for s, t in e.items()}
        with torch.no_grad():
            known = torch.isfinite(ab).flatten(1).all(dim=1)
            ab_t = torch.where(known[:, None, None, None], ab, torch.zeros_like(ab))
            i_truth, w_truth, nearest = sparse(ab_t)
            if teacher is not None:
                t_ab = torch.from_numpy(np.ascontiguousarray(teacher[np.sort(idx)])).float()
                i_teacher, w_teacher, nearest_t = sparse(t_ab)
                nearest = torch.where(known[:, None, None], nearest, nearest_t)
        data_time += time.time() - t_data
        for i, (v, m, opt, w) in enumerate(zip(variants, models, opts, weights)):
            for g in opt.param_groups:
                g["lr"] = lr
            k = v["distill"]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                logits = m.decode(e).float()
            logp = F.log_softmax(logits, dim=1)
            nll = -(logp.gather(1, i_truth) * w_truth).sum(1)  # (N, h, w)
            if k > 0:
                kk = torch.where(known, torch.full_like(known, k, dtype=torch.float32), torch.ones(len(idx)))
                nll_t = -(logp.gather(1, i_teacher) * w_teacher).sum(1)
                nll = (1 - kk[:, None, None]) * nll + kk[:, None, None] * nll_t
            per_photo = (nll * w[nearest]).mean(dim=(1, 2))
            if k == 0:
                per_photo = per_photo[known]
            loss = per_photo.mean()
            if v["cast"] and known.any():
                loss = loss + v["cast"] * cast_loss(m.annealed_mean(logits, a.cast_temperature)[known], ab[known])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses[i] = 0.98 * losses[i] + 0.02 * loss.item() if step else loss.item()
        step += 1
        now = time.time()
        if now - last_log > 30:
            last_log = now
            rate = step * a.batch / (now - start)
            msg = " ".join(f"{v['name']}={x:.3f}" for v, x in zip(variants, losses))
            print(
                f"step {step} {frac * 100:.0f}% lr {lr:.2e} {rate:.0f} crops/s (data {data_time / (now - start):.0%}) "
                f"loss {msg}",
                flush=True,
            )
        if now - last_val > a.val_minutes * 60:
            last_val = now
            figs = {v["name"]: val_figures(m) for v, m in zip(variants, models)}
            history.append({"step": step, "seconds": round(now - start), "val": figs})
            print(f"val at step {step}: {json.dumps(figs)}", flush=True)
        if now - last_save > a.save_minutes * 60:
            save_state()
            last_save = time.time()

    elapsed = time.time() - start
    save_state()
    report = {
        "steps": step,
        "seconds": round(elapsed),
        "batch": a.batch,
        "crops": len(cache),
        "crops_per_second": round(step * a.batch / max(elapsed, 1e-9), 1),
        "history": history,
        "variants": {},
    }
    for v, m in zip(variants, models):
        figs = val_figures(m)
        report["variants"][v["name"]] = figs
        torch.save(
            {
                "state_dict": m.state_dict(),
                "kind": "student" if is_student else "cached_decoder",
                "held_out_sources": list(held),
                "encoder": cache.meta["encoder"],
                "channels": channels,
                "arch": "mobile",
                "stages": 16,
                "decoder": list(v["decoder"]),
                "hints": False,
                "backbone": cache.meta["provenance"],
                "degrade": cache.meta["degrade"],
                "freeze_stride": 16,
                "width": 16,
                "alpha": v["alpha"],
                "depth": 4,
                "dropout": 0.0,
                "bins": bins,
                "steps": step,
                "seconds": elapsed,
                "batch": a.batch,
                "crop": cache.meta["size"],
                "distilled_from": str(a.teacher_ab) if v["distill"] else None,
                "distill_weight": v["distill"],
                "cast_weight": v["cast"],
                "cast_temperature": a.cast_temperature if v["cast"] else None,
                "init_from": None,
                "init_steps": 0,
                "init_seconds": 0.0,
                "feature_cache": {k: cache.meta[k] for k in ("encoder", "size", "views", "degrade", "photos")},
            },
            a.out / f"student_{v['name']}.pt",
        )
        print(v["name"], json.dumps(figs), flush=True)
    (a.out / "report.json").write_text(json.dumps(report, indent=2))
    print(f"done: {step} steps in {elapsed:.0f}s", flush=True)


if __name__ == "__main__":
    main()
