"""Train the real-time student directly on photos (classification over quantized a*b*).

    python -m training.train_student --pack packed/train144.npz --minutes 5 --out runs/student

Several variants (width, class-rebalancing exponent) train side by side on the same
batches so that one run compares them; the choice between them and the annealed-mean
temperature is made afterwards by measurement (training/evaluate.py).

Loss (Zhang et al. 2016): cross-entropy against soft-encoded targets (5 nearest bins,
Gaussian sigma 5), each pixel weighted by w(q) ~ ((1 - lam) p(q) + lam / Q)^-alpha from the
smoothed empirical a*b* prior. alpha = 0 is plain classification, alpha = 1 is the paper's
full rebalancing. The whole dataset lives in (GPU) memory as uint8; crops, flips and
rescaling are done there, so a small network is not starved by a data loader.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from training.data import is_validation, lab_crops, lab_pack
from training.degrade import degrade_l
from training.pack import load_pack
from training.student import MobileStudent, StudentUNet, ab_bins
from training.teachers import load_teacher, teacher_ab


def class_prior(ab: torch.Tensor, grid: float = 10.0, limit: float = 110.0) -> torch.Tensor:
    """(M, 2) a*b* samples -> (G*G,) empirical probability of each cell of ab_bins(grid, limit).
    The nearest centre on a regular grid is a rounding, so this is O(M)."""
    g = int(round(2 * limit / grid)) + 1
    i = ((ab + limit) / grid).round().long().clamp(0, g - 1)
    q = i[:, 0] * g + i[:, 1]
    return torch.bincount(q, minlength=g * g).float() / q.numel()


def rebalance_weights(prior: torch.Tensor, bins: torch.Tensor, alpha: float, lam: float = 0.5) -> torch.Tensor:
    d2 = torch.cdist(bins, bins) ** 2
    smooth = torch.exp(-d2 / (2 * 5.0**2)) @ prior
    smooth = smooth / smooth.sum()
    w = ((1 - lam) * smooth + lam / bins.shape[0]) ** -1
    w = w / (w * smooth).sum()  # E_p[w] = 1
    return w**alpha


def soft_targets(ab: torch.Tensor, bins: torch.Tensor, k: int = 5, sigma: float = 5.0):
    """ab (N, 2, h, w) -> (N, Q, h, w) soft one-hot over the k nearest bins, and (N, h, w) nearest."""
    n, _, h, w = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    d = torch.cdist(flat, bins)
    dk, ik = d.topk(k, dim=1, largest=False)
    wk = torch.exp(-(dk**2) / (2 * sigma**2))
    wk = wk / wk.sum(dim=1, keepdim=True)
    t = torch.zeros(flat.shape[0], bins.shape[0], device=ab.device).scatter_(1, ik, wk)
    return t.reshape(n, h, w, -1).permute(0, 3, 1, 2), ik[:, 0].reshape(n, h, w)


def batch_lab(imgs: torch.Tensor, n: int, crop: int, gen: torch.Generator, degrade: float = 0.0):
    """-> x (n, 1, crop, crop) normalised L*, degraded with probability `degrade` (training/degrade.py),
    and the clean photo's a*b* (n, 2, crop/4, crop/4)."""
    lab = lab_crops(imgs, n, crop, gen)
    lum = degrade_l(lab[:, :1], gen, p=degrade) if degrade > 0 else lab[:, :1]
    x = (lum - 50.0) / 50.0
    ab = F.avg_pool2d(lab[:, 1:], 4)
    return x, ab


def batch_lab_hints(
    imgs: torch.Tensor,
    n: int,
    crop: int,
    gen: torch.Generator,
    degrade: float = 0.0,
    p_segment: float = 0.0,
    **hint_args,
):
    """batch_lab and, from the same clean crops, simulated hints (simulate_hints); with
    p_segment, that share of the photos get one object repainted instead (segment_hints), and
    a fourth value: segment_hints' `unchanged` mask."""
    lab = lab_crops(imgs, n, crop, gen)
    lum = degrade_l(lab[:, :1], gen, p=degrade) if degrade > 0 else lab[:, :1]
    ab = F.avg_pool2d(lab[:, 1:], 4)
    hints = simulate_hints(lab[:, 1:], gen, **hint_args)
    if p_segment <= 0:
        return (lum - 50.0) / 50.0, ab, hints
    hints, ab, unchanged = segment_hints(lab, ab, hints, gen, p_segment)
    return (lum - 50.0) / 50.0, ab, hints, unchanged


def grow_segment(lab4: torch.Tensor, seeds: torch.Tensor, tolerance: torch.Tensor) -> torch.Tensor:
    """For each photo, the cells connected to its seed through cells whose L*a*b* lies within
    its tolerance (CIE76) of the seed's: a region grown by flood fill, the object a click means.
    lab4: (K, 3, h, w) float32 L*a*b* at the output grid; seeds: (K, 2) long (row, column);
    tolerance: (K,) float. -> (K, h, w) bool, each seed included."""
    k, _, h, w = lab4.shape
    idx = torch.arange(k)
    at = lab4[idx, :, seeds[:, 0], seeds[:, 1]]  # (K, 3)
    near = ((lab4 - at[:, :, None, None]).norm(dim=1, keepdim=True) < tolerance[:, None, None, None]).float()
    m = torch.zeros(k, 1, h, w)
    m[idx, 0, seeds[:, 0], seeds[:, 1]] = 1.0
    for _ in range(h + w):
        grown = F.max_pool2d(m, 3, 1, 1) * near
        if torch.equal(grown, m):
            break
        m = grown
    return m[:, 0] > 0


def segment_hints(
    lab: torch.Tensor,
    ab: torch.Tensor,
    hints: torch.Tensor,
    gen: torch.Generator,
    p: float,
    tolerance: tuple[float, float] = (8.0, 20.0),
    max_points: int = 3,
    p_keep_truth: float = 0.5,
    area: tuple[float, float] = (0.02, 0.4),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hints that do not reveal the photo's palette (issue 24): on a share `p` of the photos,
    one object (grow_segment from a random cell, tolerance uniform in `tolerance`) is repainted
    with one colour and 1..max_points hints of that colour are put inside it; the target
    a*b* is the truth everywhere else. Half the colours are a random saturated hue (chroma
    20-70), half a colour of another photo of the batch (a plausible one), so a hint's colour
    does not tell which kind it is. With probability p_keep_truth the photo keeps its truth
    hints outside the object (each hint then stays local among others).

    lab: (N, 3, H, W) L*a*b* crops; ab: (N, 2, H/4, W/4) target a*b*; hints: (N, 3, H, W)
    simulate_hints' planes; area: the share of the frame an object covers (of three seeds, the
    first region within it is taken, else the smallest).
    -> (hints, ab, unchanged): new tensors, the other photos as they were, and (N, H/4, W/4)
    bool, True where a repainted photo is outside its object: there the hints
    tell nothing, and the training's target is the model's own picture without hints (the
    hint must change nothing there), not the truth."""
    n, _, hh, ww = lab.shape
    h, w = ab.shape[2:]
    lab4 = F.avg_pool2d(lab, 4)
    hints, ab = hints.clone(), ab.clone()
    pick = torch.nonzero(torch.rand(n, generator=gen) < p).flatten()
    if len(pick) == 0:
        return hints, ab, torch.zeros(n, h, w, dtype=torch.bool)
    seeds = torch.stack(
        [torch.randint(0, h, (len(pick),), generator=gen), torch.randint(0, w, (len(pick),), generator=gen)], 1
    )
    tols = tolerance[0] + (tolerance[1] - tolerance[0]) * torch.rand(len(pick), generator=gen)
    # three seeds a photo; the first region of an object's size is taken, else the smallest
    tries = 3
    seeds = torch.cat(
        [seeds]
        + [
            torch.stack(
                [torch.randint(0, h, (len(pick),), generator=gen), torch.randint(0, w, (len(pick),), generator=gen)], 1
            )
            for _ in range(tries - 1)
        ]
    )
    grown = grow_segment(lab4[pick].repeat(tries, 1, 1, 1), seeds, tols.repeat(tries)).reshape(tries, len(pick), h, w)
    share = grown.float().mean(dim=(2, 3))  # (tries, K)
    fits = (share >= area[0]) & (share <= area[1])
    first = torch.where(fits.any(0), fits.float().argmax(0), share.argmin(0))
    regions = grown[first, torch.arange(len(pick))]
    unchanged = torch.zeros(n, h, w, dtype=torch.bool)
    for i, region in zip(pick.tolist(), regions):
        unchanged[i] = ~region
        if float(torch.rand(1, generator=gen)) < 0.5:
            hue = 2 * math.pi * float(torch.rand(1, generator=gen))
            chroma = 20.0 + 50.0 * float(torch.rand(1, generator=gen))
            colour = torch.tensor([chroma * math.cos(hue), chroma * math.sin(hue)])
        else:
            j = int(torch.randint(0, n, (1,), generator=gen))
            y, x = int(torch.randint(0, h, (1,), generator=gen)), int(torch.randint(0, w, (1,), generator=gen))
            colour = ab[j, :, y, x].clone() if j != i else -ab[i, :, y, x]
        ab[i][:, region] = colour[:, None].to(ab.dtype)
        big = F.interpolate(region[None, None].float(), size=(hh, ww), mode="nearest")[0, 0] > 0
        if float(torch.rand(1, generator=gen)) < p_keep_truth:
            hints[i][:, big] = 0.0  # truth hints inside the object would contradict it
        else:
            hints[i] = 0.0
        cells = torch.nonzero(region)
        for _ in range(int(torch.randint(1, max_points + 1, (1,), generator=gen))):
            cy, cx = cells[int(torch.randint(0, len(cells), (1,), generator=gen))].tolist()
            # a patch of 1..4 px inside the cell (a user's click is inside the object)
            size = int(torch.randint(1, 5, (1,), generator=gen))
            y0 = cy * 4 + int(torch.randint(0, 5 - size, (1,), generator=gen))
            x0 = cx * 4 + int(torch.randint(0, 5 - size, (1,), generator=gen))
            hints[i, 0, y0 : y0 + size, x0 : x0 + size] = float(colour[0]) / 110.0
            hints[i, 1, y0 : y0 + size, x0 : x0 + size] = float(colour[1]) / 110.0
            hints[i, 2, y0 : y0 + size, x0 : x0 + size] = 1.0
    return hints, ab, unchanged


def simulate_hints(
    ab: torch.Tensor,
    gen: torch.Generator,
    p_none: float = 0.5,
    p_geometric: float = 0.125,
    max_points: int = 50,
    max_patch: int = 5,
) -> torch.Tensor:
    """User hints drawn from the truth, as Zhang et al. 2017 (sec. 3.3) simulate them for training.

    ab: (N, 2, H, W) float32 true a*b*. Each photo has no hint with probability p_none, else a
    number of points drawn from a geometric distribution (p_geometric: mean 8, at most
    max_points); each point is a square patch of uniform random side 1..max_patch pixels at a
    uniform random place, coloured with the truth's mean a*b* over the patch (overlaps: their
    mean). So most batches hold photos with few hints and many with none, and the automatic
    result keeps being trained.
    returns (N, 3, H, W) float32: a*/110 * mask, b*/110 * mask, mask.
    """
    n, _, h, w = ab.shape
    dev = ab.device
    u = torch.rand(n, generator=gen)
    count = (torch.log(torch.rand(n, generator=gen)) / math.log(1 - p_geometric)).floor().long() + 1
    count = torch.where(u < p_none, torch.zeros_like(count), count.clamp(max=max_points))
    p = int(count.max())
    out = torch.zeros(n, 3, h, w, device=dev)
    if p == 0:
        return out
    size = torch.randint(1, max_patch + 1, (n, p), generator=gen)
    y0 = (torch.rand(n, p, generator=gen) * (h - size + 1)).floor().long()
    x0 = (torch.rand(n, p, generator=gen) * (w - size + 1)).floor().long()
    live = torch.arange(p)[None, :] < count[:, None]
    yy, xx = torch.arange(h)[None, None, :, None], torch.arange(w)[None, None, None, :]
    inside = (
        (
            (yy >= y0[..., None, None])
            & (yy < (y0 + size)[..., None, None])
            & (xx >= x0[..., None, None])
            & (xx < (x0 + size)[..., None, None])
            & live[..., None, None]
        )
        .float()
        .to(dev)
    )  # (n, p, h, w)
    area = inside.sum(dim=(2, 3)).clamp(min=1.0)
    colour = torch.einsum("nphw,nchw->npc", inside, ab.float()) / area[..., None]  # (n, p, 2)
    cover = inside.sum(dim=1)  # (n, h, w)
    mask = (cover > 0).float()
    ab_map = torch.einsum("nphw,npc->nchw", inside, colour) / cover.clamp(min=1.0)[:, None]
    out[:, :2] = ab_map / 110.0 * mask[:, None]
    out[:, 2] = mask
    return out


def parse_variants(spec: str) -> list[dict]:
    """'w24a0.5,w16a1d5p0.1k0.3t1i,m32a0.5c1i' -> [{'width': 24, 'alpha': 0.5, 'depth': 4, 'dropout': 0.0,
    'distill': None, 'cast': 0.0, 'teacher': 0, 'init': False, 'arch': 'unet'}, ...]
    w: width of the strided U-Net, or m: the MobileNetV2 student with encoder stages 16 or 32
    (needs --backbone), a: rebalancing exponent, d: depth (4 or 5), p: dropout, k: weight of the
    teacher's targets for this variant (default: --distill), c: weight of the whole-image cast loss
    (see cast_loss; default 0), t: which --teacher (0-based, default the first), i: start from
    --init, h: with user-hint inputs (m only, Zhang et al. 2017; hints simulated from the truth,
    see simulate_hints), g: the gated hint branch instead (MobileStudent._hint_terms; with
    --train-only-hints only the branch learns)."""
    import re

    pattern = (
        r"(?P<arch>[wm])(?P<width>\d+)a(?P<alpha>[\d.]+)(?:d(?P<depth>\d))?(?:p(?P<dropout>[\d.]+))?"
        r"(?:k(?P<distill>[\d.]+))?(?:c(?P<cast>[\d.]+))?(?:t(?P<teacher>\d))?(?P<init>i)?(?P<hints>[hg])?"
    )
    out = []
    for item in spec.split(","):
        item = item.strip()
        m = re.fullmatch(pattern, item)
        if not m:
            raise SystemExit(f"bad variant '{item}': expected like w16a0.5, m32a0.5c1i or w24a0.75d5p0.1k0.3t1i")
        arch = "mobile" if m["arch"] == "m" else "unet"
        if arch == "mobile" and int(m["width"]) not in (16, 32):
            raise SystemExit(f"bad variant '{item}': the MobileNetV2 student's stages are m16 or m32")
        if m["hints"] and arch != "mobile":
            raise SystemExit(f"bad variant '{item}': hints (h) are for the MobileNetV2 student (m)")
        out.append(
            {
                "name": item,
                "arch": arch,
                "width": int(m["width"]),
                "alpha": float(m["alpha"]),
                "depth": int(m["depth"] or 4),
                "dropout": float(m["dropout"] or 0.0),
                "distill": float(m["distill"]) if m["distill"] else None,
                "cast": float(m["cast"] or 0.0),
                "teacher": int(m["teacher"] or 0),
                "init": bool(m["init"]),
                "hints": {"h": True, "g": "gated"}.get(m["hints"], False),
            }
        )
    return out


def cast_loss(pred_ab: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Whole-image cast: L1 between the mean a*, b* of the prediction and of the truth.

    pred_ab: (N, 2, h, w) float a*b* (the annealed mean at the shipping temperature), ab:
    (N, 2, H, W) float truth; the grids may differ, only their means are compared. Returns a
    scalar: the mean over photos of |mean a* error| + |mean b* error|, divided by 10 (about one
    a*b* bin) so that weight 1 is on the scale of the cross-entropy. The per-pixel loss alone
    leaves the mean colour to the annealed mean, which shrinks towards gray where the network
    is unsure; this term is the cast error training/evaluate.py reports (issue 13).
    """
    return (pred_ab.mean(dim=(2, 3)) - ab.mean(dim=(2, 3))).abs().sum(dim=1).mean() / 10.0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("runs/student"))
    ap.add_argument("--minutes", type=float, default=5.0, help="training time budget")
    ap.add_argument("--variants", default="w24a0.5,w24a1")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images (smoke tests)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(
        "--teacher",
        type=Path,
        nargs="+",
        default=[],
        help="distil: train_teacher checkpoint(s) whose a*b* the student also learns (a variant's t<j> picks one)",
    )
    ap.add_argument("--distill", type=float, default=0.5, help="weight of the teacher's targets (1 - it: ground truth)")
    ap.add_argument("--init", type=Path, help="a student checkpoint that variants ending in 'i' start from")
    ap.add_argument("--init-lr-scale", type=float, default=0.5, help="learning rate factor for those variants")
    ap.add_argument(
        "--backbone",
        type=Path,
        help="ImageNet MobileNetV2 TFLite file (../shared/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite) for m variants",
    )
    ap.add_argument("--encoder-lr-scale", type=float, default=0.2, help="learning rate factor of a pretrained encoder")
    ap.add_argument("--decoder", default="96,64,48", help="m variants: decoder widths at strides 16, 8, 4")
    ap.add_argument("--degrade", type=float, default=0.0, help="share of inputs with archival degradations")
    ap.add_argument("--lab-cache", action="store_true", help="convert the pack to L*a*b* once (CPU runs)")
    ap.add_argument(
        "--freeze-stride",
        type=int,
        default=0,
        help="m variants: keep the pretrained encoder's layers up to this stride (2, 4, 8) fixed; "
        "16 or 32 (the variant's stages): the whole encoder, computed once for all variants "
        "(all must start from --init)",
    )
    ap.add_argument("--hint-none", type=float, default=0.5, help="h variants: share of photos without hints")
    ap.add_argument(
        "--hint-segment",
        type=float,
        default=0.0,
        help="h/g variants: share of photos whose hints repaint one object instead of telling the truth "
        "(segment_hints: a hint that stays on its object, issue 24)",
    )
    ap.add_argument(
        "--train-only-hints",
        action="store_true",
        help="g variants: train the hint branch alone (encoder, decoder and their batch norms fixed): "
        "without hints the model stays its --init, exactly",
    )
    ap.add_argument(
        "--cast-temperature",
        type=float,
        default=0.6,
        help="c variants: annealed-mean temperature the cast loss sees (the one the model will ship with)",
    )
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for PyTorch (0: its default)")
    ap.add_argument("--val-minutes", type=float, default=0.75, help="validation cross-entropy this often")
    ap.add_argument("--save-minutes", type=float, default=10.0, help="write a resumable checkpoint this often")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt (same arguments)")
    a = ap.parse_args(argv)

    torch.manual_seed(a.seed)
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    t0 = time.time()
    imgs_np, names = load_pack(a.pack, workers=os.cpu_count() or 2)
    if a.limit:
        imgs_np, names = imgs_np[: a.limit], names[: a.limit]
    val_mask = np.array([is_validation(n) for n in names])
    if not val_mask.any():  # tiny sets: keep one image aside rather than none
        val_mask[-1] = True
    imgs = torch.from_numpy(imgs_np[~val_mask]).to(dev)
    val = torch.from_numpy(imgs_np[val_mask]).to(dev)
    if a.lab_cache:
        imgs, val = lab_pack(imgs), lab_pack(val)
    print(f"data: {len(imgs)} train, {len(val)} val, loaded in {time.time() - t0:.1f}s on {dev}", flush=True)

    gen = torch.Generator().manual_seed(a.seed)
    with torch.no_grad():
        full = ab_bins().to(dev)
        prior = torch.zeros(full.shape[0], device=dev)
        for _ in range(8):
            _, ab = batch_lab(imgs, min(2048, len(imgs)), 64, gen)
            prior += class_prior(ab.permute(0, 2, 3, 1).reshape(-1, 2))
        keep = prior > 0
        init = torch.load(a.init, map_location="cpu", weights_only=False) if a.init else None
        if init is not None:  # the starting point's classes, so its head still means the same
            keep = (torch.cdist(full, init["bins"].to(dev)) < 1e-6).any(dim=1)
            prior = prior + 1e-8
        bins = full[keep]
        prior = prior[keep] / prior[keep].sum()
    print(f"a*b* bins in use: {bins.shape[0]} of {full.shape[0]}", flush=True)

    variants = parse_variants(a.variants)
    for v in variants:
        if v["distill"] is None:
            v["distill"] = a.distill if a.teacher else 0.0
        if not 0.0 <= v["distill"] <= 1.0:
            raise SystemExit(f"distillation weight of {v['name']} must be in [0, 1], got {v['distill']}")
        if v["distill"] > 0 and v["teacher"] >= len(a.teacher):
            raise SystemExit(f"variant {v['name']} distils from teacher {v['teacher']}: give that many --teacher")
        if v["init"] and init is None:
            raise SystemExit(f"variant {v['name']} starts from a checkpoint: give --init")
        if v["arch"] == "mobile" and a.backbone is None and not v["init"]:
            raise SystemExit(f"variant {v['name']} is the MobileNetV2 student: give --backbone")
    # a teacher runs on every batch: only those some variant learns from are loaded
    used = sorted({v["teacher"] for v in variants if v["distill"] > 0})
    teachers = {j: load_teacher(a.teacher[j], dev) for j in used}

    def targets(x: torch.Tensor, ab: torch.Tensor):
        """Soft targets from the ground truth and, when distilling, each teacher's."""
        t, nearest = soft_targets(ab, bins)
        t_teachers = {}
        for j, teacher in teachers.items():
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                t_ab = teacher_ab(teacher, x).float()
            t_teachers[j], _ = soft_targets(F.avg_pool2d(t_ab, 4), bins)
        return t, t_teachers, nearest

    decoder = tuple(int(d) for d in a.decoder.split(","))
    models, opts, weights = [], [], []
    for v in variants:
        if v["arch"] == "mobile":
            m = MobileStudent(bins, stages=v["width"], decoder=decoder, weights=a.backbone, hints=v["hints"])
        else:
            m = StudentUNet(bins, width=v["width"], depth=v["depth"], dropout=v["dropout"])
        if v["init"]:
            got = (init.get("arch", "unet"), init.get("stages", init.get("width")), init.get("depth", 4))
            want = (v["arch"], v["width"], v["depth"] if v["arch"] == "unet" else init.get("depth", 4))
            if got != want:
                raise SystemExit(f"--init is {got[0]} width {got[1]} depth {got[2]}, not {v['name']}")
            missing, unexpected = m.load_state_dict(init["state_dict"], strict=False)
            if unexpected or any(not k.startswith("hint") for k in missing):
                raise SystemExit(f"--init does not fit {v['name']}: missing {missing}, unexpected {unexpected}")
        m = m.to(dev).to(memory_format=torch.channels_last)
        models.append(m)
        if v["arch"] == "mobile" and a.freeze_stride:  # fixed early layers: no backward through them
            from training.mobilenet import STAGE_ENDS

            if a.freeze_stride not in (2, 4, 8, v["width"]):
                raise SystemExit(f"--freeze-stride must be 2, 4, 8 or the variant's stages, got {a.freeze_stride}")
            for mod in [m.encoder.stem, *m.encoder.blocks[: STAGE_ENDS[a.freeze_stride] + 1]]:
                mod.requires_grad_(False)
        if a.train_only_hints:
            if v["hints"] != "gated":
                raise SystemExit(f"--train-only-hints is for g variants, not {v['name']}")
            for name, prm in m.named_parameters():
                prm.requires_grad_(name.startswith("hint"))
            m.frozen_bn = True
            m.train()
        if v["arch"] == "mobile":  # the pretrained encoder moves slower than the new decoder
            enc = {id(p) for p in m.encoder.parameters() if p.requires_grad}
            groups = [
                {"params": [p for p in m.parameters() if id(p) in enc], "lr_scale": a.encoder_lr_scale},
                {"params": [p for p in m.parameters() if id(p) not in enc and p.requires_grad], "lr_scale": 1.0},
            ]
        else:
            groups = [{"params": list(m.parameters()), "lr_scale": 1.0}]
        opts.append(torch.optim.AdamW([g for g in groups if g["params"]], lr=a.lr, weight_decay=1e-4))
        weights.append(rebalance_weights(prior, bins, v["alpha"]))
    # the whole encoder fixed and the same in every variant: computed once per batch
    shared_encoder = a.freeze_stride in (16, 32) and all(
        v["arch"] == "mobile" and v["init"] and v["width"] == a.freeze_stride for v in variants
    )
    if a.freeze_stride in (16, 32) and not shared_encoder:
        raise SystemExit("--freeze-stride 16/32 fixes the whole encoder: every variant must be that m variant with i")
    any_hints = any(v["hints"] for v in variants)
    a.out.mkdir(parents=True, exist_ok=True)
    amp = dev.type == "cuda"
    gen_val = torch.Generator().manual_seed(123)
    with torch.no_grad():
        xv, abv, hv = batch_lab_hints(val, min(512, len(val)), a.crop, gen_val, p_none=0.0)
        tv, nv = soft_targets(abv, bins)
    xv = xv.contiguous(memory_format=torch.channels_last)

    def val_ce(m: StudentUNet, hints: torch.Tensor | None = None) -> float:
        m.eval()
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            logits = m.logits(xv, hints) if hints is not None else m.logits(xv)
        m.train()
        return float((-(tv * F.log_softmax(logits.float(), 1)).sum(1)).mean())

    history = []
    last_val = time.time()
    budget = a.minutes * 60.0
    start = time.time()
    step, last_log = 0, start
    losses = [0.0] * len(models)
    last_path = a.out / "last.pt"
    if a.resume and last_path.exists():  # the time already spent counts against the budget
        st = torch.load(last_path, map_location="cpu", weights_only=False)
        if st["variants"] != [v["name"] for v in variants]:
            raise SystemExit(f"{last_path} trained {st['variants']}, not {[v['name'] for v in variants]}")
        for m, o, sd, osd in zip(models, opts, st["models"], st["opts"]):
            m.load_state_dict(sd)
            o.load_state_dict(osd)
        step, history, losses = st["step"], st["history"], st["losses"]
        gen.set_state(st["gen"])
        start = time.time() - st["elapsed"]
        print(f"resumed from {last_path} at step {step} ({st['elapsed'] / 60:.1f} min done)", flush=True)
    last_save = time.time()

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
                "gen": gen.get_state(),
                "elapsed": time.time() - start,
            },
            tmp,
        )
        os.replace(tmp, last_path)  # a kill mid-write leaves the previous checkpoint intact

    while True:
        frac = (time.time() - start) / budget
        if frac >= 1.0:
            break
        lr = a.lr * (min(1.0, frac / 0.03)) * 0.5 * (1 + math.cos(math.pi * frac))
        with torch.no_grad():
            unchanged = None
            if any_hints:
                x, ab, hints, *more = batch_lab_hints(
                    imgs, a.batch, a.crop, gen, a.degrade, p_segment=a.hint_segment, p_none=a.hint_none
                )
                unchanged = more[0].to(dev) if more else None
            else:
                x, ab = batch_lab(imgs, a.batch, a.crop, gen, a.degrade)
            t_truth, t_teacher, nearest = targets(x, ab)
        x = x.contiguous(memory_format=torch.channels_last)
        if shared_encoder:
            with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                e = models[0].features(x)
        for i, (v, m, opt, w) in enumerate(zip(variants, models, opts, weights)):
            for g in opt.param_groups:
                g["lr"] = lr * g["lr_scale"] * (a.init_lr_scale if v["init"] else 1.0)
            k = v["distill"]
            target = t_truth if k == 0 else (1 - k) * t_truth + k * t_teacher[v["teacher"]]
            if v["hints"] and any_hints and unchanged is not None and unchanged.any():
                # outside a repainted object: the picture the model makes without hints
                with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                    own = m.decode(e, None) if shared_encoder else m.logits(x)
                target = torch.where(unchanged[:, None], F.softmax(own.float(), dim=1), target)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                h = hints if v["hints"] else None
                logits = m.decode(e, h) if shared_encoder else m.logits(x, h) if v["hints"] else m.logits(x)
            logp = F.log_softmax(logits.float(), dim=1)
            loss = (-(target * logp).sum(1) * w[nearest]).mean()
            if v["cast"]:
                loss = loss + v["cast"] * cast_loss(m.annealed_mean(logits.float(), a.cast_temperature), ab)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses[i] = 0.98 * losses[i] + 0.02 * loss.item() if step else loss.item()
        step += 1
        if time.time() - last_log > 15:
            last_log = time.time()
            ips = step * a.batch / (last_log - start)
            msg = " ".join(f"{v['name']}={loss_v:.3f}" for v, loss_v in zip(variants, losses))
            print(f"step {step} {frac * 100:.0f}% lr {lr:.2e} {ips:.0f} img/s loss {msg}", flush=True)
        if time.time() - last_val > a.val_minutes * 60:
            last_val = time.time()
            ces = {v["name"]: round(val_ce(m), 4) for v, m in zip(variants, models)}
            ces.update({v["name"] + "+hints": round(val_ce(m, hv), 4) for v, m in zip(variants, models) if v["hints"]})
            history.append({"step": step, "seconds": round(last_val - start), "val_ce": ces})
            print(f"val ce at step {step}: {ces}", flush=True)
        if time.time() - last_save > a.save_minutes * 60:
            save_state()
            last_save = time.time()

    elapsed = time.time() - start
    report = {
        "steps": step,
        "seconds": elapsed,
        "batch": a.batch,
        "crop": a.crop,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "train_images": len(imgs),
        "val_images": len(val),
        "bins": int(bins.shape[0]),
        "torch": torch.__version__,
        "distilled_from": [str(t) for t in a.teacher] or None,
        "init_from": str(a.init) if a.init else None,
        "val_history": history,
        "variants": {},
    }
    for v, m in zip(variants, models):
        m.eval()
        with torch.no_grad():
            logits = m.logits(xv).float()
            ce = float((-(tv * F.log_softmax(logits, 1)).sum(1)).mean())
            by_t = {}
            for t in (0.2, 0.3, 0.38, 0.5, 0.7, 1.0):
                pred = m.annealed_mean(logits, t)
                by_t[str(t)] = {
                    "ab_rmse": float(((pred - abv) ** 2).mean().sqrt()),
                    "chroma_ratio": float(pred.norm(dim=1).mean() / abv.norm(dim=1).mean()),
                    "cast": float((pred.mean(dim=(2, 3)) - abv.mean(dim=(2, 3))).norm(dim=1).mean()),
                }
        m.cpu()
        torch.save(
            {
                "state_dict": m.state_dict(),
                "arch": v["arch"],
                "stages": v["width"] if v["arch"] == "mobile" else None,
                "decoder": list(decoder) if v["arch"] == "mobile" else None,
                "hints": v["hints"],
                "hint_none": a.hint_none if v["hints"] else None,
                "hint_segment": a.hint_segment if v["hints"] else None,
                # the pretrained weights: those loaded here, or those --init was built on
                "backbone": getattr(m, "provenance", None) or (init.get("backbone") if v["init"] else None),
                "degrade": a.degrade,
                "freeze_stride": a.freeze_stride,
                "width": v["width"],
                "alpha": v["alpha"],
                "depth": v["depth"],
                "dropout": v["dropout"],
                "bins": bins.cpu(),
                "steps": step,
                "seconds": elapsed,
                "batch": a.batch,
                "crop": a.crop,
                "distilled_from": str(a.teacher[v["teacher"]]) if v["distill"] > 0 else None,
                "distill_weight": v["distill"],
                "cast_weight": v["cast"],
                "cast_temperature": a.cast_temperature if v["cast"] else None,
                "init_from": str(a.init) if v["init"] else None,
                "init_steps": init["steps"] if v["init"] else 0,
                "init_seconds": init["seconds"] if v["init"] else 0.0,
            },
            a.out / f"student_{v['name']}.pt",
        )
        report["variants"][v["name"]] = {
            "width": v["width"],
            "alpha": v["alpha"],
            "distill_weight": v["distill"],
            "cast_weight": v["cast"],
            "teacher": str(a.teacher[v["teacher"]]) if v["distill"] > 0 else None,
            "init": v["init"],
            "val_ce": ce,
            "val_ce_with_hints": val_ce(m, hv) if v["hints"] else None,
            "by_temperature": by_t,
            "params": sum(p.numel() for p in m.parameters()),
        }
        print(v["name"], json.dumps(report["variants"][v["name"]]), flush=True)
    (a.out / "report.json").write_text(json.dumps(report, indent=2))
    print(f"done: {step} steps in {elapsed:.0f}s", flush=True)


if __name__ == "__main__":
    main()
